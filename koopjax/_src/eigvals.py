"""Eigenvalues of real operators on every backend: XLA's own, or NumPy's LAPACK on the host.

XLA implements the non-symmetric eigendecomposition on CPU and GPU but not on TPU, so there a
spectral loss cannot compile through `jax.numpy.linalg.eigvals`. The *host* path computes it
with NumPy through `jax.pure_callback` — one host round trip per call, under `jit`, `vmap` and
`shard_map` — and differentiates it with its own rule: for ``C = V Λ U`` (``U = V⁻¹``, rows of
U the left eigenvectors normalised so that ``U V = I``),

    dλᵢ = uᵢᵀ dC vᵢ / (uᵢᵀ vᵢ) = (U dC V)ᵢᵢ,

the same first-order derivative XLA's `eigvals` has. Eigenvector derivatives are only on the
device path (`jax.lax.linalg.eig(..., enable_eigvec_derivs=True)`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from koopjax._src import checks

EIG_BACKENDS = ("auto", "device", "host")
# Platforms whose XLA has no non-symmetric eigendecomposition.
PLATFORMS_WITHOUT_EIG = ("tpu",)
_HIGHEST = jax.lax.Precision.HIGHEST


def _platform() -> str:
  """The platform computations are placed on (a function, so tests can pretend to be a TPU)."""
  return jax.default_backend()


def resolve_backend(backend: str) -> str:
  """``"device"`` or ``"host"``: ``"auto"`` is the device where XLA has eig, else the host."""
  checks.one_of("eig backend", backend, EIG_BACKENDS)
  if backend == "auto":
    return "host" if _platform() in PLATFORMS_WITHOUT_EIG else "device"
  return backend


def _complex_dtype(dtype) -> np.dtype:
  return np.dtype(np.complex128 if dtype == jnp.float64 else np.complex64)


def _numpy_eig(c: np.ndarray):
  """(λ, V, U = V⁻¹) of (..., k, k) real matrices by NumPy, in the input's precision.

  A matrix with a NaN or Inf gives NaN everywhere, as XLA's eig does (NumPy would raise, and a
  train step must survive a non-finite step: its guard skips it).
  """
  c = np.asarray(c)
  ctype = _complex_dtype(c.dtype)
  real = c.astype(np.float64 if ctype == np.complex128 else np.float32)
  finite = np.all(np.isfinite(real), axis=(-2, -1))
  if not np.all(finite):
    real = np.where(finite[..., None, None], real, np.eye(real.shape[-1], dtype=real.dtype))
  eigenvalues, v = np.linalg.eig(real)
  u = np.linalg.inv(v)
  if not np.all(finite):
    eigenvalues, v, u = (np.where(finite.reshape(finite.shape + (1,) * (x.ndim - finite.ndim)),
                                  x, np.nan) for x in (eigenvalues, v, u))
  return eigenvalues.astype(ctype), v.astype(ctype), u.astype(ctype)


def _host_eig(c: jax.Array):
  """`_numpy_eig` as a `jax.pure_callback`: one host round trip, batched under `vmap`."""
  ctype = _complex_dtype(c.dtype)
  shapes = (jax.ShapeDtypeStruct(c.shape[:-1], ctype), jax.ShapeDtypeStruct(c.shape, ctype),
            jax.ShapeDtypeStruct(c.shape, ctype))
  return jax.pure_callback(_numpy_eig, shapes, c, vmap_method="broadcast_all")


@jax.custom_jvp
def _host_eigvals(c: jax.Array) -> jax.Array:
  return _host_eig(c)[0]


@_host_eigvals.defjvp
def _host_eigvals_jvp(primals, tangents):
  (c,), (dc,) = primals, tangents
  eigenvalues, v, u = _host_eig(c)
  d_eigenvalues = jnp.einsum("...ij,...jk,...ki->...i", u, dc.astype(v.dtype), v,
                             precision=_HIGHEST)
  return eigenvalues, d_eigenvalues


def _check_operators(c) -> None:
  shape = getattr(c, "shape", None)
  if shape is None or len(shape) < 2 or shape[-1] != shape[-2]:
    raise ValueError(f"C must be a square matrix (..., k, k); got shape "
                     f"{None if shape is None else tuple(shape)}.")
  if not jnp.issubdtype(c.dtype, jnp.floating):
    raise TypeError(f"C must be a real floating-point matrix; got dtype {c.dtype}.")


def eigvals(c: jax.Array, *, backend: str = "auto") -> jax.Array:
  """Differentiable eigenvalues of real square matrices, on the chosen backend.

  Args:
    c: operators, shape (..., k, k), real floating point (bfloat16 is computed in float32).
    backend: ``"device"`` (XLA's `jnp.linalg.eigvals`: CPU, GPU), ``"host"`` (NumPy on the host
      through `jax.pure_callback`, with the derivative of the module docstring) or ``"auto"``
      (the device where XLA has eig, the host on TPU).

  Returns:
    Eigenvalues, shape (..., k), complex64 (complex128 for float64 input). Both backends return
    LAPACK's order: a conjugate pair adjacent, the member with positive imaginary part first.
    First-order derivatives under `jit`, `vmap`, `grad` and inside `shard_map`.
  """
  _check_operators(c)
  if c.dtype in (jnp.bfloat16, jnp.float16):
    c = c.astype(jnp.float32)
  if resolve_backend(backend) == "device":
    return jnp.linalg.eigvals(c)
  return _host_eigvals(c)


def eig_host(c: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(λ, V, U = V⁻¹) of real matrices (..., k, k) from NumPy on the host; not differentiable."""
  _check_operators(c)
  return _host_eig(jax.lax.stop_gradient(c))
