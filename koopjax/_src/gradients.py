"""Gradient transformations applied inside a loss, on one path of the computation."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def clip_gradient_norm(x: jax.Array, max_norm: float) -> jax.Array:
  """Identity in the forward pass; rescales the cotangent to norm <= max_norm in the backward.

  Bounds the gradient that flows back through ``x`` from the part of a loss computed from it,
  without touching other paths. SKD uses it on the spectral loss: eigenvalue derivatives are
  ``diag(V⁻¹ dC V)``, so as the static eigenvalues cluster at 1 and C nears a defective matrix,
  their gradient grows without bound and, through global clipping, would silence every other
  loss term.

  Args:
    x: any array.
    max_norm: the largest Frobenius norm the cotangent of ``x`` may have (> 0, a Python float).

  Returns:
    ``x``.
  """
  del max_norm
  return x


def _clip_fwd(x, max_norm):
  del max_norm
  return x, None


def _clip_bwd(max_norm, _, cotangent):
  norm = jnp.sqrt(jnp.sum(jnp.square(cotangent)))
  scale = jnp.minimum(1.0, max_norm / jnp.maximum(norm, jnp.finfo(cotangent.dtype).tiny))
  return (cotangent * scale.astype(cotangent.dtype),)


clip_gradient_norm.defvjp(_clip_fwd, _clip_bwd)
