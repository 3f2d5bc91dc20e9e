"""Spectral machinery: static/dynamic mode selection, the SKD spectral loss, eigenvalue
initialisation ("eigeninit") and eigenvalue penalties ("eigenloss"), and a helper for
user-defined differentiable penalties of eigenvalues and eigenvectors.

All losses are pure jnp functions of the operator ``C`` (k, k) and differentiable under
`jit` (first order), through `koopjax.eigvals` on the backend their ``eig_backend`` names
(XLA's own where it has eig, NumPy on the host on TPU; see `koopjax._src.eigvals`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from koopjax._src import checks
from koopjax._src.eigvals import eigvals
from koopjax._src.eigvals import resolve_backend

STATIC_MODES = ("norm", "real", "ball", "none")
DYNAMIC_MODES = ("strict", "thresh", "ball", "real", "none")
EIGENINIT_DISTRIBUTIONS = ("unit_circle", "disk", "ring", "spike_and_slab", "gaussian")
EIGENLOSS_KINDS = ("unit_circle", "stability")


def _check_eigenvalues(eigenvalues: jax.Array) -> int:
  shape = getattr(eigenvalues, "shape", None)
  if shape is None or len(shape) != 1:
    raise ValueError(f"eigenvalues must have shape (k,); got "
                     f"{None if shape is None else tuple(shape)}.")
  if not (jnp.issubdtype(eigenvalues.dtype, jnp.complexfloating)
          or jnp.issubdtype(eigenvalues.dtype, jnp.floating)):
    raise TypeError(f"eigenvalues must be complex (or real floating); got {eigenvalues.dtype}.")
  return int(shape[0])


def _staticness(eigenvalues: jax.Array, mode: str) -> jax.Array:
  """Per-eigenvalue key, larger = more static, for a static mode (``none`` uses ``norm``)."""
  re, im = jnp.real(eigenvalues), jnp.imag(eigenvalues)
  if mode in ("norm", "none"):
    return re**2 + im**2
  if mode == "real":
    return re
  return -jnp.hypot(re - 1.0, im)  # ball: closest to 1 is most static


def static_mask(eigenvalues: jax.Array, n_static: int, mode: str) -> jax.Array:
  """Boolean mask of the static eigenvalues, counting conjugate pairs as one component.

  Eigenvalues are ranked from most to least static by the mode's key: ``norm`` largest
  ``|λ|²``, ``real`` largest ``Re λ``, ``ball`` smallest ``|λ − 1|`` (``none`` ranks like
  ``norm``). Walking down that ranking, a real eigenvalue (``Im λ == 0`` exactly) is one
  component and a complex conjugate pair (adjacent under every key) is one component of
  two eigenvalues; the first ``n_static`` components form the static set S, so
  ``n_static <= |S| <= 2 n_static``. Implemented with a cumulative count (1 per real
  eigenvalue, 1/2 per complex one): an eigenvalue is static iff fewer than ``n_static``
  components precede it. Fixed output shape, so it is `jit`-safe; no gradient flows.

  Args:
    eigenvalues: shape (k,), complex (as from `eig`).
    n_static: κ, the number of static components, 0 <= κ <= k (a Python int).
    mode: one of "norm", "real", "ball", "none".

  Returns:
    Boolean mask, shape (k,), True on S.
  """
  k = _check_eigenvalues(eigenvalues)
  checks.one_of("static mode", mode, STATIC_MODES)
  n_static = checks.int_in_range("n_static", n_static, 0, k)
  eigenvalues = jax.lax.stop_gradient(eigenvalues)
  key = _staticness(eigenvalues, mode)
  order = jnp.argsort(-key, stable=True)
  weight = jnp.where(jnp.imag(eigenvalues[order]) == 0, 1.0, 0.5)
  components_before = jnp.cumsum(weight) - weight
  static_sorted = components_before < n_static
  return jnp.zeros((k,), bool).at[order].set(static_sorted)


def near_one_mask(eigenvalues: jax.Array, radius: float) -> jax.Array:
  """Boolean mask of the eigenvalues within ``radius`` of 1: ``|λ − 1| < radius``.

  A static set read off the spectrum instead of counted: SKD's loss pulls κ components
  to 1 (`static_mask`), but a trained C may hold more modes that barely move (say
  ``|λ| ≥ 0.9``, which keeps half of a mode over 8 frames), and a swap that leaves them in
  D keeps the target's share of identity. Conjugate pairs are kept or dropped together
  (``|λ − 1| = |λ̄ − 1|``). Fixed output shape, `jit`-safe; no gradient flows.

  Args:
    eigenvalues: shape (k,), complex (as from `eig`) or real.
    radius: r > 0 (a Python float).

  Returns:
    Boolean mask, shape (k,), True where ``|λ − 1| < r``.
  """
  _check_eigenvalues(eigenvalues)
  radius = checks.positive_float("radius", radius)
  eigenvalues = jax.lax.stop_gradient(eigenvalues)
  return jnp.abs(eigenvalues - 1.0) < radius


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean of x over mask (0 when the mask is empty)."""
  count = jnp.sum(mask)
  return jnp.where(count > 0, jnp.sum(jnp.where(mask, x, 0.0)) / jnp.maximum(count, 1), 0.0)


