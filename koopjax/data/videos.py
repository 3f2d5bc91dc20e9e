"""Labelled video datasets by name: one entry point for the trainer, the judge and evaluation.

Each dataset is a dict of in-memory arrays: ``video`` uint8 (N, T, H, W, C), ``action`` int32
(N,) and one int32 (N,) array per static factor.
"""

from __future__ import annotations

import numpy as np

VIDEO_DATASETS = ("synthetic", "sprites")


def load(name: str, split: str, *, data_dir: str = "", image_size: int = 32, frames: int = 8
         ) -> dict[str, np.ndarray]:
  """Loads a split of a video dataset into memory (uint8 videos, int32 labels)."""
  if name == "synthetic":
    from koopjax.data import synthetic
    return synthetic.make_dataset(split, image_size=image_size, frames=frames)
  if name == "sprites":
    from koopjax.data import sprites
    return sprites.load(data_dir, split)
  raise ValueError(f"unknown video dataset {name!r}; available: {', '.join(VIDEO_DATASETS)}.")


def factors(name: str) -> tuple[dict[str, int], dict[str, int]]:
  """(static factors, dynamic factors) of a dataset: name -> number of classes."""
  if name == "synthetic":
    from koopjax.data import synthetic as module
  elif name == "sprites":
    from koopjax.data import sprites as module
  else:
    raise ValueError(f"unknown video dataset {name!r}; available: {', '.join(VIDEO_DATASETS)}.")
  return dict(module.STATIC_FACTORS), dict(module.DYNAMIC_FACTORS)
