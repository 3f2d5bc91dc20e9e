"""Tests of `BatchNormLeakyReLU` / `batch_norm_leaky_relu` against flax.linen.BatchNorm + leaky_relu.

The reference is Flax's own layer differentiated by JAX autodiff, an independent
implementation of the same maths; the hand-written backward pass is also checked by finite
differences (`check_grads`) in float64.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from koopjax.nn import BatchNormLeakyReLU
from koopjax.nn import batch_norm_leaky_relu

SLOPE = 0.2


class FlaxReference(nn.Module):
  """What `BatchNormLeakyReLU` replaces, under the same variable names."""
  use_running_average: bool

  @nn.compact
  def __call__(self, x):
    bn = nn.BatchNorm(use_running_average=self.use_running_average, momentum=0.9,
                      epsilon=1e-5, name="bn")
    return nn.leaky_relu(bn(x), SLOPE)


class Fused(nn.Module):
  use_running_average: bool

  @nn.compact
  def __call__(self, x):
    return BatchNormLeakyReLU(self.use_running_average, name="bn")(x)


def _inputs(shape, seed=0, dtype=jnp.float32):
  rng = np.random.default_rng(seed)
  c = shape[-1]
  x = jnp.asarray(1.5 * rng.standard_normal(shape) + rng.standard_normal(c), dtype)
  params = {"bn": {"scale": jnp.asarray(1 + 0.5 * rng.standard_normal(c), dtype),
                   "bias": jnp.asarray(0.3 * rng.standard_normal(c), dtype)}}
  stats = {"bn": {"mean": jnp.asarray(rng.standard_normal(c), dtype),
                  "var": jnp.asarray(1 + rng.random(c), dtype)}}
  return x, params, stats


def assert_close(actual, expected, rtol=2e-6, atol=2e-6):
  np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol)


def test_variables_are_those_of_flax_batch_norm():
  x = jnp.ones((2, 4, 4, 6))
  fused = jax.eval_shape(Fused(False).init, jax.random.key(0), x)
  reference = jax.eval_shape(FlaxReference(False).init, jax.random.key(0), x)
  assert jax.tree.map(lambda a: (a.shape, a.dtype), fused) == jax.tree.map(
      lambda a: (a.shape, a.dtype), reference)
  init = Fused(False).init(jax.random.key(0), x)  # ones/zeros, and no stats update at init
  assert_close(init["params"]["bn"]["scale"], np.ones(6))
  assert_close(init["batch_stats"]["bn"]["var"], np.ones(6))
  assert_close(init["batch_stats"]["bn"]["mean"], np.zeros(6))


@pytest.mark.parametrize("shape", [(8, 5, 6, 7), (33, 4), (2, 3, 4, 4, 3)])
def test_train_mode_matches_flax(shape):
  x, params, stats = _inputs(shape)
  variables = {"params": params, "batch_stats": stats}
  out, new = Fused(False).apply(variables, x, mutable=["batch_stats"])
  ref_out, ref_new = FlaxReference(False).apply(variables, x, mutable=["batch_stats"])
  assert out.dtype == x.dtype and out.shape == x.shape
  assert_close(out, ref_out)
  jax.tree.map(assert_close, new, ref_new)


def test_eval_mode_matches_flax():
  x, params, stats = _inputs((6, 3, 3, 4), seed=1)
  variables = {"params": params, "batch_stats": stats}
  assert_close(Fused(True).apply(variables, x), FlaxReference(True).apply(variables, x))


@pytest.mark.parametrize("shape", [(8, 5, 6, 7), (40, 3)])
def test_gradients_match_flax_autodiff(shape):
  x, params, stats = _inputs(shape, seed=2)
  ct = jnp.asarray(np.random.default_rng(3).standard_normal(shape), jnp.float32)

  def loss(module):
    def f(params, x):
      out, _ = module.apply({"params": params, "batch_stats": stats}, x, mutable=["batch_stats"])
      return jnp.sum(out * ct)
    return jax.jit(jax.grad(f, argnums=(0, 1)))

  got = loss(Fused(False))(params, x)
  want = loss(FlaxReference(False))(params, x)
  jax.tree.map(lambda a, b: assert_close(a, b, rtol=1e-5, atol=1e-5), got, want)


def test_check_grads_float64_including_statistics():
  # Random cotangents on all three outputs: the statistics' cotangent terms are checked too.
  with jax.enable_x64(True):
    x, params, _ = _inputs((6, 3, 5), seed=4, dtype=jnp.float64)
    scale, bias = params["bn"]["scale"], params["bn"]["bias"]
    check_grads(jax.jit(batch_norm_leaky_relu), (x, scale, bias), order=1, modes=("rev",),
                atol=1e-6, rtol=1e-6)


def test_batch_statistics_over_sharded_batch_are_global():
  devices = np.array(jax.devices()[:8])
  mesh = jax.sharding.Mesh(devices, ("data",))
  x, params, _ = _inputs((16, 3, 3, 5), seed=5)
  sharded = jax.device_put(x, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
  scale, bias = params["bn"]["scale"], params["bn"]["bias"]

  def f(x):
    out, mean, var = batch_norm_leaky_relu(x, scale, bias)
    return jnp.sum(out ** 2), (mean, var)

  (value, stats), grad = jax.jit(jax.value_and_grad(f, has_aux=True))(sharded)
  (value1, stats1), grad1 = jax.jit(jax.value_and_grad(f, has_aux=True))(x)
  assert_close(value, value1, rtol=1e-5)
  jax.tree.map(assert_close, stats, stats1)
  assert_close(grad, grad1, rtol=1e-5, atol=1e-6)
  assert_close(stats[0], np.mean(np.asarray(x), axis=(0, 1, 2)), rtol=1e-5)


def test_bfloat16_input_keeps_float32_statistics():
  x, params, _ = _inputs((8, 4, 4, 3), seed=6)
  out, mean, var = batch_norm_leaky_relu(x.astype(jnp.bfloat16), params["bn"]["scale"],
                                         params["bn"]["bias"])
  assert out.dtype == jnp.bfloat16 and mean.dtype == var.dtype == jnp.float32
  ref, _, _ = batch_norm_leaky_relu(x.astype(jnp.bfloat16).astype(jnp.float32),
                                    params["bn"]["scale"], params["bn"]["bias"])
  assert_close(out.astype(jnp.float32), ref, rtol=1e-2, atol=1e-2)


def test_rejects_bad_shapes():
  x = jnp.ones((4, 3))
  with pytest.raises(ValueError, match=r"scale must have shape \(channels,\) = \(3,\)"):
    batch_norm_leaky_relu(x, jnp.ones(4), jnp.zeros(3))
  with pytest.raises(ValueError, match=r"\(batch..., channels\)"):
    batch_norm_leaky_relu(jnp.ones(3), jnp.ones(3), jnp.zeros(3))
  with pytest.raises(TypeError, match="floating-point"):
    batch_norm_leaky_relu(jnp.ones((4, 3), jnp.int32), jnp.ones(3), jnp.zeros(3))
