"""The Sprites benchmark (Li & Mandt, 2018) as a TFDS dataset, with no TensorFlow needed.

Importing this package registers the TFDS builder ``sprites`` (class `Sprites`,
version 1.0.0, array_record files). Build it once from a folder of LPC sprite sheets,
then load whole splits into memory as uint8 arrays::

  from koopjax.data import sprites
  sprites.prepare(manual_dir="path/to/lpc-sprites", data_dir="~/tensorflow_datasets")
  train = sprites.load("~/tensorflow_datasets", "train")  # train["video"]: (9000, 8, 64, 64, 3)

Records are ordered by character code (``skin*216 + pants*36 + top*6 + hair``) and then
by action, so shuffling with a fixed seed is reproducible.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from koopjax.data.sprites import recipe
from koopjax.data.sprites.sprites_dataset_builder import Sprites

__all__ = (
    "ACTION_NAMES",
    "DYNAMIC_FACTORS",
    "STATIC_FACTORS",
    "Sprites",
    "load",
    "prepare",
)

STATIC_FACTORS = {factor: recipe.NUM_CHOICES for factor, _ in recipe.LAYERS}
DYNAMIC_FACTORS = {"action": len(recipe.ACTION_NAMES)}
# Index = action label = 3 * animation + direction; animations (walk, spellcast, slash),
# directions (front, left, right).
ACTION_NAMES = recipe.ACTION_NAMES

_LABELS = tuple(DYNAMIC_FACTORS) + tuple(STATIC_FACTORS)
_VIDEO_SHAPE = (recipe.NUM_FRAMES, recipe.FRAME_SIZE, recipe.FRAME_SIZE, 3)
_READ_CHUNK = 256  # records decoded per batch read; bounds the transient memory of `load`
_PREPARE_HINT = "koopjax prepare sprites --manual-dir DIR --data-dir DIR"


def _data_dir(data_dir: str | os.PathLike[str]) -> str:
  if data_dir is None or not str(data_dir):
    raise ValueError(f"data_dir must be a directory path; got {data_dir!r}.")
  return os.fspath(pathlib.Path(data_dir).expanduser())


def prepare(manual_dir: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> None:
  """Builds the dataset into `data_dir` (``<data_dir>/sprites/1.0.0``) from the sheets.

  The sheets are checked before anything is written. Reuses an existing build. Takes about
  20 s on two CPU cores and writes about 35 MB (train 27 MB, test 8 MB).

  Args:
    manual_dir: folder with ``body/``, ``bottomwear/``, ``topwear/``, ``hair/`` (``0..5.png``
      each) and ``shoes/1.png`` (docs/datasets.md).
    data_dir: TFDS data directory to write into.

  Raises:
    FileNotFoundError: `manual_dir` is missing or lacks sheets (all missing paths listed).
    ValueError: `data_dir` is empty, or a sheet is not 832 x 1344 pixels.
  """
  root = recipe.check_manual_dir(manual_dir)
  builder = Sprites(data_dir=_data_dir(data_dir))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))


def load(data_dir: str | os.PathLike[str], split: str) -> dict[str, np.ndarray]:
  """Reads a whole split of a prepared dataset into memory.

  Reads through `builder.as_data_source()` in chunks into preallocated arrays, so the
  peak memory is about the size of the result (train: 885 MB of uint8 video).

  Args:
    data_dir: the TFDS data directory given to `prepare`.
    split: "train" (9000 sequences) or "test" (2664).

  Returns:
    A dict of N-row arrays in record order (character code, then action):
    "video" uint8 (N, 8, 64, 64, 3); "action" int32 (N,) in [0, 9); "skin", "pants",
    "top", "hair" int32 (N,) in [0, 6).

  Raises:
    ValueError: `split` is not "train" or "test".
    FileNotFoundError: no prepared dataset in `data_dir`.
  """
  if split not in recipe.SPLITS:
    raise ValueError(f"split must be one of {recipe.SPLITS}; got {split!r}.")
  builder = Sprites(data_dir=_data_dir(data_dir))
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"No prepared Sprites dataset (version {builder.version}) in {builder.data_dir}. "
        f"Build it first: `{_PREPARE_HINT}` (manual dir: the LPC sprite sheets; data dir: "
        f"{data_dir}), or koopjax.data.sprites.prepare(manual_dir, data_dir).")
  source = builder.as_data_source(split=split)
  n = len(source)
  out = {"video": np.empty((n,) + _VIDEO_SHAPE, np.uint8)}
  out.update({name: np.empty((n,), np.int32) for name in _LABELS})
  for start in range(0, n, _READ_CHUNK):
    records = source.__getitems__(list(range(start, min(start + _READ_CHUNK, n))))
    for i, record in enumerate(records, start):
      out["video"][i] = record["video"]
      for name in _LABELS:
        out[name][i] = record[name]
  return out
