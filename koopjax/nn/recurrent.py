"""Recurrent cells with one interface, for `flax.linen.RNN` to scan over time.

Every cell maps ``(carry, x_t) -> (carry, h_t)`` with inputs x_t (..., d) and hidden states
h_t (..., H), and starts from h_0 = 0. `make_cell(kind, features, ...)` builds one by name:

* ``lipschitz``: the Lipschitz RNN (Erichson et al., ICLR 2021), the ODE
  ``dh/dt = α A h + tanh(W h + U x + b)`` with ``A = A_{β,γ}(M_A)``, ``W = A_{β,γ}(M_W)``
  (`koopjax.lipschitz_matrix`), M ~ N(0, (init_std / H)²), x held fixed over one step of
  size ε, by Euler

      h' = h + ε (α A h + tanh(W h + U x + b))

  or by the explicit midpoint rule (second order)

      k = f(h),  h' = h + ε f(h + ε/2 · k),  f(h) = α A h + tanh(W h + U x + b);
* ``simple``: ``h' = tanh(W h + U x + b)`` (the vanilla RNN);
* ``residual``: ``h' = h + ε tanh(W h + U x + b)``;
* ``antisymmetric``: ``h' = h + ε tanh((M − Mᵀ − γ I) h + U x + b)`` (Chang et al., ICLR 2019);
* ``lstm``, ``gru``: Flax's `OptimizedLSTMCell` and `GRUCell` (the LSTM's output is its h).

The hidden state is a row vector, so ``A h`` is computed as ``h @ Aᵀ``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from koopjax._src.lipschitz import lipschitz_matrix

CELLS = ("lipschitz", "simple", "residual", "antisymmetric", "lstm", "gru")
INTEGRATORS = ("euler", "midpoint")
# Cells whose hidden-to-hidden matrices are built by `lipschitz_matrix` (spectra to log).
SPECTRAL_CELLS = ("lipschitz", "antisymmetric")


def scaled_normal(std_times_n: float):
  """N(0, (std_times_n / n)²) for an (n, n) matrix: the Lipschitz RNN's initialisation."""
  def init(key, shape, dtype=jnp.float32):
    return std_times_n / shape[-1] * jax.random.normal(key, shape, dtype)
  return init


class _VectorCell(nn.RNNCellBase):
  """A cell whose carry is the hidden state itself, (..., features), starting at zero."""
  features: int

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
    del rng
    return jnp.zeros(input_shape[:-1] + (self.features,), jnp.float32)

  @property
  def num_feature_axes(self) -> int:
    return 1


class LipschitzRNNCell(_VectorCell):
  """One step of the Lipschitz RNN (module docstring); parameters M_A, M_W, and U, b.

  Attributes:
    features: H.
    beta: β in [0, 1] of both A and W.
    gamma: γ >= 0 of both A and W.
    eps: ε > 0, the step size.
    alpha: α, the weight of the linear term.
    init_std: M ~ N(0, (init_std / H)²).
    integrator: "euler" or "midpoint".
  """
  beta: float = 0.75
  gamma: float = 0.001
  eps: float = 0.03
  alpha: float = 1.0
  init_std: float = 0.1
  integrator: str = "euler"

  @nn.compact
  def __call__(self, carry: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    if self.integrator not in INTEGRATORS:
      raise ValueError(f"integrator must be one of {', '.join(INTEGRATORS)}; got "
                       f"{self.integrator!r}.")
    n = self.features
    m_a = self.param("M_A", scaled_normal(self.init_std), (n, n))
    m_w = self.param("M_W", scaled_normal(self.init_std), (n, n))
    a = lipschitz_matrix(m_a, self.beta, self.gamma)
    w = lipschitz_matrix(m_w, self.beta, self.gamma)
    z = nn.Dense(n, name="U")(x)

    def f(h):
      return self.alpha * h @ a.T + jnp.tanh(h @ w.T + z)

    h = carry
    if self.integrator == "euler":
      h = h + self.eps * f(h)
    else:
      h = h + self.eps * f(h + 0.5 * self.eps * f(h))
    return h, h


class SimpleRNNCell(_VectorCell):
  """``h' = tanh(W h + U x + b)``; W ~ N(0, (init_std / H)²) like the Lipschitz cell's M."""
  init_std: float = 0.1

  @nn.compact
  def __call__(self, carry, x):
    w = self.param("W", scaled_normal(self.init_std), (self.features, self.features))
    h = jnp.tanh(carry @ w.T + nn.Dense(self.features, name="U")(x))
    return h, h


class ResidualRNNCell(_VectorCell):
  """``h' = h + ε tanh(W h + U x + b)``."""
  eps: float = 0.03
  init_std: float = 0.1

  @nn.compact
  def __call__(self, carry, x):
    w = self.param("W", scaled_normal(self.init_std), (self.features, self.features))
    h = carry + self.eps * jnp.tanh(carry @ w.T + nn.Dense(self.features, name="U")(x))
    return h, h


class AntisymmetricRNNCell(_VectorCell):
  """``h' = h + ε tanh((M − Mᵀ − γ I) h + U x + b)``; M − Mᵀ − γ I is `lipschitz_matrix` at
  β = 1."""
  eps: float = 0.03
  gamma: float = 0.001
  init_std: float = 0.1

  @nn.compact
  def __call__(self, carry, x):
    m = self.param("M_W", scaled_normal(self.init_std), (self.features, self.features))
    w = lipschitz_matrix(m, 1.0, self.gamma)
    h = carry + self.eps * jnp.tanh(carry @ w.T + nn.Dense(self.features, name="U")(x))
    return h, h


def make_cell(kind: str, features: int, *, beta: float = 0.75, gamma: float = 0.001,
              eps: float = 0.03, alpha: float = 1.0, init_std: float = 0.1,
              integrator: str = "euler", name: str | None = None) -> nn.RNNCellBase:
  """A cell by name (`CELLS`); fields a cell does not have are ignored.

  Raises:
    ValueError: an unknown ``kind`` (the message lists `CELLS`).
  """
  if kind == "lipschitz":
    return LipschitzRNNCell(features, beta=beta, gamma=gamma, eps=eps, alpha=alpha,
                            init_std=init_std, integrator=integrator, name=name)
  if kind == "simple":
    return SimpleRNNCell(features, init_std=init_std, name=name)
  if kind == "residual":
    return ResidualRNNCell(features, eps=eps, init_std=init_std, name=name)
  if kind == "antisymmetric":
    return AntisymmetricRNNCell(features, eps=eps, gamma=gamma, init_std=init_std, name=name)
  if kind == "lstm":
    return nn.OptimizedLSTMCell(features, name=name)
  if kind == "gru":
    return nn.GRUCell(features, name=name)
  raise ValueError(f"unknown recurrent cell {kind!r}; available: {', '.join(CELLS)}.")


def hidden_matrices(cell_params: dict[str, Any], kind: str, *, beta: float = 0.75,
                    gamma: float = 0.001) -> dict[str, jax.Array]:
  """The spectrally controlled matrices of a cell's parameters: {"A", "W"} of a Lipschitz
  cell, {"W"} of an antisymmetric one, {} for the others."""
  if kind == "lipschitz":
    return {"A": lipschitz_matrix(cell_params["M_A"], beta, gamma),
            "W": lipschitz_matrix(cell_params["M_W"], beta, gamma)}
  if kind == "antisymmetric":
    return {"W": lipschitz_matrix(cell_params["M_W"], 1.0, gamma)}
  return {}
