"""An opt-in check that names the first non-finite input of a function.

koopjax's functions do not check their inputs for NaN or Inf: inside a jitted train step a
check costs a host round trip, and a NaN simply propagates (the trainer's guard then skips the
step). When a result is NaN and the question is where it came from, wrap the call::

    C = kj.check_finite(kj.fit_koopman)(z)      # NonFiniteInputError: fit_koopman: input z[3]...

The check runs through `jax.experimental.checkify`, so the wrapped function may itself be
jitted; call the wrapper outside `jit`.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify


class NonFiniteInputError(ValueError):
  """A floating-point input holds NaN or Inf (the message names it)."""


def _is_array_tree(value: Any) -> bool:
  leaves = jax.tree.leaves(value)
  return bool(leaves) and all(isinstance(x, (jax.Array, np.ndarray)) for x in leaves)


def check_finite(fn: Callable[..., Any]) -> Callable[..., Any]:
  """Wraps ``fn`` so that a NaN or Inf in a floating-point array argument raises.

  Every argument that is an array (or a pytree of arrays) is checked, in the order of ``fn``'s
  parameters; the first one holding a NaN or Inf raises `NonFiniteInputError` naming the
  function, the argument and the leaf, e.g. ``fit_koopman: input z has NaN or Inf values``.
  Other arguments (numbers, strings) pass through unchecked.

  Args:
    fn: any function of arrays (jitted or not).

  Returns:
    A function with ``fn``'s signature and results.
  """
  signature = inspect.signature(fn)
  name = getattr(fn, "__name__", "function")

  @functools.wraps(fn)
  def checked(*args, **kwargs):
    bound = signature.bind(*args, **kwargs)
    arrays = {key: value for key, value in bound.arguments.items() if _is_array_tree(value)}

    def body(arrays):
      for key, value in arrays.items():
        for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
          if jnp.issubdtype(leaf.dtype, jnp.inexact):
            checkify.check(jnp.all(jnp.isfinite(leaf)),
                           f"{name}: input {key}{jax.tree_util.keystr(path)} has NaN or Inf "
                           "values")
      bound.arguments.update(arrays)
      return fn(*bound.args, **bound.kwargs)

    error, out = checkify.checkify(body)(arrays)
    message = error.get()
    if message is not None:
      raise NonFiniteInputError(re.split(r" \((?:`check` failed|check failed at)", message)[0])
    return out

  return checked
