"""Koopman analysis of the hidden states of a trained sequence model (KANN; Naiman & Azencot,
AAAI 2023), and the projected-fitting pieces it stands on.

Hidden states Z (b, T, H) of a frozen network are projected onto their top-r right singular
vectors P (H, r): ``Zp = Z P``. One operator is fitted to the projected states,
``Zp[:, :-1] C ≈ Zp[:, 1:]`` (`fit_koopman`), and eigendecomposed, ``C = V Λ U``; the
eigen-coordinates ``Φ = Zp V`` show which inputs excite which mode. Variable-length sequences
padded to T give their valid lengths: padding then enters neither the basis nor the fit (the
reference fits its padding too).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from koopjax._src import checks
from koopjax._src.koopman import eig
from koopjax._src.koopman import fit_koopman
from koopjax._src.koopman import modes_to_mask

_HIGHEST = jax.lax.Precision.HIGHEST


class KoopmanAnalysis(NamedTuple):
  """The linear (Koopman) picture of a batch of hidden-state sequences.

  Attributes:
    basis: P, (H, r), orthonormal columns: the top-r right singular vectors of the states.
    operator: C, (r, r), with ``(Z P)[:, :-1] C ≈ (Z P)[:, 1:]``.
    eigenvalues: λ, (r,) complex.
    eigenvectors: V, (r, r) complex, right eigenvectors of C in columns (``C = V Λ V⁻¹``).
    coordinates: Φ = Z P V, (b, T, r) complex (zero on padded steps).
  """
  basis: jax.Array
  operator: jax.Array
  eigenvalues: jax.Array
  eigenvectors: jax.Array
  coordinates: jax.Array


def _step_mask(lengths: jax.Array | None, batch: int, frames: int) -> jax.Array:
  """(b, T) bool of the valid steps (all True without ``lengths``)."""
  if lengths is None:
    return jnp.ones((batch, frames), bool)
  if jnp.shape(lengths) != (batch,) or not jnp.issubdtype(jnp.asarray(lengths).dtype,
                                                           jnp.integer):
    raise ValueError(f"lengths must be integers of shape ({batch},), one per sequence; got "
                     f"{tuple(jnp.shape(lengths))}.")
  return jnp.arange(frames)[None, :] < jnp.asarray(lengths)[:, None]


def projection_basis(states: jax.Array, rank: int, lengths: jax.Array | None = None
                     ) -> jax.Array:
  """The top-``rank`` right singular vectors of the stacked states (no centring, as
  scikit-learn's TruncatedSVD), padded steps left out.

  Args:
    states: (b, T, H). rank: r, 1 <= r <= H (a Python int). lengths: (b,) or None.

  Returns:
    P, (H, r), orthonormal columns, ordered by singular value (each defined up to its sign).
  """
  checks.array_of_rank("states", states, 3, "(batch, steps, hidden)")
  b, t, h = states.shape
  rank = checks.int_in_range("rank", rank, 1, h)
  valid = _step_mask(lengths, b, t)[..., None]
  rows = jnp.where(valid, states, jnp.zeros_like(states)).reshape(b * t, h)
  _, _, vt = jnp.linalg.svd(rows, full_matrices=False)
  return vt[:rank].T


def default_rank(states_shape: tuple[int, ...]) -> int:
  """The reference's rank, ``min(b (T − 1), H) − 1`` (at least 1)."""
  b, t, h = states_shape
  return max(1, min(b * (t - 1), h) - 1)


def koopman_analysis(states: jax.Array, *, rank: int | None = None,
                     lengths: jax.Array | None = None, ridge: float = 0.0,
                     backend: str = "auto") -> KoopmanAnalysis:
  """Fits one Koopman operator to the hidden states of a sequence model and analyses it.

  ``P = projection_basis(states, rank, lengths)``, ``Zp = states P``, ``C = fit_koopman(Zp,
  lengths=lengths, ridge=ridge)``, ``C = V Λ V⁻¹`` (`koopjax.eig` on ``backend``),
  ``Φ = Zp V``. Rank-deficient states give a finite, minimum-norm C.

  Args:
    states: hidden states, (b, T, H) real, T >= 2.
    rank: r, 1 <= r <= H; default `default_rank` (``min(b (T − 1), H) − 1``, the reference's,
      computed from the padded shape).
    lengths: valid steps per sequence, (b,) integers >= 2, or None (all T). Padding enters
      neither the basis nor the fit; its coordinates are 0. (The reference fits padding too.)
    ridge: Tikhonov regulariser of the fit.
    backend: where the eigendecomposition runs ("auto", "device", "host").

  Returns:
    `KoopmanAnalysis`. `jit`-compatible with ``rank`` static.
  """
  checks.array_of_rank("states", states, 3, "(batch, steps, hidden)")
  b, t, h = states.shape
  if t < 2:
    raise ValueError(f"states need at least 2 steps for a Koopman fit; got shape "
                     f"{tuple(states.shape)}.")
  rank = default_rank(states.shape) if rank is None else rank
  if lengths is not None:
    try:  # concrete lengths are checked here; traced ones are the caller's to get right
      shortest = int(jnp.min(jnp.asarray(lengths)))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError):
      shortest = 2
    if shortest < 2:
      raise ValueError(f"every sequence needs lengths >= 2 (a step and its successor); got a "
                       f"length of {shortest}.")
  valid = _step_mask(lengths, b, t)[..., None]
  states = jnp.where(valid, states, jnp.zeros_like(states))
  basis = projection_basis(states, rank)  # zero rows leave the singular vectors as they are
  projected = jnp.einsum("bth,hr->btr", states, basis, precision=_HIGHEST)
  operator = fit_koopman(projected, ridge=ridge, lengths=lengths)
  decomposition = eig(operator, backend=backend)
  with jax.default_matmul_precision("highest"):
    coordinates = projected.astype(decomposition.V.dtype) @ decomposition.V
  return KoopmanAnalysis(basis, operator, decomposition.eigenvalues, decomposition.V,
                         coordinates)


