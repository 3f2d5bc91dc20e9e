"""Hidden-to-hidden matrices with a controlled spectrum (Lipschitz RNN; Erichson et al., 2021).

The Lipschitz RNN is the continuous-time system ``dh/dt = A h + tanh(W h + U x + b)``; both A
and W are built from a free matrix M as

    A_{β,γ} = (1 − β)(M + Mᵀ) + β(M − Mᵀ) − γ I,

a blend of a symmetric part (its eigenvalues are real) and a skew-symmetric part (its
eigenvalues are imaginary), shifted left by γ. The real part of every eigenvalue of A is
bounded by the symmetric part: ``max Re λ(A) <= λ_max((1 − β)(M + Mᵀ)) − γ``, and at β = 1
(pure skew part) every eigenvalue has real part exactly −γ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from koopjax._src.eigvals import eigvals


def lipschitz_matrix(m: jax.Array, beta: float | jax.Array, gamma: float | jax.Array
                     ) -> jax.Array:
  """A_{β,γ} = (1 − β)(M + Mᵀ) + β(M − Mᵀ) − γ I.

  Args:
    m: M, shape (..., n, n), real.
    beta: β in [0, 1]: 0 keeps only the symmetric part, 1 only the skew-symmetric part.
    gamma: γ >= 0, the shift of the spectrum to the left (the damping).

  Returns:
    A, shape (..., n, n), the dtype of ``m``.

  Raises:
    ValueError: ``m`` is not a (batch of) square matrices.
  """
  m = jnp.asarray(m)
  if m.ndim < 2 or m.shape[-1] != m.shape[-2]:
    raise ValueError(f"m must be square matrices of shape (..., n, n); got {m.shape}.")
  mt = jnp.swapaxes(m, -1, -2)
  eye = jnp.eye(m.shape[-1], dtype=m.dtype).reshape((1,) * (m.ndim - 2) + m.shape[-2:])
  return (1 - beta) * (m + mt) + beta * (m - mt) - gamma * eye


def max_real_eigenvalue(a: jax.Array) -> jax.Array:
  """max_i Re λ_i(A) of real square matrices (..., n, n): the growth rate of ``dh/dt = A h``.

  Eigenvalues by `koopjax.eigvals` (``backend="auto"``: on the host where XLA has no
  eigensolver). Not differentiated: a quantity to log.
  """
  values = eigvals(jax.lax.stop_gradient(a), backend="auto")
  return jnp.max(jnp.real(values), axis=-1)
