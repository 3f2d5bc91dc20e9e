"""Labelled video datasets by name: the one registry of names, factors and image sizes.

The trainer, the judge, the configs and the evaluation all look datasets up here. Each
dataset is a dict of in-memory arrays: ``video`` uint8 (N, T, H, W, C), ``action`` int32
(N,) and one int32 (N,) array per static factor.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from koopjax.data import sprites
from koopjax.data import synthetic

SPRITES_SIZES = (64, 32)  # native, and 2x2 average-pooled (for CPU-sized schedules)


@dataclasses.dataclass(frozen=True)
class VideoDataset:
  """What a run needs to know about a labelled video dataset.

  Attributes:
    static: static factor name -> number of classes, in the dataset's order.
    dynamic: dynamic factor name -> number of classes.
    image_sizes: frame sizes the dataset can be loaded at.
    image_size_note: how to say so in an error message.
    needs_data_dir: whether it is read from a prepared TFDS data directory.
    train_size: sequences in the train split.
  """
  static: dict[str, int]
  dynamic: dict[str, int]
  image_sizes: tuple[int, ...]
  image_size_note: str
  needs_data_dir: bool
  train_size: int


DATASETS = {
    "synthetic": VideoDataset(
        dict(synthetic.STATIC_FACTORS), dict(synthetic.DYNAMIC_FACTORS), synthetic.IMAGE_SIZES,
        f"synthetic videos are drawn at {' or '.join(map(str, synthetic.IMAGE_SIZES))}", False,
        4914),
    "sprites": VideoDataset(
        dict(sprites.STATIC_FACTORS), dict(sprites.DYNAMIC_FACTORS), SPRITES_SIZES,
        "sprites videos are 64x64; use image_size=64 (or 32: 2x2 average-pooled)", True, 9000),
}
VIDEO_DATASETS = tuple(DATASETS)


def _spec(name: str) -> VideoDataset:
  if name not in DATASETS:
    raise ValueError(f"unknown video dataset {name!r}; available: {', '.join(DATASETS)}.")
  return DATASETS[name]


def load(name: str, split: str, *, data_dir: str = "", image_size: int = 32, frames: int = 8
         ) -> dict[str, np.ndarray]:
  """Loads a split of a video dataset into memory (uint8 videos, int32 labels)."""
  spec = _spec(name)
  if image_size not in spec.image_sizes:
    raise ValueError(f"{spec.image_size_note}; got image_size={image_size!r}.")
  if name == "synthetic":
    return synthetic.make_dataset(split, image_size=image_size, frames=frames)
  data = sprites.load(data_dir, split)
  if image_size != 64:
    data["video"] = average_pool(data["video"], 64 // image_size)
  return data


def average_pool(video: np.ndarray, factor: int, chunk: int = 512) -> np.ndarray:
  """Shrinks uint8 videos (N, T, H, W, C) by ``factor`` per side: the mean of each
  factor x factor block, rounded half up. Works in chunks of ``chunk`` sequences so the
  peak memory stays near the size of the input."""
  if video.dtype != np.uint8 or video.ndim != 5:
    raise ValueError(f"video must be uint8 of shape (N, T, H, W, C); got {video.dtype} "
                     f"{video.shape}.")
  n, t, h, w, c = video.shape
  if factor < 1 or h % factor or w % factor:
    raise ValueError(f"factor must be >= 1 and divide the frame size {h}x{w}; got {factor}.")
  blocks = factor * factor
  out = np.empty((n, t, h // factor, w // factor, c), np.uint8)
  for start in range(0, n, chunk):
    part = video[start:start + chunk].astype(np.uint32)
    part = part.reshape(-1, t, h // factor, factor, w // factor, factor, c).sum(axis=(3, 5))
    out[start:start + chunk] = (part + blocks // 2) // blocks
  return out


def factors(name: str) -> tuple[dict[str, int], dict[str, int]]:
  """(static factors, dynamic factors) of a dataset: name -> number of classes."""
  spec = _spec(name)
  return dict(spec.static), dict(spec.dynamic)


def factor_classes(name: str) -> dict[str, int]:
  """Every factor -> classes: the dynamic ones (``action``) first, then the static ones."""
  static, dynamic = factors(name)
  return {**dynamic, **static}