def _above(x: jax.Array, threshold: float) -> jax.Array:
  """τ_θ(x) = x if x > θ else 0."""
  return jnp.where(x > threshold, x, 0.0)


def skd_spectral_loss(
    c: jax.Array,
    *,
    n_static: int,
    static_mode: str = "ball",
    dynamic_mode: str = "real",
    dynamic_thresh: float = 0.5,
    ball_thresh: float = 0.6,
    eigs_thresh: float = 0.5,
    eig_backend: str = "auto",
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """SKD's spectral loss ``E_eig = E_static + E_dynamic`` on the eigenvalues of C.

  With eigenvalues λ of C, ``Dn = |λ|²``, ``Dr = Re λ``, ``Db = |λ − 1|``, S the static set
  of `static_mask` and D its complement::

      static  norm:  mean_S (Dn − 1)²       dynamic strict: mean_D (Dn − ρ²)²,  ρ = eigs_thresh
              real:  mean_S (Dr − 1)²               thresh: mean_D τ_θ(Dn),     θ = dynamic_thresh
              ball:  mean_S Db²                     ball:   mean_D 1[Db < β](2 − Db), β = ball_thresh
              none:  0                              real:   mean_D τ_θ(Re λ)
                                                    none:   0

  where ``τ_θ(x) = x if x > θ else 0``. A mean over an empty set is 0. Gradients flow
  through `jnp.linalg.eigvals` (first order; finite for simple eigenvalues).

  Args:
    c: operator, shape (k, k), real.
    n_static: κ, number of static components (conjugate pair = one), 0 <= κ <= k.
    static_mode: "norm" | "real" | "ball" | "none" (the reference trains with "ball").
    dynamic_mode: "strict" | "thresh" | "ball" | "real" | "none" (reference: "real").
    dynamic_thresh: θ for "thresh" and "real".
    ball_thresh: β for dynamic "ball".
    eigs_thresh: ρ for "strict".
    eig_backend: where the eigenvalues are computed (`koopjax.eigvals`).

  Returns:
    (loss, {"static": E_static, "dynamic": E_dynamic}), all scalars.

  Non-finite and defective operators: a NaN or Inf in C makes every eigenvalue NaN (on both
  backends), so the loss and its gradient are NaN — no error is raised; wrap the call in
  `koopjax.check_finite` to be told which input was not finite. A defective C (a repeated
  eigenvalue without a full set of eigenvectors) has a finite loss, but eigenvalue derivatives
  scale with the eigenvectors' condition number, so the gradient grows without bound as C
  nears one (SKD bounds it with `koopjax.clip_gradient_norm`, config ``eig_grad_clip``).
  """
  checks.square_operator("C", c)
  checks.one_of("static_mode", static_mode, STATIC_MODES)
  checks.one_of("dynamic_mode", dynamic_mode, DYNAMIC_MODES)
  eigenvalues = eigvals(c, backend=eig_backend)
  mask = static_mask(eigenvalues, n_static, static_mode)
  re, im = jnp.real(eigenvalues), jnp.imag(eigenvalues)
  dn = re**2 + im**2
  db_sq = (re - 1.0)**2 + im**2

  if static_mode == "norm":
    static = _masked_mean((dn - 1.0)**2, mask)
  elif static_mode == "real":
    static = _masked_mean((re - 1.0)**2, mask)
  elif static_mode == "ball":
    static = _masked_mean(db_sq, mask)
  else:
    static = jnp.zeros((), re.dtype)

  dynamic_set = ~mask
  if dynamic_mode == "strict":
    dynamic = _masked_mean((dn - eigs_thresh**2)**2, dynamic_set)
  elif dynamic_mode == "thresh":
    dynamic = _masked_mean(_above(dn, dynamic_thresh), dynamic_set)
  elif dynamic_mode == "ball":
    # sqrt only where it is used, so the gradient stays finite at λ = 1.
    near = db_sq < ball_thresh**2
    db = jnp.sqrt(jnp.where(near, db_sq, 1.0))
    dynamic = _masked_mean(jnp.where(near, 2.0 - db, 0.0), dynamic_set)
  elif dynamic_mode == "real":
    dynamic = _masked_mean(_above(re, dynamic_thresh), dynamic_set)
  else:
    dynamic = jnp.zeros((), re.dtype)
  return static + dynamic, {"static": static, "dynamic": dynamic}


def _safe_modulus(eigenvalues: jax.Array) -> jax.Array:
  """|λ| with a finite gradient at λ = 0 (and NaN for a NaN eigenvalue, not 0)."""
  sq = jnp.real(eigenvalues)**2 + jnp.imag(eigenvalues)**2
  positive = sq > 0
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), sq * 0.0)


