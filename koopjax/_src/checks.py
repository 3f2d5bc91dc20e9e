"""Input validation shared by the public functions.

Every check runs on static information (shapes, dtypes, Python values) so it works on
tracers under `jit` and fails at trace time with a message that names what was expected,
instead of an XLA shape error deep inside a computation.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax.numpy as jnp
import numpy as np


def array_of_rank(name: str, x: Any, rank: int | Iterable[int], layout: str) -> None:
  """Raises unless `x` is a floating-point array of the given rank.

  Args:
    name: argument name, used in the message.
    x: the value to check.
    rank: an allowed rank or several.
    layout: a human description of the expected shape, e.g. "(batch, frames, k)".
  """
  ranks = (rank,) if isinstance(rank, int) else tuple(rank)
  shape = getattr(x, "shape", None)
  dtype = getattr(x, "dtype", None)
  if shape is None or dtype is None:
    raise TypeError(f"{name} must be an array of shape {layout}; got {type(x).__name__}.")
  if len(shape) not in ranks:
    raise ValueError(
        f"{name} must have shape {layout} (rank {' or '.join(map(str, ranks))}); "
        f"got shape {tuple(shape)}.")
  if not jnp.issubdtype(dtype, jnp.floating):
    raise TypeError(
        f"{name} must be a floating-point array (float32, float64 or bfloat16); got dtype "
        f"{dtype}. Convert explicitly, e.g. x.astype(jnp.float32).")


def square_operator(name: str, c: Any, allow_complex: bool = False) -> int:
  """Raises unless `c` is a square (k, k) float (optionally complex) matrix; returns k."""
  shape = getattr(c, "shape", None)
  dtype = getattr(c, "dtype", None)
  if shape is None or len(shape) != 2 or shape[0] != shape[1]:
    raise ValueError(f"{name} must be a square matrix of shape (k, k); got shape "
                     f"{None if shape is None else tuple(shape)}.")
  ok = jnp.issubdtype(dtype, jnp.floating) or (
      allow_complex and jnp.issubdtype(dtype, jnp.complexfloating))
  if not ok:
    kinds = "floating-point or complex" if allow_complex else "floating-point"
    raise TypeError(f"{name} must be a {kinds} matrix; got dtype {dtype}.")
  return int(shape[0])


def one_of(name: str, value: Any, allowed: Iterable[str]) -> None:
  """Raises unless `value` is one of the allowed strings."""
  allowed = tuple(allowed)
  if value not in allowed:
    raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")


def int_in_range(name: str, value: Any, low: int, high: int) -> int:
  """Raises unless `value` is a Python/NumPy integer with low <= value <= high."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be an integer in [{low}, {high}]; got {value!r}.")
  if not low <= int(value) <= high:
    raise ValueError(f"{name} must be in [{low}, {high}]; got {value}.")
  return int(value)


def positive_float(name: str, value: Any) -> float:
  """Raises unless `value` is a finite real Python/NumPy number > 0 (not a traced array)."""
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise TypeError(f"{name} must be a finite number > 0; got {value!r}.")
  if not (np.isfinite(value) and value > 0):
    raise ValueError(f"{name} must be a finite number > 0; got {value}.")
  return float(value)
