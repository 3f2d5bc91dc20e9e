"""Invariance of a latent sequence's motion to a change of appearance.

SKD's loss does not say which factor goes where: a per-frame encoder may scale its motion
code by the colour of the part that moves, and such a code is exactly as predictable by one
linear C as a colour-blind one (a Kronecker product of colour and pose). Swaps then carry
the target's colours along with its motion. Contrastive sequential models (C-DSVAE, Bai et
al. 2021) ask instead that the dynamic code of a colour-distorted video match the
original's. Here the dynamic part is what the time mean leaves over: modes with λ = 1 are
constant over the frames, so ``z_t − mean_t z`` has no static component, and when its
deviations are equal, the state of every mode with |λ| < 1 is equal too (the deviations
of ``z_0 Cᵗ`` determine ``z_0`` on those modes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from koopjax._src import checks


def temporal_deviations(z: jax.Array) -> jax.Array:
  """Latents minus their mean over frames: ``z_t − (1/T) Σ_s z_s``, shape (b, T, k)."""
  checks.array_of_rank("z", z, 3, "(batch, frames, k)")
  return z - jnp.mean(z, axis=1, keepdims=True)


def dynamic_part(z: jax.Array, V: jax.Array, U: jax.Array, static: jax.Array) -> jax.Array:
  """The component of row latents on the dynamic (not static) modes of ``C = V Λ U``.

  ``z_D = Re(z V diag(1 − s) U)`` with ``s`` the static mask; ``z − z_D`` is the static part.
  Unlike `temporal_deviations`, it keeps the dynamic modes' time mean (a mode with λ ≈ 0
  holds any constant offset without cost to the Koopman fit).

  Args:
    z: latents (..., k), real.
    V, U: right eigenvectors in columns and their inverse, (k, k) complex (`koopjax.eig`).
    static: (k,) bool mask of the static modes; keep conjugate pairs together.

  Returns:
    Real array shaped like ``z``.
  """
  keep = jnp.where(static, 0.0, 1.0).astype(V.dtype)
  with jax.default_matmul_precision("highest"):
    projector = jnp.real((V * keep[None, :]) @ U)
    return (z @ projector.astype(z.dtype)).astype(z.dtype)


def motion_invariance_loss(d: jax.Array, d_other: jax.Array, eps: float = 1e-8) -> jax.Array:
  """Normalised squared distance between the motion parts of two latent sequences.

  ``d`` and ``d_other`` are the parts of the latents meant to carry motion only: the
  `temporal_deviations` or the `dynamic_part` of the latents of some videos and of the same
  videos with another appearance::

      L = Σ (d − d')² / (½ Σ (d² + d'²) + eps)      ∈ [0, 4]

  The sums run over every axis. Normalising by the parts' own size keeps an encoder from
  lowering L by shrinking its motion code; L = 0 when they agree, 2 when they are unrelated
  and equally large.

  Args:
    d: motion parts (b, T, k) of some videos.
    d_other: the same of the videos with another appearance, same shape.
    eps: keeps L finite when both are zero.

  Returns:
    Scalar loss.
  """
  if d.shape != d_other.shape:
    raise ValueError(f"d and d_other must have the same shape (batch, frames, k); got "
                     f"{tuple(d.shape)} and {tuple(d_other.shape)}.")
  scale = 0.5 * (jnp.sum(jnp.square(d)) + jnp.sum(jnp.square(d_other)))
  return jnp.sum(jnp.square(d - d_other)) / (scale + eps)