def eigenloss(c: jax.Array, kind: str = "unit_circle", *, radius: float = 1.0,
              eig_backend: str = "auto") -> jax.Array:
  """Eigenvalue penalty for a learned operator (Miller et al., 2022).

  ``unit_circle``: ``Σ_j (|λ_j| − radius)²`` (radius 1: pull every mode onto the circle).
  ``stability``:   ``Σ_j max(|λ_j| − radius, 0)²`` (push modes inside the disk of the radius).

  Args:
    c: operator, shape (k, k), real.
    kind: "unit_circle" or "stability".
    radius: target modulus r.
    eig_backend: where the eigenvalues are computed (`koopjax.eigvals`).

  Returns:
    Scalar penalty, differentiable in ``c``. NaN when C holds a NaN or Inf; near a defective C
    the value is finite and the gradient may be very large (see `skd_spectral_loss`).
  """
  checks.square_operator("C", c)
  return eigenloss_of_eigenvalues(eigvals(c, backend=eig_backend), kind, radius=radius)


def eigenloss_of_eigenvalues(eigenvalues: jax.Array, kind: str = "unit_circle", *,
                             radius: float = 1.0) -> jax.Array:
  """`eigenloss` of eigenvalues already computed (one eigendecomposition for several uses)."""
  checks.one_of("eigenloss kind", kind, EIGENLOSS_KINDS)
  modulus = _safe_modulus(eigenvalues)
  if kind == "unit_circle":
    return jnp.sum((modulus - radius)**2)
  return jnp.sum(jnp.maximum(modulus - radius, 0.0)**2)


def spectral_penalty(fn: Callable[..., jax.Array], *, with_eigenvectors: bool = False,
                     eig_backend: str = "auto") -> Callable[[jax.Array], jax.Array]:
  """Turns a function of the spectrum into a differentiable penalty of the operator.

  ``spectral_penalty(fn)(C) = fn(λ)`` with λ = eigvals(C), or, with
  ``with_eigenvectors=True``, ``fn(λ, V)`` with V the right eigenvectors (columns) from
  ``jax.lax.linalg.eig(C, enable_eigvec_derivs=True)``. The result can be used under `jit`
  and differentiated with `jax.grad` (first order). Eigenvectors are defined up to a complex
  scale each, so ``fn`` should depend on V only through scale-invariant quantities (e.g.
  ``|V_ij|² / Σ_i |V_ij|²``); their derivatives are NaN for repeated eigenvalues.

  Example::

      penalty = kj.spectral_penalty(lambda lam: jnp.sum(jnp.maximum(jnp.abs(lam) - 0.9, 0)**2))
      g = jax.jit(jax.grad(penalty))(C)

  Args:
    fn: ``fn(eigenvalues) -> scalar`` or ``fn(eigenvalues, V) -> scalar`` (jnp code).
    with_eigenvectors: whether ``fn`` also takes the eigenvectors (device backend only: the
      host path differentiates eigenvalues alone).
    eig_backend: where the eigenvalues are computed (`koopjax.eigvals`).

  Returns:
    A function ``C (k, k) -> fn(...)``.
  """
  def penalty(c: jax.Array) -> jax.Array:
    checks.square_operator("C", c)
    if not with_eigenvectors:
      return fn(eigvals(c, backend=eig_backend))
    if resolve_backend(eig_backend) != "device":
      raise ValueError(
          f"eigenvector derivatives are only available on the 'device' eig backend (XLA's "
          f"eig: CPU and GPU); eig_backend={eig_backend!r} resolves to the host path here, "
          "which differentiates eigenvalues only. Use a penalty of the eigenvalues, or "
          "eig_backend='device' on a CPU or GPU.")
    eigenvalues, v = jax.lax.linalg.eig(
        c, compute_left_eigenvectors=False, compute_right_eigenvectors=True,
        enable_eigvec_derivs=True)
    return fn(eigenvalues, v)

  return penalty


