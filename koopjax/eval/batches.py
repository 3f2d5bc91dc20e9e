"""Applying a jitted function to a whole split in fixed-size batches (one compilation)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np


def map_batches(fn: Callable[..., Any], arrays: Sequence[np.ndarray], batch_size: int) -> Any:
  """``fn(*batch)`` over the rows of ``arrays`` (equally long), concatenated along rows.

  The last batch is padded to ``batch_size`` rows by repeating its first row, so ``fn`` is
  compiled for one shape; padded rows are dropped from the result.

  Args:
    fn: maps arrays with a leading batch axis to a pytree of arrays with the same leading axis.
    arrays: inputs of ``fn``, each (N, ...).
    batch_size: rows per call (clipped to N).

  Returns:
    The pytree ``fn`` returns, with N rows, as numpy arrays.
  """
  n = len(arrays[0])
  if n == 0 or any(len(a) != n for a in arrays):
    raise ValueError(f"arrays must be non-empty and equally long; got "
                     f"{[len(a) for a in arrays]}.")
  size = max(1, min(batch_size, n))
  chunks = []
  for start in range(0, n, size):
    part = [np.asarray(a[start:start + size]) for a in arrays]
    real = len(part[0])
    if real < size:
      part = [np.concatenate([p, np.repeat(p[:1], size - real, axis=0)]) for p in part]
    chunks.append(jax.tree.map(lambda x, real=real: np.asarray(x)[:real], fn(*part)))
  return jax.tree.map(lambda *xs: np.concatenate(xs), *chunks)
