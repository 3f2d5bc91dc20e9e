"""Curvature of a scalar loss from Hessian-vector products: the top eigenvalue by power
iteration and the trace by Hutchinson's estimator. Nothing forms the Hessian.

For a loss L(θ) with θ a pytree of n numbers, ``H v = d/dε ∇L(θ + ε v)`` costs about two
gradients (forward-over-reverse). Power iteration ``v ← H v / ‖H v‖`` converges to the
eigenvector of the eigenvalue of largest magnitude, λ₁. When λ₁ < 0 (a trained network's
Hessian can have a large negative eigenvalue) a second power iteration on the shifted
``H − λ₁ I``, whose eigenvalues are all >= 0, finds the top eigenvalue λ_max − λ₁. Hutchinson:
for Rademacher v (entries ±1), ``E[vᵀ H v] = tr H``; the mean of m probes has standard error
``std(vᵀ H v) / √m``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


class TraceEstimate(NamedTuple):
  """Hutchinson's estimate of tr H: the mean over probes and its standard error."""
  trace: jax.Array
  stderr: jax.Array


def _flat(loss: Callable[[Any], jax.Array], params: Any):
  flat, unravel = ravel_pytree(params)
  return flat, (lambda x: loss(unravel(x)))


def hessian_vector_product(loss: Callable[[Any], jax.Array], params: Any, vector: Any) -> Any:
  """H v of a scalar ``loss(params)`` at ``params`` (forward-over-reverse), same pytree as v."""
  return jax.jvp(jax.grad(loss), (params,), (vector,))[1]


def _power_iteration(matvec, v, iterations):
  """Rayleigh quotient vᵀ M v of the last normalised iterate of ``v ← M v / ‖M v‖``."""
  v = v / jnp.linalg.norm(v)

  def body(_, carry):
    v, _ = carry
    mv = matvec(v)
    return mv / jnp.maximum(jnp.linalg.norm(mv), jnp.finfo(mv.dtype).tiny), jnp.vdot(v, mv)

  return jax.lax.fori_loop(0, iterations, body, (v, jnp.zeros((), v.dtype)))[1]


def hessian_top_eigenvalue(loss: Callable[[Any], jax.Array], params: Any, key: jax.Array, *,
                           iterations: int = 20) -> jax.Array:
  """The largest (most positive) Hessian eigenvalue, λ_max, by power iteration.

  Args:
    loss: scalar function of a pytree of floating arrays (traceable).
    params: where to take the Hessian.
    key: for the random start vector.
    iterations: Hessian-vector products per power iteration (>= 1); a second iteration on
      ``H − λ₁ I`` runs only when the eigenvalue of largest magnitude, λ₁, is negative.

  Returns:
    λ_max, a scalar (negative only if every eigenvalue is).
  """
  if iterations < 1:
    raise ValueError(f"iterations must be >= 1; got {iterations}.")
  flat, f = _flat(loss, params)
  hvp = lambda v: jax.jvp(jax.grad(f), (flat,), (v,))[1]  # noqa: E731
  start = jax.random.normal(key, flat.shape, flat.dtype)
  largest = _power_iteration(hvp, start, iterations)

  def shifted():
    return largest + _power_iteration(lambda v: hvp(v) - largest * v, start, iterations)

  return jax.lax.cond(largest < 0, shifted, lambda: largest)


def hutchinson_trace(loss: Callable[[Any], jax.Array], params: Any, key: jax.Array, *,
                     samples: int = 32, batch_size: int = 8) -> TraceEstimate:
  """Hutchinson's estimate of the trace of the Hessian of ``loss`` at ``params``.

  Args:
    loss: scalar function of a pytree of floating arrays (traceable).
    params: where to take the Hessian.
    key: for the Rademacher probes.
    samples: probes m (>= 2, for the standard error).
    batch_size: probes evaluated at once (memory grows with it).

  Returns:
    `TraceEstimate`: mean of vᵀ H v over the probes and its standard error.
  """
  if samples < 2:
    raise ValueError(f"samples must be >= 2 (the standard error needs two); got {samples}.")
  flat, f = _flat(loss, params)
  probes = jax.random.rademacher(key, (samples,) + flat.shape, flat.dtype)

  def quadratic_form(v):
    return jnp.vdot(v, jax.jvp(jax.grad(f), (flat,), (v,))[1])

  values = jax.lax.map(quadratic_form, probes, batch_size=min(batch_size, samples))
  return TraceEstimate(jnp.mean(values), jnp.std(values, ddof=1) / jnp.sqrt(samples))
