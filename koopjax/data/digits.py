"""`digits` and `digits_permuted`: scikit-learn's bundled 8x8 handwritten digits read pixel by
pixel, the small offline stand-in for sequential (and permuted) MNIST.

Each 8x8 image (1797 of them, intensities 0..16, scaled to [0, 1]) becomes a sequence of
T = 64 scalar inputs in row-major order; `digits_permuted` shuffles the 64 positions by one
fixed permutation (``numpy.random.default_rng(12008).permutation(64)``), so neighbouring
pixels end up far apart in time. The split is stratified by digit class: 70 % train, 10 %
validation, 20 % test, fixed (seed 0) and the same for both variants.
"""

from __future__ import annotations

import numpy as np
from sklearn import datasets as sk_datasets
from sklearn import model_selection

LENGTH = 64
PERMUTATION_SEED = 12008
SPLITS = ("train", "validation", "test")


def permutation() -> np.ndarray:
  """The fixed pixel order of `digits_permuted` (64,)."""
  return np.random.default_rng(PERMUTATION_SEED).permutation(LENGTH)


def split_indices() -> dict[str, np.ndarray]:
  """Indices of the 1797 images in each split (class-stratified 70/10/20, seed 0)."""
  labels = sk_datasets.load_digits().target
  index = np.arange(len(labels))
  train, rest = model_selection.train_test_split(index, test_size=0.3, stratify=labels,
                                                 random_state=0)
  validation, test = model_selection.train_test_split(rest, test_size=2 / 3,
                                                      stratify=labels[rest], random_state=0)
  return {"train": np.sort(train), "validation": np.sort(validation), "test": np.sort(test)}


def make_dataset(split: str, *, permuted: bool = False) -> dict[str, np.ndarray]:
  """One split as sequences.

  Returns:
    ``x`` float32 (N, 64, 1) in [0, 1], ``length`` int32 (N,) (all 64), ``label`` int32 (N,).
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
  digits = sk_datasets.load_digits()
  index = split_indices()[split]
  x = (digits.data[index] / 16.0).astype(np.float32)
  if permuted:
    x = x[:, permutation()]
  return {"x": x[:, :, None], "length": np.full(len(index), LENGTH, np.int32),
          "label": digits.target[index].astype(np.int32)}
