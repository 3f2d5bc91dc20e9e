"""Sampling the static or the dynamic part of latent sequences in Koopman eigen-coordinates.

With latents ``z`` (b, T, k), the operator ``C = V Λ U`` (``U = V⁻¹``) and eigen-coordinates
``φ = z V``: ``φc = a φ[π1] + (1 − a) φ[π2]`` is a random convex combination of two members of
the same pool (π1, π2 random permutations, ``a ~ U(0, 1)`` per sequence, i.e. Dirichlet(1, 1)
as in the reference). "Fix motion" (sample static) replaces ``φ[:, :, S]`` by ``φc[:, :, S]``;
"fix static" (sample dynamics) replaces ``φ[:, :, D]``; the result is ``Re(φ' U)``
(docs/evaluation.md, "Sampling"). Every function is deterministic in its key or seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import koopjax as kj

FIXES = ("motion", "static")
# What each direction samples and which heads must keep the original labels.
DIRECTIONS = {"motion": "fix dynamics, sample static", "static": "fix static, sample dynamics"}


def convex_combination(phi: jax.Array, key: jax.Array) -> jax.Array:
  """``φc = a φ[π1] + (1 − a) φ[π2]`` over the leading (pool) axis.

  Args:
    phi: eigen-coordinates of a pool of sequences, shape (b, T, k), complex.
    key: PRNG key; π1, π2 are random permutations of the b rows and ``a ~ U(0, 1)`` (b,).

  Returns:
    φc, shape (b, T, k), dtype of ``phi``.
  """
  b = phi.shape[0]
  k1, k2, k3 = jax.random.split(key, 3)
  p1 = jax.random.permutation(k1, b)
  p2 = jax.random.permutation(k2, b)
  a = jax.random.uniform(k3, (b, 1, 1), dtype=jnp.real(phi).dtype).astype(phi.dtype)
  return a * phi[p1] + (1 - a) * phi[p2]


def sample_latents(z: jax.Array, V: jax.Array, U: jax.Array, static: jax.Array, key: jax.Array,
                   fix: str) -> jax.Array:
  """Latents with the static (``fix="motion"``) or dynamic (``fix="static"``) part sampled.

  ``φ = z V``, ``φc = convex_combination(φ)``; the sampled modes M are S for "motion" and D
  for "static"; returns ``Re(φ' U)`` with ``φ'[..., M] = φc[..., M]``, ``φ'[..., Mᶜ] = φ``.

  Args:
    z: latents of one pool, (b, T, k) real.
    V, U: eigenvectors of C and their inverse, (k, k) complex.
    static: (k,) bool mask of the static modes S.
    key: PRNG key of the convex combination.
    fix: "motion" (keep dynamics, sample the static part) or "static" (keep the static part,
      sample dynamics).

  Returns:
    Real latents, shape and dtype of ``z``.
  """
  if fix not in FIXES:
    raise ValueError(f"fix must be one of {', '.join(map(repr, FIXES))} ('motion': keep "
                     f"dynamics, sample static; 'static': keep static, sample dynamics); "
                     f"got {fix!r}.")
  static = kj.modes_to_mask(static, z.shape[-1])
  sampled = static if fix == "motion" else jnp.logical_not(static)
  with jax.default_matmul_precision("highest"):
    phi = z @ V
    phi_c = convex_combination(phi, key)
    phi = jnp.where(jnp.broadcast_to(sampled, phi.shape), phi_c, phi)
    return jnp.real(phi @ U).astype(z.dtype)


_sample_latents_jit = jax.jit(sample_latents, static_argnames="fix")


def pools(n: int, pool_size: int, seed: int) -> list[np.ndarray]:
  """Seeded partition of ``range(n)`` into ceil(n / pool_size) pools of near-equal size."""
  if n < 1 or pool_size < 1:
    raise ValueError(f"need n >= 1 and pool_size >= 1; got n={n}, pool_size={pool_size}.")
  order = np.random.default_rng([seed, 2]).permutation(n)
  return np.array_split(order, -(-n // pool_size))


def sample_pooled(z: np.ndarray, V, U, static, fix: str, seed: int, pool_size: int = 256
                  ) -> np.ndarray:
  """`sample_latents` over every sequence, pools drawn by `pools(n, pool_size, seed)`.

  Returns:
    Sampled latents (N, T, k) in the order of ``z``.
  """
  z = np.asarray(z)
  out = np.empty_like(z)
  root = jax.random.key(seed)
  for index, rows in enumerate(pools(len(z), pool_size, seed)):
    key = jax.random.fold_in(root, index)
    out[rows] = np.asarray(_sample_latents_jit(jnp.asarray(z[rows]), V, U, static, key,
                                               fix=fix))
  return out
