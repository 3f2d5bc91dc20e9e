"""The Lipschitz RNN's matrices and cells, and the baselines, against NumPy and the maths."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import koopjax as kj
from koopjax.nn import recurrent


def test_lipschitz_matrix_is_the_formula(key):
  m = np.asarray(jax.random.normal(key(0), (3, 6, 6)))
  a = np.asarray(kj.lipschitz_matrix(m, 0.7, 0.05))
  mt = np.swapaxes(m, -1, -2)
  np.testing.assert_allclose(a, 0.3 * (m + mt) + 0.7 * (m - mt) - 0.05 * np.eye(6), atol=1e-6)
  # Its symmetric part is (1 − β)(M + Mᵀ) − γ I.
  np.testing.assert_allclose((a + np.swapaxes(a, -1, -2)) / 2,
                             0.3 * (m + mt) - 0.05 * np.eye(6), atol=1e-6)


def test_at_beta_one_every_eigenvalue_has_real_part_minus_gamma(key):
  m = np.asarray(jax.random.normal(key(1), (16, 16)), np.float64)
  values = np.linalg.eigvals(np.asarray(kj.lipschitz_matrix(m, 1.0, 0.3), np.float64))
  np.testing.assert_allclose(values.real, -0.3, atol=1e-5)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_negative_definite_symmetric_part_makes_the_flow_contract(key, beta):
  """For β < 1 with (1 − β)(M + Mᵀ) − γI ≺ 0: max Re λ(A) <= λ_max(sym A) < 0 and
  ‖exp(tA) h‖ <= exp(t λ_max(sym A)) ‖h‖ for every t (the continuous system is stable)."""
  rng = np.random.default_rng(int(10 * beta))
  m = rng.normal(size=(8, 8)) / 8
  gamma = 1.0 + 2 * (1 - beta) * np.linalg.eigvalsh((m + m.T) / 2).max()
  a = np.asarray(kj.lipschitz_matrix(jnp.asarray(m, jnp.float32), beta, gamma), np.float64)
  bound = np.linalg.eigvalsh((a + a.T) / 2).max()
  assert bound < 0
  assert np.linalg.eigvals(a).real.max() <= bound + 1e-6
  h = rng.normal(size=8)
  for t in (0.5, 1.0, 4.0):
    flowed = np.linalg.norm(scipy.linalg.expm(t * a) @ h)
    assert flowed <= np.exp(t * bound) * np.linalg.norm(h) + 1e-9


def test_lipschitz_matrix_rejects_non_square():
  with pytest.raises(ValueError, match=r"square matrices of shape \(\.\.\., n, n\)"):
    kj.lipschitz_matrix(jnp.zeros((3, 4)), 0.5, 0.1)


def _cell_and_params(cell, key, features=5, inputs=3):
  x = jax.random.normal(key(2), (4, inputs))
  h = jax.random.normal(key(3), (4, features))
  params = cell.init(key(4), h, x)["params"]
  return x, h, jax.tree.map(np.asarray, params)


def _numpy_f(h, x, p, beta, gamma, alpha):
  m_a, m_w = p["M_A"], p["M_W"]
  a = (1 - beta) * (m_a + m_a.T) + beta * (m_a - m_a.T) - gamma * np.eye(len(m_a))
  w = (1 - beta) * (m_w + m_w.T) + beta * (m_w - m_w.T) - gamma * np.eye(len(m_w))
  z = x @ p["U"]["kernel"] + p["U"]["bias"]
  return alpha * (a @ h.T).T + np.tanh((w @ h.T).T + z)


def test_euler_step_equals_numpy(key):
  cell = recurrent.LipschitzRNNCell(5, beta=0.7, gamma=0.1, eps=0.2, alpha=0.8, init_std=3.0)
  x, h, p = _cell_and_params(cell, key)
  new, out = cell.apply({"params": p}, h, x)
  h, x = np.asarray(h, np.float64), np.asarray(x, np.float64)
  expected = h + 0.2 * _numpy_f(h, x, p, 0.7, 0.1, 0.8)
  np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(new, out)


def test_midpoint_step_is_two_half_computations(key):
  cell = recurrent.LipschitzRNNCell(5, beta=0.6, gamma=0.05, eps=0.3, init_std=3.0,
                                    integrator="midpoint")
  x, h, p = _cell_and_params(cell, key)
  new, _ = cell.apply({"params": p}, h, x)
  h, x = np.asarray(h, np.float64), np.asarray(x, np.float64)
  half = h + 0.15 * _numpy_f(h, x, p, 0.6, 0.05, 1.0)          # to the middle of the step
  expected = h + 0.3 * _numpy_f(half, x, p, 0.6, 0.05, 1.0)    # the slope there, a full step
  np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)


def test_baseline_steps_equal_their_equations(key):
  def dense(x, p):
    return np.asarray(x, np.float64) @ p["U"]["kernel"] + p["U"]["bias"]

  simple = recurrent.SimpleRNNCell(5, init_std=2.0)
  x, h, p = _cell_and_params(simple, key)
  np.testing.assert_allclose(simple.apply({"params": p}, h, x)[0],
                             np.tanh(np.asarray(h) @ p["W"].T + dense(x, p)), atol=1e-6)
  residual = recurrent.ResidualRNNCell(5, eps=0.4, init_std=2.0)
  x, h, p = _cell_and_params(residual, key)
  np.testing.assert_allclose(residual.apply({"params": p}, h, x)[0],
                             h + 0.4 * np.tanh(np.asarray(h) @ p["W"].T + dense(x, p)),
                             atol=1e-6)
  antisymmetric = recurrent.AntisymmetricRNNCell(5, eps=0.4, gamma=0.2, init_std=2.0)
  x, h, p = _cell_and_params(antisymmetric, key)
  w = p["M_W"] - p["M_W"].T - 0.2 * np.eye(5)
  np.testing.assert_allclose(antisymmetric.apply({"params": p}, h, x)[0],
                             h + 0.4 * np.tanh(np.asarray(h) @ w.T + dense(x, p)), atol=1e-6)


def test_initialisation_scale(key):
  cell = recurrent.LipschitzRNNCell(400, init_std=8.0)
  p = cell.init(key(0), jnp.zeros((1, 400)), jnp.zeros((1, 1)))["params"]
  np.testing.assert_allclose(np.std(p["M_A"]), 8.0 / 400, rtol=0.02)


@pytest.mark.parametrize("kind", recurrent.CELLS)
def test_every_cell_scans_under_flax_rnn(key, kind):
  """nn.RNN over T steps equals calling the cell T times from h_0 = 0."""
  cell = recurrent.make_cell(kind, 6, eps=0.3)
  x = jax.random.normal(key(5), (3, 7, 2))
  rnn = nn.RNN(cell)
  variables = rnn.init(key(6), x)
  states = rnn.apply(variables, x)
  carry = cell.initialize_carry(key(0), x[:, 0].shape)
  for t in range(7):
    carry, out = cell.apply({"params": variables["params"]["cell"]}, carry, x[:, t])
    np.testing.assert_allclose(states[:, t], out, rtol=1e-5, atol=1e-6)


def test_unknown_cell_lists_the_cells():
  with pytest.raises(ValueError, match="unknown recurrent cell 'elman'; available: lipschitz"):
    recurrent.make_cell("elman", 4)


def test_max_real_eigenvalue(key):
  m = jax.random.normal(key(7), (2, 5, 5))
  expected = np.linalg.eigvals(np.asarray(m, np.float64)).real.max(-1)
  np.testing.assert_allclose(kj.max_real_eigenvalue(m), expected, rtol=1e-4)
