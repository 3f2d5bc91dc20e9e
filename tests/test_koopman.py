"""Tests of operator fitting, prediction, rollout, eigendecomposition and swaps."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import koopjax as kj


def _trajectories(a, b=6, steps=7, seed=0):
  """Noise-free z_{t+1} = z_t A from random initial rows; shape (b, steps + 1, k)."""
  rng = np.random.default_rng(seed)
  z = [rng.normal(size=(b, a.shape[0]))]
  for _ in range(steps):
    z.append(z[-1] @ a)
  return np.stack(z, axis=1)


def _stable_operator(k, seed):
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(k, k)))
  return q * rng.uniform(0.7, 1.0, size=k)


def test_fit_recovers_exact_operator():
  a = _stable_operator(5, 1)
  z = jnp.asarray(_trajectories(a), jnp.float32)
  c = jax.jit(kj.fit_koopman)(z)
  np.testing.assert_allclose(c, a, atol=2e-4)


def test_fit_matches_numpy_lstsq():
  rng = np.random.default_rng(2)
  z = rng.normal(size=(32, 8, 12)).astype(np.float32)
  expected = np.linalg.lstsq(z[:, :-1].reshape(-1, 12).astype(np.float64),
                             z[:, 1:].reshape(-1, 12).astype(np.float64), rcond=None)[0]
  np.testing.assert_allclose(kj.fit_koopman(jnp.asarray(z)), expected, atol=1e-5, rtol=1e-4)


def test_ridge_matches_closed_form():
  rng = np.random.default_rng(3)
  z = rng.normal(size=(4, 5, 6))
  zp, zf = z[:, :-1].reshape(-1, 6), z[:, 1:].reshape(-1, 6)
  expected = np.linalg.solve(zp.T @ zp + 0.7 * np.eye(6), zp.T @ zf)
  np.testing.assert_allclose(kj.fit_koopman(jnp.asarray(z, jnp.float32), ridge=0.7), expected,
                             atol=1e-5, rtol=1e-4)


def test_rank_deficient_and_zero_latents_are_finite():
  rng = np.random.default_rng(4)
  low_rank = rng.normal(size=(8, 6, 2)) @ rng.normal(size=(2, 10))  # rank 2 in k = 10
  for z in (low_rank, np.zeros((8, 6, 10))):
    z = jnp.asarray(z, jnp.float32)
    c = kj.fit_koopman(z)
    assert np.isfinite(np.asarray(c)).all()
    grad = jax.grad(lambda z: jnp.sum(kj.fit_koopman(z)**2))(z)
    assert np.isfinite(np.asarray(grad)).all()
  np.testing.assert_array_equal(kj.fit_koopman(jnp.zeros((2, 3, 4))), np.zeros((4, 4)))
  # rank-deficient: the minimum-norm least-squares solution, as numpy's lstsq returns it.
  z = np.asarray(low_rank)
  expected = np.linalg.lstsq(z[:, :-1].reshape(-1, 10), z[:, 1:].reshape(-1, 10),
                             rcond=None)[0]
  np.testing.assert_allclose(kj.fit_koopman(jnp.asarray(z, jnp.float32)), expected,
                             atol=2e-3)


def _mesh():
  return jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def test_fit_on_sharded_batch_equals_single_device():
  assert jax.device_count() == 8
  rng = np.random.default_rng(5)
  z = jnp.asarray(rng.normal(size=(32, 8, 10)), jnp.float32)
  expected = kj.fit_koopman(z)
  mesh = _mesh()
  z_sharded = jax.device_put(z, NamedSharding(mesh, P("data")))
  assert len(z_sharded.sharding.device_set) == 8
  c = jax.jit(kj.fit_koopman)(z_sharded)
  np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-6)


def test_fit_inside_shard_map_with_axis_name_equals_single_device():
  rng = np.random.default_rng(6)
  z = jnp.asarray(rng.normal(size=(16, 6, 7)), jnp.float32)
  expected = kj.fit_koopman(z)
  mesh = _mesh()

  @jax.jit
  @functools.partial(jax.shard_map, mesh=mesh, in_specs=P("data"), out_specs=P())
  def fit(z_local):
    return kj.fit_koopman(z_local, axis_name="data")

  np.testing.assert_allclose(fit(z), expected, rtol=1e-5, atol=1e-6)

  @jax.jit
  @functools.partial(jax.shard_map, mesh=mesh, in_specs=P("data"), out_specs=P("data"))
  def per_device(z_local):  # without axis_name each device solves its own, different system
    return kj.fit_koopman(z_local)[None]

  assert not np.allclose(per_device(z)[0], expected, atol=1e-3)


def test_predict_one_step_and_rollout():
  a = _stable_operator(4, 7)
  z = jnp.asarray(_trajectories(a, b=3, steps=5), jnp.float32)
  c = jnp.asarray(a, jnp.float32)
  pred = kj.predict_one_step(z, c)
  assert pred.shape == z.shape and pred.dtype == z.dtype
  np.testing.assert_array_equal(pred[:, 0], z[:, 0])
  np.testing.assert_allclose(pred, z, atol=1e-5)
  traj = jax.jit(kj.rollout, static_argnums=2)(z[:, 0], c, 5)
  assert traj.shape == (3, 6, 4)
  np.testing.assert_allclose(traj, z, atol=1e-5)
  assert kj.rollout(z[:, 0], c, 0).shape == (3, 1, 4)


def test_eig_reconstructs_operator():
  c = jnp.asarray(np.random.default_rng(8).normal(size=(9, 9)), jnp.float32)
  eigenvalues, v, u = kj.eig(c)
  assert eigenvalues.shape == (9,) and v.shape == u.shape == (9, 9)
  np.testing.assert_allclose((v * eigenvalues[None, :]) @ u, c, atol=1e-4)
  np.testing.assert_allclose(u @ v, np.eye(9), atol=1e-4)


def _structured_latents(seed=9):
  """Latents with two static modes (λ = 1) and a rotating dynamic pair (|λ| = 0.9)."""
  rng = np.random.default_rng(seed)
  k, frames = 4, 6
  block = np.zeros((k, k))
  block[0, 0] = block[1, 1] = 1.0
  angle = 0.7
  block[2:, 2:] = 0.9 * np.array([[np.cos(angle), -np.sin(angle)],
                                  [np.sin(angle), np.cos(angle)]])
  basis = rng.normal(size=(k, k))
  c = np.linalg.inv(basis) @ block @ basis  # similar to the block operator
  static_part = np.zeros((2, frames, k))
  dynamic_part = np.zeros((2, frames, k))
  for b in range(2):
    s0 = np.concatenate([rng.normal(size=2), [0, 0]]) @ basis
    d0 = np.concatenate([[0, 0], rng.normal(size=2)]) @ basis
    for t in range(frames):
      static_part[b, t] = s0 @ np.linalg.matrix_power(c, t)
      dynamic_part[b, t] = d0 @ np.linalg.matrix_power(c, t)
  return c, static_part, dynamic_part


def test_swap_moves_exactly_the_selected_components():
  c, static_part, dynamic_part = _structured_latents()
  z = jnp.asarray(static_part + dynamic_part, jnp.float32)
  eigenvalues, v, u = kj.eig(jnp.asarray(c, jnp.float32))
  static = kj.static_mask(eigenvalues, 2, "ball")
  assert int(static.sum()) == 2
  np.testing.assert_allclose(np.abs(eigenvalues[static] - 1), 0, atol=1e-4)

  target, donor = z[0], z[1]
  swapped = kj.swap(target, donor, v, u, static)
  np.testing.assert_allclose(swapped, static_part[1] + dynamic_part[0], atol=1e-4)
  # index arrays select the same modes as masks; the swap is batched over leading axes.
  indices = jnp.flatnonzero(static)
  np.testing.assert_allclose(kj.swap(target, donor, v, u, indices), swapped, atol=1e-6)
  batched = kj.swap(z, z[::-1], v, u, static)
  np.testing.assert_allclose(batched[0], swapped, atol=1e-6)

  np.testing.assert_allclose(kj.swap(target, target, v, u, static), target, atol=1e-4)
  np.testing.assert_allclose(kj.swap(target, donor, v, u, jnp.ones(4, bool)), donor, atol=1e-4)
  np.testing.assert_allclose(kj.swap(target, donor, v, u, jnp.zeros(4, bool)), target,
                             atol=1e-4)


@pytest.mark.parametrize("call, error, words", [
    (lambda: kj.fit_koopman(jnp.zeros((4, 5))), ValueError, "(batch, frames, k)"),
    (lambda: kj.fit_koopman(jnp.zeros((4, 1, 3))), ValueError, "at least 2 frames"),
    (lambda: kj.fit_koopman(jnp.zeros((4, 5, 3), jnp.int32)), TypeError, "floating-point"),
    (lambda: kj.fit_koopman(jnp.zeros((4, 5, 3)), ridge=-1.0), ValueError, "ridge"),
    (lambda: kj.predict_one_step(jnp.zeros((2, 3, 4)), jnp.eye(5)), ValueError,
     "expected C of shape (4, 4)"),
    (lambda: kj.rollout(jnp.zeros((2, 4)), jnp.zeros((4, 3)), 3), ValueError, "square"),
    (lambda: kj.rollout(jnp.zeros((2, 4)), jnp.eye(4), -1), ValueError, "steps"),
    (lambda: kj.swap(jnp.zeros((2, 4)), jnp.zeros((3, 4)), jnp.eye(4), jnp.eye(4),
                     jnp.ones(4, bool)), ValueError, "same shape"),
    (lambda: kj.swap(jnp.zeros((2, 4)), jnp.zeros((2, 4)), jnp.eye(4), jnp.eye(4),
                     jnp.ones(3, bool)), ValueError, "shape (4,)"),
    (lambda: kj.eig(jnp.zeros((3, 4))), ValueError, "square"),
])
def test_bad_input_gives_clear_errors(call, error, words):
  with pytest.raises(error, match=None) as info:
    call()
  assert words in str(info.value)
