"""Labelled video datasets by name: one entry point for the trainer, the judge and evaluation.

Each dataset is a dict of in-memory arrays: ``video`` uint8 (N, T, H, W, C), ``action`` int32
(N,) and one int32 (N,) array per static factor.
"""

from __future__ import annotations

import numpy as np

VIDEO_DATASETS = ("synthetic", "sprites")
SPRITES_SIZES = (64, 32)  # native, and 2x2 average-pooled (for CPU-sized schedules)


def load(name: str, split: str, *, data_dir: str = "", image_size: int = 32, frames: int = 8
         ) -> dict[str, np.ndarray]:
  """Loads a split of a video dataset into memory (uint8 videos, int32 labels)."""
  if name == "synthetic":
    from koopjax.data import synthetic
    return synthetic.make_dataset(split, image_size=image_size, frames=frames)
  if name == "sprites":
    from koopjax.data import sprites
    if image_size not in SPRITES_SIZES:
      raise ValueError(f"sprites videos are 64x64 (or 32x32, 2x2 average-pooled); got "
                       f"image_size={image_size!r}.")
    data = sprites.load(data_dir, split)
    if image_size != 64:
      data["video"] = average_pool(data["video"], 64 // image_size)
    return data
  raise ValueError(f"unknown video dataset {name!r}; available: {', '.join(VIDEO_DATASETS)}.")


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
  if name == "synthetic":
    from koopjax.data import synthetic as module
  elif name == "sprites":
    from koopjax.data import sprites as module
  else:
    raise ValueError(f"unknown video dataset {name!r}; available: {', '.join(VIDEO_DATASETS)}.")
  return dict(module.STATIC_FACTORS), dict(module.DYNAMIC_FACTORS)
