"""Tests of the stride-2 convolution layers `DownConv` / `UpConv` (and `down_conv` / `up_conv`).

The NumPy references are written from PyTorch's definitions (NCHW weights, then mapped to
this library's HWIO kernels), not from the code under test:

* ``Conv2d(C, F, 4, stride=2, padding=1)``, ``weight`` (F, C, 4, 4)::

      out[n, f, i, j] = bias[f] + sum_{c, a, b} weight[f, c, a, b] xpad[n, c, 2i + a, 2j + b]

  with ``xpad`` the input zero-padded by one pixel on every side.
* ``ConvTranspose2d(C, F, 4, stride=2, padding=1)``, ``weight`` (C, F, 4, 4): each input
  pixel scatters into the output with the padding cropped afterwards::

      full[n, f, 2i + a, 2j + b] += sum_c x[n, c, i, j] weight[c, f, a, b]
      out = full[:, :, 1:2H + 1, 1:2W + 1] + bias      # output index o = 2i - 1 + a

The library's kernel is ``k[a, b, c, f] = weight[f, c, a, b]`` (Conv2d) and
``k[a, b, c, f] = weight[c, f, a, b]`` (ConvTranspose2d).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from koopjax.nn import DownConv
from koopjax.nn import UpConv
from koopjax.nn import down_conv
from koopjax.nn import up_conv

# (H, W, C, F); the first three are SKD encoder layers (at batch 2), the others cover
# non-square inputs and odd channel counts.
DOWN_SHAPES = [(64, 64, 3, 32), (32, 32, 32, 64), (8, 8, 128, 256), (6, 10, 5, 7),
               (2, 2, 1, 1), (4, 6, 12, 2)]
# SKD decoder layers 4x4x256 -> 128 and 32x32x32 -> 3, then odd sizes (allowed for UpConv)
# and both fast code paths (F <= 8 and F > 8).
UP_SHAPES = [(4, 4, 256, 128), (32, 32, 32, 3), (3, 5, 7, 9), (1, 1, 2, 1), (2, 3, 16, 24)]
BATCH = 2


# ------------------------------------------------------------------- NumPy (torch) references


def torch_conv2d(x_nchw, weight, bias):
  """PyTorch Conv2d(k=4, s=2, p=1) by direct loops over taps, float64. Returns NCHW."""
  n, c, h, w = x_nchw.shape
  xpad = np.pad(x_nchw, ((0, 0), (0, 0), (1, 1), (1, 1)))
  out = np.zeros((n, weight.shape[0], h // 2, w // 2))
  for i in range(h // 2):
    for j in range(w // 2):
      window = xpad[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4]  # (n, c, 4, 4)
      out[:, :, i, j] = np.einsum("ncab,fcab->nf", window, weight)
  return out + bias[None, :, None, None]


def torch_conv_transpose2d(x_nchw, weight, bias):
  """PyTorch ConvTranspose2d(k=4, s=2, p=1) by scattering every input pixel, float64."""
  n, c, h, w = x_nchw.shape
  full = np.zeros((n, weight.shape[1], 2 * h + 2, 2 * w + 2))
  for i in range(h):
    for j in range(w):
      full[:, :, 2 * i:2 * i + 4, 2 * j:2 * j + 4] += np.einsum("nc,cfab->nfab",
                                                                x_nchw[:, :, i, j], weight)
  return full[:, :, 1:2 * h + 1, 1:2 * w + 1] + bias[None, :, None, None]


def ref_down(x, kernel, bias):
  """NHWC wrapper: library kernel (4, 4, C, F) -> torch weight (F, C, 4, 4)."""
  out = torch_conv2d(x.transpose(0, 3, 1, 2).astype(np.float64),
                     kernel.transpose(3, 2, 0, 1).astype(np.float64), bias.astype(np.float64))
  return out.transpose(0, 2, 3, 1)


def ref_up(x, kernel, bias):
  """NHWC wrapper: library kernel (4, 4, C, F) -> torch weight (C, F, 4, 4)."""
  out = torch_conv_transpose2d(x.transpose(0, 3, 1, 2).astype(np.float64),
                               kernel.transpose(2, 3, 0, 1).astype(np.float64),
                               bias.astype(np.float64))
  return out.transpose(0, 2, 3, 1)


def ref_down_grads(x, kernel, ct):
  """Gradients of sum(ct * conv2d(x)) w.r.t. x and kernel, from the definition, float64."""
  x, kernel, ct = (a.astype(np.float64) for a in (x, kernel, ct))
  n, h, w, _ = x.shape
  xpad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dxpad = np.zeros_like(xpad)
  dk = np.zeros_like(kernel)
  for a in range(4):
    for b in range(4):
      window = xpad[:, a:a + h:2, b:b + w:2]  # xpad[n, 2i + a, 2j + b, c]
      dk[a, b] = np.einsum("nijc,nijf->cf", window, ct)
      dxpad[:, a:a + h:2, b:b + w:2] += np.einsum("nijf,cf->nijc", ct, kernel[a, b])
  return dxpad[:, 1:-1, 1:-1], dk, ct.sum(axis=(0, 1, 2))


# ---------------------------------------------------------------------------------- helpers


def _rand(rng, shape, scale=1.0):
  return (scale * rng.standard_normal(shape)).astype(np.float32)


def assert_close(actual, expected, rtol=1e-4):
  """Max-abs error relative to the largest reference entry (sums of many products)."""
  actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
  assert actual.shape == expected.shape
  scale = max(np.abs(expected).max(), 1e-30)
  err = np.abs(actual - expected).max() / scale
  assert err <= rtol, f"relative max error {err:.2e} > {rtol:.0e}"


def _init(module, x):
  return jax.jit(module.init)(jax.random.key(0), x)


def _layer_setup(module_cls, shape, seed):
  h, w, c, f = shape
  rng = np.random.default_rng(seed)
  x = jnp.asarray(_rand(rng, (BATCH, h, w, c)))
  params = {"params": {"kernel": jnp.asarray(_rand(rng, (4, 4, c, f), 0.2)),
                       "bias": jnp.asarray(_rand(rng, (f,)))}}
  return x, params, rng


@functools.partial(jax.jit, static_argnums=(0,))
def _value_and_grads(module, params, x, ct):
  """Output and the gradients of <ct, output> w.r.t. params and input."""
  y, vjp = jax.vjp(module.apply, params, x)
  return y, vjp(ct)


def _check_layer(module_cls, ref, shape, seed):
  x, params, rng = _layer_setup(module_cls, shape, seed)
  results = {}
  for impl in ("fast", "plain"):
    module = module_cls(shape[3], impl=impl)
    out_shape = jax.eval_shape(module.apply, params, x).shape
    ct = jnp.asarray(_rand(np.random.default_rng(seed + 1), out_shape))
    results[impl] = _value_and_grads(module, params, x, ct)
  y_fast, (dp_fast, dx_fast) = results["fast"]
  y_plain, (dp_plain, dx_plain) = results["plain"]
  expected = ref(np.asarray(x), np.asarray(params["params"]["kernel"]),
                 np.asarray(params["params"]["bias"]))
  assert_close(y_plain, expected)
  assert_close(y_fast, expected)
  assert_close(y_fast, y_plain)
  assert_close(dx_fast, dx_plain)
  for name in ("kernel", "bias"):
    assert_close(dp_fast["params"][name], dp_plain["params"][name])
  return x, params, ct, results


# ----------------------------------------------------------------------- forward + gradients


@pytest.mark.parametrize("shape", DOWN_SHAPES, ids=lambda s: "{}x{}x{}-{}".format(*s))
def test_down_conv_fast_plain_and_reference_agree(shape):
  x, params, ct, results = _check_layer(DownConv, ref_down, shape, seed=sum(shape))
  dx_ref, dk_ref, db_ref = ref_down_grads(np.asarray(x), np.asarray(params["params"]["kernel"]),
                                          np.asarray(ct))
  for impl in ("fast", "plain"):
    _, (dp, dx) = results[impl]
    assert_close(dx, dx_ref)
    assert_close(dp["params"]["kernel"], dk_ref)
    assert_close(dp["params"]["bias"], db_ref)


@pytest.mark.parametrize("shape", UP_SHAPES, ids=lambda s: "{}x{}x{}-{}".format(*s))
def test_up_conv_fast_plain_and_reference_agree(shape):
  _check_layer(UpConv, ref_up, shape, seed=sum(shape))


def test_up_conv_is_adjoint_of_down_conv():
  # ConvTranspose2d is the input-gradient of Conv2d: <down(x, k), y> = <x, up(y, k^T)>.
  rng = np.random.default_rng(3)
  x, y = _rand(rng, (2, 6, 8, 5)), _rand(rng, (2, 3, 4, 7))
  k = _rand(rng, (4, 4, 5, 7))
  lhs = np.vdot(ref_down(x, k, np.zeros(7)), y)
  rhs = np.vdot(x, ref_up(y, k.transpose(0, 1, 3, 2), np.zeros(5)))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-10)
  for impl in ("fast", "plain"):
    np.testing.assert_allclose(np.vdot(x, up_conv(y, k.transpose(0, 1, 3, 2), impl)), rhs,
                               rtol=1e-4)


@pytest.mark.parametrize("op,x_shape,c,f", [(down_conv, (1, 4, 6, 3), 3, 2),
                                            (down_conv, (1, 4, 4, 10), 10, 3),
                                            (up_conv, (1, 2, 3, 3), 3, 2),
                                            (up_conv, (1, 2, 2, 2), 2, 10)])
def test_check_grads_float64(op, x_shape, c, f):
  # Every fast code path, forward and reverse mode; second order for the custom-JVP ones.
  rng = np.random.default_rng(5)
  with jax.enable_x64(True):
    x = jnp.asarray(rng.standard_normal(x_shape))
    k = jnp.asarray(rng.standard_normal((4, 4, c, f)))
    order = 2 if op is down_conv else 1
    check_grads(jax.jit(op), (x, k), order=order, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


def test_fast_under_vmap_and_jvp():
  rng = np.random.default_rng(6)
  x, k = jnp.asarray(_rand(rng, (3, 2, 4, 4, 3))), jnp.asarray(_rand(rng, (4, 4, 3, 5)))
  dx = jnp.asarray(_rand(rng, x.shape))
  y = jax.vmap(down_conv, in_axes=(0, None))(x, k)
  assert_close(y, down_conv(x.reshape(6, 4, 4, 3), k, "plain").reshape(3, 2, 2, 2, 5))
  _, t_fast = jax.jvp(lambda x: down_conv(x[0], k), (x,), (dx,))
  _, t_plain = jax.jvp(lambda x: down_conv(x[0], k, "plain"), (x,), (dx,))
  assert_close(t_fast, t_plain)


# --------------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("module_cls,c,f", [(DownConv, 3, 32), (UpConv, 32, 3)])
def test_params_identical_across_impls(module_cls, c, f):
  x = jnp.ones((1, 4, 4, c))
  fast = _init(module_cls(f), x)
  plain = _init(module_cls(f, impl="plain"), x)
  assert jax.tree.map(jnp.shape, fast) == {"params": {"kernel": (4, 4, c, f), "bias": (f,)}}
  jax.tree.map(np.testing.assert_array_equal, fast, plain)
  assert fast["params"]["kernel"].dtype == jnp.float32
  no_bias = jax.eval_shape(module_cls(f, use_bias=False).init, jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, no_bias) == {"params": {"kernel": (4, 4, c, f)}}


@pytest.mark.parametrize("module_cls", [DownConv, UpConv])
def test_dtypes(module_cls):
  x = jnp.ones((1, 4, 4, 3), jnp.bfloat16)
  params = jax.eval_shape(module_cls(8).init, jax.random.key(0), x)
  assert params["params"]["kernel"].dtype == jnp.float32
  # dtype None: computed in the input's dtype.
  assert jax.eval_shape(module_cls(8).apply, params, x).dtype == jnp.bfloat16
  y = jax.eval_shape(module_cls(8, dtype=jnp.float32).apply, params, x)
  assert y.dtype == jnp.float32
  p16 = jax.eval_shape(module_cls(8, param_dtype=jnp.bfloat16).init, jax.random.key(0), x)
  assert p16["params"]["bias"].dtype == jnp.bfloat16


# --------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("shape", [(1, 5, 4, 3), (1, 4, 7, 3)])
def test_down_conv_rejects_odd_spatial_size(shape):
  x = jnp.ones(shape)
  with pytest.raises(ValueError, match=r"\(batch, height, width, channels\) with even height"):
    DownConv(4).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match="even height and width"):
    down_conv(x, jnp.ones((4, 4, 3, 2)))


@pytest.mark.parametrize("module_cls", [DownConv, UpConv])
@pytest.mark.parametrize("shape", [(4, 4, 3), (1, 1, 4, 4, 3)])
def test_rejects_wrong_rank(module_cls, shape):
  with pytest.raises(ValueError, match=r"\(batch, height, width, channels\).*rank 4"):
    module_cls(4).init(jax.random.key(0), jnp.ones(shape))


@pytest.mark.parametrize("module_cls", [DownConv, UpConv])
def test_rejects_bad_impl(module_cls):
  with pytest.raises(ValueError, match="'fast', 'plain'"):
    module_cls(4, impl="cudnn").init(jax.random.key(0), jnp.ones((1, 4, 4, 3)))
  with pytest.raises(ValueError, match="'fast', 'plain'"):
    down_conv(jnp.ones((1, 4, 4, 3)), jnp.ones((4, 4, 3, 2)), impl="Fast")


@pytest.mark.parametrize("op", [down_conv, up_conv])
def test_rejects_mismatched_kernel(op):
  with pytest.raises(ValueError, match=r"kernel must have shape \(4, 4, 3, features\)"):
    op(jnp.ones((1, 4, 4, 3)), jnp.ones((3, 3, 3, 2)))
  with pytest.raises(ValueError, match=r"kernel must have shape \(4, 4, 3, features\)"):
    op(jnp.ones((1, 4, 4, 3)), jnp.ones((4, 4, 2, 2)))