def mode_amplitudes(coordinates: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
  """How much each mode is excited: the batch mean of ``Σ_t |Φ[b, t, j]|`` over valid steps.

  KANN ranks eigenvectors by this (its ECG analysis). Args: coordinates (b, T, r) complex;
  lengths (b,) or None. Returns: (r,) real.
  """
  checks.array_of_rank("coordinates", coordinates.real, 3, "(batch, steps, modes)")
  b, t, _ = coordinates.shape
  valid = _step_mask(lengths, b, t)[..., None]
  return jnp.mean(jnp.sum(jnp.where(valid, jnp.abs(coordinates), 0.0), axis=1), axis=0)


def continuous_eigenvalues(eigenvalues: jax.Array, dt: float) -> jax.Array:
  """Continuous-time eigenvalues ``log(λ) / Δt`` of a discrete-time operator.

  The real part is a growth rate (< 0: decay), the imaginary part an angular frequency in
  radians per unit time, in (−π/Δt, π/Δt]. λ = 0 gives a real part of −inf.

  Args:
    eigenvalues: λ, any shape, complex or real. dt: the sampling interval Δt > 0.
  """
  dt = checks.positive_float("dt", dt)
  eigenvalues = jnp.asarray(eigenvalues)
  if not jnp.issubdtype(eigenvalues.dtype, jnp.complexfloating):
    eigenvalues = eigenvalues.astype(jnp.complex64 if eigenvalues.dtype != jnp.float64
                                     else jnp.complex128)
  return jnp.log(eigenvalues) / dt


def modal_states(analysis: KoopmanAnalysis, modes: jax.Array) -> jax.Array:
  """Hidden states rebuilt from some modes only: ``Re(Φ[..., J] V⁻¹[J, :]) Pᵀ``, (b, T, H).

  With every mode, this is the states' projection onto the basis. ``modes``: a boolean mask
  (r,) or integer indices; keep both members of a conjugate pair together.
  """
  mask = modes_to_mask(jnp.asarray(modes), analysis.operator.shape[0])
  with jax.default_matmul_precision("highest"):
    u = jnp.linalg.inv(analysis.eigenvectors)
    phi = jnp.where(mask, analysis.coordinates, jnp.zeros_like(analysis.coordinates))
    return (jnp.real(phi @ u) @ analysis.basis.T).astype(analysis.basis.dtype)
