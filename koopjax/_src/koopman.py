"""Koopman operators on latent sequences: fitting, prediction, rollout, eigen-analysis, swaps.

Conventions (as in the SKD paper and its reference code): latent codes are **rows** and the
operator acts from the right, ``z_{t+1} ≈ z_t C``. Shapes: ``b`` batch, ``T`` frames, ``k``
Koopman dimension. Everything here is a pure function of arrays, usable under `jit`, `vmap`
and `grad`; nothing depends on a neural-network framework.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from koopjax._src import checks
from koopjax._src.eigvals import eig_host
from koopjax._src.eigvals import resolve_backend

_HIGHEST = jax.lax.Precision.HIGHEST


def _check_latents(name: str, z: jax.Array) -> None:
  checks.array_of_rank(name, z, 3, "(batch, frames, k)")
  if z.shape[1] < 2:
    raise ValueError(f"{name} needs at least 2 frames to fit or apply a Koopman operator; "
                     f"got shape {tuple(z.shape)} with {z.shape[1]} frame(s).")


def _check_operator_matches(c: jax.Array, k: int, what: str) -> None:
  kc = checks.square_operator("C", c)
  if kc != k:
    raise ValueError(f"C is ({kc}, {kc}) but {what} has Koopman dimension k = {k}; "
                     f"expected C of shape ({k}, {k}).")


def pair_mask(lengths: jax.Array, frames: int) -> jax.Array:
  """(b, T − 1) bool: pair (t, t + 1) of sequence i is real iff ``t + 1 < lengths[i]``.

  Args:
    lengths: valid steps per sequence, shape (b,), integers; 0 and 1 leave no pair.
    frames: T, the padded length.
  """
  lengths = jnp.asarray(lengths)
  if lengths.ndim != 1 or not jnp.issubdtype(lengths.dtype, jnp.integer):
    raise TypeError(f"lengths must be integers of shape (batch,); got dtype {lengths.dtype} and "
                    f"shape {tuple(lengths.shape)}.")
  return jnp.arange(1, frames)[None, :] < lengths[:, None]


def koopman_gram(z: jax.Array, lengths: jax.Array | None = None
                 ) -> tuple[jax.Array, jax.Array]:
  """Normal-equation matrices of the one-step least-squares problem.

  With ``Zp = z[:, :-1]`` and ``Zf = z[:, 1:]`` flattened to ``(b (T-1), k)``::

      G = Zpᵀ Zp,    B = Zpᵀ Zf.

  Both are sums over sequences and frames, so partial sums from shards of a batch add up
  to the full-batch matrices. With ``lengths``, only the pairs inside each sequence's valid
  steps enter the sums (`pair_mask`): padding never reaches the fit.

  Args:
    z: latents, shape (b, T, k), T >= 2.
    lengths: valid steps per sequence, shape (b,) integers, or None (all T).

  Returns:
    (G, B), each (k, k), computed at highest matmul precision (no TF32).
  """
  _check_latents("z", z)
  zp, zf = z[:, :-1], z[:, 1:]
  if lengths is not None:
    if jnp.shape(lengths) != z.shape[:1]:
      raise ValueError(f"lengths must have shape ({z.shape[0]},), one per sequence; got "
                       f"{tuple(jnp.shape(lengths))}.")
    zp = jnp.where(pair_mask(lengths, z.shape[1])[..., None], zp, jnp.zeros_like(zp))
  gram = jnp.einsum("btk,btl->kl", zp, zp, precision=_HIGHEST)
  cross = jnp.einsum("btk,btl->kl", zp, zf, precision=_HIGHEST)
  return gram, cross


def solve_koopman(gram: jax.Array, cross: jax.Array, ridge: float = 0.0) -> jax.Array:
  """Solves ``(G + ridge I) C = B`` in the least-squares sense.

  Uses the Moore-Penrose pseudo-inverse of the symmetric ``G + ridge I`` (an SVD with a
  relative cut-off of ``10 k eps``), so ``C = (G + ridge I)⁺ B``. For full-rank ``G`` this
  is the unique least-squares solution; for rank-deficient latents it is the minimum-norm
  solution (the one `numpy.linalg.lstsq` returns) and for all-zero latents it is ``C = 0``.
  It is finite in every case, and so is its derivative (the pseudo-inverse has a closed-form
  JVP that never divides by a zero singular value).

  Args:
    gram: ``G``, shape (k, k), symmetric positive semi-definite.
    cross: ``B``, shape (k, k).
    ridge: Tikhonov regulariser added to the diagonal of ``G`` (a Python float >= 0).

  Returns:
    C, shape (k, k).
  """
  k = checks.square_operator("gram", gram)
  checks.square_operator("cross", cross)
  if float(ridge) < 0:
    raise ValueError(f"ridge must be >= 0; got {ridge}.")
  if ridge:
    gram = gram + ridge * jnp.eye(k, dtype=gram.dtype)
  # pinv's SVD and products must not fall back to TF32 on GPUs.
  with jax.default_matmul_precision("highest"):
    return jnp.linalg.pinv(gram, hermitian=True) @ cross


def fit_koopman(z: jax.Array, *, ridge: float = 0.0, axis_name: Hashable | None = None,
                lengths: jax.Array | None = None) -> jax.Array:
  """Fits one Koopman operator to a whole batch of latent sequences.

  Solves ``C = argmin_C ||Zp C − Zf||_F² (+ ridge ||C||_F²)`` with ``Zp = z[:, :-1]``,
  ``Zf = z[:, 1:]`` flattened over batch and time, through the k x k normal equations
  ``(Zpᵀ Zp + ridge I) C = Zpᵀ Zf`` (see `solve_koopman` for how rank-deficient and
  all-zero latents give a finite, minimum-norm C).

  Data parallelism: under `jit` with a batch-sharded ``z`` the Gram matrices are reduced
  across devices automatically. Inside `shard_map`, pass the mesh axis the batch is split
  over as ``axis_name``: the per-device Gram matrices are `psum`-med so every device solves
  the same, global-batch system and gets the unsharded result.

  Args:
    z: latents, shape (b, T, k), floating point, T >= 2.
    ridge: Tikhonov regulariser, a Python float >= 0.
    axis_name: mesh axis to sum the normal equations over (inside `shard_map`), or None.
    lengths: valid steps per sequence (b,) for variable-length sequences padded to T: only
      pairs (t, t + 1) with t + 1 < length enter the fit (`koopman_gram`).

  Returns:
    C, shape (k, k), dtype of ``z``, such that ``z[:, :-1] @ C ≈ z[:, 1:]``. A NaN or Inf
    anywhere in ``z`` (padding included) makes C NaN; no error is raised — wrap the call in
    `koopjax.check_finite` to be told which input was not finite.
  """
  gram, cross = koopman_gram(z, lengths)
  if axis_name is not None:
    gram, cross = jax.lax.psum((gram, cross), axis_name)
  return solve_koopman(gram, cross, ridge).astype(z.dtype)


def predict_one_step(z: jax.Array, c: jax.Array) -> jax.Array:
  """One-step Koopman prediction of every frame from the previous one.

  ``out[:, 0] = z[:, 0]`` (frame 0 has no predecessor and is copied) and
  ``out[:, t] = z[:, t-1] C`` for t >= 1.

  Args:
    z: latents, shape (b, T, k).
    c: Koopman operator, shape (k, k).

  Returns:
    Predicted latents, shape (b, T, k).
  """
  _check_latents("z", z)
  _check_operator_matches(c, z.shape[-1], "z")
  pred = jnp.einsum("btk,kl->btl", z[:, :-1], c, precision=_HIGHEST)
  return jnp.concatenate([z[:, :1], pred.astype(z.dtype)], axis=1)


def rollout(z0: jax.Array, c: jax.Array, steps: int) -> jax.Array:
  """Autonomous multi-step rollout ``z_{t+1} = z_t C`` from initial latents.

  Args:
    z0: initial latents, shape (b, k).
    c: Koopman operator, shape (k, k).
    steps: number of steps to take (a Python int >= 0).

  Returns:
    Trajectory of shape (b, steps + 1, k); ``[:, 0]`` is ``z0``.
  """
  checks.array_of_rank("z0", z0, 2, "(batch, k)")
  _check_operator_matches(c, z0.shape[-1], "z0")
  steps = checks.int_in_range("steps", steps, 0, 2**31 - 1)

  def step(z, _):
    z_next = jnp.matmul(z, c, precision=_HIGHEST).astype(z0.dtype)
    return z_next, z_next

  _, traj = jax.lax.scan(step, z0, None, length=steps)
  return jnp.concatenate([z0[:, None], jnp.swapaxes(traj, 0, 1)], axis=1)


class Eigendecomposition(NamedTuple):
  """``C = V diag(eigenvalues) U`` with ``U = V⁻¹``; columns of V are right eigenvectors.

  With row latents, eigen-coordinates are ``φ = z V`` and evolve as ``φ_{t+1} = φ_t Λ``.
  """
  eigenvalues: jax.Array  # (k,) complex
  V: jax.Array  # (k, k) complex, right eigenvectors in columns
  U: jax.Array  # (k, k) complex, V⁻¹: left eigenvectors in rows


def eig(c: jax.Array, *, backend: str = "auto") -> Eigendecomposition:
  """Eigendecomposition of a real Koopman operator for analysis and swaps.

  Conjugate eigenvalue pairs come adjacent, the one with positive imaginary part first
  (LAPACK's convention); real eigenvalues have an imaginary part of exactly 0.

  Not differentiable (use `koopjax.eigvals` or `spectral_penalty` for gradients). The
  ``"device"`` backend is XLA's (CPU, GPU); ``"host"`` is NumPy's through a callback (any
  platform); ``"auto"`` picks the device where XLA has eig (`koopjax.eigvals`).

  Args:
    c: operator, shape (k, k), real.
    backend: "auto", "device" or "host".

  Returns:
    `Eigendecomposition` (eigenvalues (k,), V (k, k), U = V⁻¹ (k, k)), all complex.
  """
  checks.square_operator("C", c)
  if resolve_backend(backend) == "host":
    return Eigendecomposition(*eig_host(c))
  eigenvalues, v = jnp.linalg.eig(c)
  with jax.default_matmul_precision("highest"):
    u = jnp.linalg.inv(v)
  return Eigendecomposition(eigenvalues, v, u)


def modes_to_mask(modes: jax.Array, k: int) -> jax.Array:
  """Turns a boolean mask or an integer index array over the k modes into a (k,) mask."""
  modes = jnp.asarray(modes)
  if modes.dtype == jnp.bool_:
    if modes.shape != (k,):
      raise ValueError(f"a boolean modes mask must have shape ({k},) (one entry per "
                       f"eigenvalue); got shape {tuple(modes.shape)}.")
    return modes
  if not jnp.issubdtype(modes.dtype, jnp.integer) or modes.ndim != 1:
    raise TypeError(f"modes must be a boolean mask of shape ({k},) or a 1-D integer index "
                    f"array; got dtype {modes.dtype} and shape {tuple(modes.shape)}.")
  return jnp.zeros((k,), bool).at[modes].set(True, mode="drop")


def swap(z_target: jax.Array, z_donor: jax.Array, V: jax.Array, U: jax.Array,
         modes: jax.Array) -> jax.Array:
  """Exchanges eigen-components between two latent sequences.

  With eigen-coordinates ``φ = z V`` and ``J`` the selected modes::

      out = Re( φ_target[..., Jᶜ] U[Jᶜ, :] + φ_donor[..., J] U[J, :] ).

  ``J`` = the static mask gives the two-factor swap (donor identity, target motion); any
  other subset (the few modes that carry one factor) gives a multifactor swap. Keep both
  members of a conjugate pair together in ``J``, otherwise the result is not the real part
  of a consistent decomposition.

  Args:
    z_target: latents whose unselected components are kept, shape (..., k).
    z_donor: latents providing the selected components, same shape as ``z_target``.
    V: right eigenvectors (k, k); U: their inverse (k, k) (from `eig`).
    modes: boolean mask (k,) or integer indices into the k modes.

  Returns:
    Real latents with the shape and dtype of ``z_target``.
  """
  checks.array_of_rank("z_target", z_target, range(1, 33), "(..., k)")
  checks.array_of_rank("z_donor", z_donor, range(1, 33), "(..., k)")
  if z_target.shape != z_donor.shape:
    raise ValueError(f"z_target and z_donor must have the same shape; got "
                     f"{tuple(z_target.shape)} and {tuple(z_donor.shape)}.")
  k = z_target.shape[-1]
  for name, m in (("V", V), ("U", U)):
    if checks.square_operator(name, m, allow_complex=True) != k:
      raise ValueError(f"{name} must be ({k}, {k}) to match latents with k = {k}; got "
                       f"{tuple(m.shape)}.")
  mask = modes_to_mask(modes, k)
  with jax.default_matmul_precision("highest"):
    phi_target = z_target @ V
    phi_donor = z_donor @ V
    phi = jnp.where(jnp.broadcast_to(mask, phi_target.shape), phi_donor, phi_target)
    return jnp.real(phi @ U).astype(z_target.dtype)