def _draw_moduli(key: jax.Array, k: int, distribution: str, params: dict[str, Any]
                 ) -> np.ndarray:
  """Draws k eigenvalue moduli from the named distribution."""
  def take(name, default):
    return float(params.pop(name, default))

  u = np.asarray(jax.random.uniform(key, (k,)), np.float64)
  if distribution == "unit_circle":
    moduli = np.ones(k)
  elif distribution == "disk":  # uniform over the disk's area
    moduli = take("radius", 1.0) * np.sqrt(u)
  elif distribution == "ring":  # uniform over the annulus' area
    inner, outer = take("inner", 0.5), take("outer", 1.0)
    if not 0 <= inner <= outer:
      raise ValueError(f"ring needs 0 <= inner <= outer; got inner={inner}, outer={outer}.")
    moduli = np.sqrt(inner**2 + u * (outer**2 - inner**2))
  elif distribution == "spike_and_slab":  # θ·U(0,1) + (1−θ)·δ(1)
    theta = take("theta", 0.5)
    if not 0 <= theta <= 1:
      raise ValueError(f"spike_and_slab needs 0 <= theta <= 1; got {theta}.")
    slab_key, value_key = jax.random.split(key)
    in_slab = np.asarray(jax.random.uniform(slab_key, (k,))) < theta
    moduli = np.where(in_slab, np.asarray(jax.random.uniform(value_key, (k,)), np.float64), 1.0)
  else:  # gaussian: |N(mean, std²)|
    mean, std = take("mean", 1.0), take("std", 0.1)
    moduli = np.abs(mean + std * np.asarray(jax.random.normal(key, (k,)), np.float64))
  if params:
    raise TypeError(f"eigeninit({distribution!r}) got unexpected parameters "
                    f"{sorted(params)}.")
  return moduli


def eigeninit(key: jax.Array, k: int, distribution: str = "unit_circle",
              dtype: Any = jnp.float32, **params: float) -> jax.Array:
  """A random real operator whose eigenvalue moduli follow a chosen distribution.

  Draws a Gaussian matrix ``A = V Λ V⁻¹``, keeps its eigenvectors and eigenvalue phases and
  replaces the moduli: ``λ'_j = r_j λ_j / |λ_j|`` (a real λ keeps its sign), with both
  members of a conjugate pair given the same ``r`` so that ``C = V Λ' V⁻¹`` stays real.
  Moduli ``r`` by distribution (parameters with defaults):

  - ``unit_circle``: r = 1.
  - ``disk``: uniform over the disk's area, r = radius·√u (radius=1).
  - ``ring``: uniform over the annulus' area between inner and outer (0.5, 1).
  - ``spike_and_slab``: r ~ θ·U(0,1) + (1−θ)·δ(1) (theta=0.5).
  - ``gaussian``: r = |mean + std·ε|, ε ~ N(0, 1) (mean=1, std=0.1).

  Runs eagerly once at initialisation (float64 on the host); it is not traceable.

  Args:
    key: JAX PRNG key.
    k: operator size.
    distribution: one of the names above.
    dtype: floating dtype of the result.
    **params: the distribution's parameters.

  Returns:
    C, shape (k, k), real, whose eigenvalue moduli are the drawn r.
  """
  k = checks.int_in_range("k", k, 1, 100_000)
  checks.one_of("eigeninit distribution", distribution, EIGENINIT_DISTRIBUTIONS)
  matrix_key, modulus_key = jax.random.split(key)
  a = np.asarray(jax.random.normal(matrix_key, (k, k)), np.float64) / np.sqrt(k)
  eigenvalues, v = np.linalg.eig(a)
  moduli = _draw_moduli(modulus_key, k, distribution, dict(params))
  # Both members of a conjugate pair take the modulus drawn for the lower index.
  partner = np.argmin(np.abs(eigenvalues[:, None] - np.conj(eigenvalues)[None, :]), axis=1)
  moduli = moduli[np.minimum(np.arange(k), partner)]
  phases = eigenvalues / np.maximum(np.abs(eigenvalues), np.finfo(np.float64).tiny)
  c = (v * (moduli * phases)[None, :]) @ np.linalg.inv(v)
  return jnp.asarray(np.real(c), dtype)
