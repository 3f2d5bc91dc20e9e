"""Hessian λ_max by power iteration and the Hutchinson trace, against a dense Hessian."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from koopjax._src import hessian


def _small_problem(key):
  """A tiny two-layer network's loss on fixed data: non-quadratic, parameters in a dict."""
  x = jax.random.normal(key(0), (32, 3))
  y = jnp.sin(x @ jnp.array([1.0, -2.0, 0.5]))
  params = {"w1": 0.7 * jax.random.normal(key(1), (3, 4)), "w2": jax.random.normal(key(2), (4,))}

  def loss(p):
    return jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"] - y) ** 2)

  flat, unravel = ravel_pytree(params)
  dense = np.asarray(jax.hessian(lambda v: loss(unravel(v)))(flat), np.float64)
  return loss, params, dense


def test_hessian_vector_product_matches_dense(key):
  loss, params, dense = _small_problem(key)
  v = jax.tree.map(jnp.ones_like, params)
  flat_hv = ravel_pytree(hessian.hessian_vector_product(loss, params, v))[0]
  np.testing.assert_allclose(flat_hv, dense @ np.ones(len(dense)), rtol=1e-4, atol=1e-5)


def test_power_iteration_finds_the_top_eigenvalue(key):
  loss, params, dense = _small_problem(key)
  found = jax.jit(lambda p: hessian.hessian_top_eigenvalue(loss, p, key(3), iterations=200))(
      params)
  np.testing.assert_allclose(found, np.linalg.eigvalsh(dense).max(), rtol=1e-3)


def test_top_eigenvalue_when_the_largest_in_magnitude_is_negative(key):
  """H = diag(−3, 1, 0.5, −0.2): λ₁ = −3, λ_max = 1 (found on H + 3I)."""
  diagonal = jnp.array([-3.0, 1.0, 0.5, -0.2])

  def loss(p):
    return 0.5 * jnp.sum(diagonal * p["w"] ** 2)

  found = hessian.hessian_top_eigenvalue(loss, {"w": jnp.ones(4)}, key(4), iterations=300)
  np.testing.assert_allclose(found, 1.0, rtol=1e-3)


def test_hutchinson_trace_within_its_standard_error(key):
  loss, params, dense = _small_problem(key)
  estimate = hessian.hutchinson_trace(loss, params, key(4), samples=400, batch_size=50)
  assert abs(float(estimate.trace) - np.trace(dense)) < 3 * float(estimate.stderr)
  assert float(estimate.stderr) > 0


def test_bad_counts_are_refused(key):
  loss, params, _ = _small_problem(key)
  with pytest.raises(ValueError, match="iterations must be >= 1"):
    hessian.hessian_top_eigenvalue(loss, params, key(0), iterations=0)
  with pytest.raises(ValueError, match="samples must be >= 2"):
    hessian.hutchinson_trace(loss, params, key(0), samples=1)
