"""Stride-2, kernel-4, padding-1 convolutions and transposed convolutions (NHWC).

These are the resolution-halving and -doubling layers of the SKD encoder and decoder:
PyTorch ``Conv2d(C, F, 4, stride=2, padding=1)`` and
``ConvTranspose2d(C, F, 4, stride=2, padding=1)``. Each comes in two implementations with
identical parameters and identical results (up to floating-point rounding):

* ``"plain"``: the obvious `jax.lax` call (a strided or a transposed convolution).
* ``"fast"``: exact reformulations chosen by measurement on XLA:CPU (2 cores, N = 256),
  where the strided convolution's input gradient and every transposed-convolution weight
  gradient (seconds instead of tenths) are slow.

Kernels are HWIO, shape ``(4, 4, C, F)``, for both layers. With ``x`` the input and
``xp = pad(x, 1)`` (one zero row/column on every side):

* ``down_conv``: ``out[n, i, j, f] = sum_{a, b, c} xp[n, 2i + a, 2j + b, c] k[a, b, c, f]``.
* ``up_conv`` (the adjoint of ``down_conv`` with the roles of C and F swapped, i.e.
  PyTorch's transposed convolution with ``weight[c, f, a, b] = k[a, b, c, f]``): every
  input pixel scatters ``out[n, 2i - 1 + a, 2j - 1 + b, f] += x[n, i, j, c] k[a, b, c, f]``,
  ignoring the positions that fall outside the ``2H x 2W`` output.

The fast forms (same FLOPs as the plain ones unless said otherwise):

* ``down_conv``: the value and the kernel gradient from the plain strided convolution; the
  input gradient from the space-to-depth form: ``xp`` reshaped to ``xs`` of shape
  ``(N, H/2 + 1, W/2 + 1, 4C)`` with channels ``(dy, dx, c)``; then
  ``out[i, j] = sum_{p, q} xs[i + p, j + q] K2[p, q]`` with
  ``K2[p, q, (dy, dx, c), f] = k[2p + dy, 2q + dx, c, f]``, a 2x2 stride-1 VALID convolution
  whose transpose is a stride-1 convolution rather than a zero-stuffed one. A `jax.custom_jvp`
  combines the forms.
* Sub-pixel (``up_conv``): output row ``2m + a`` (phase ``a`` in {0, 1}) receives input rows
  ``m - 1 + a`` and ``m + a`` with kernel rows ``3 - a`` and ``1 - a``; i.e. phase ``(a, b)``
  is a stride-1 convolution of ``x`` with the 2x2 kernel ``flip(k)[a::2, b::2]`` and padding
  ``((1 - a, a), (1 - b, b))``, and the four phases are interleaved (depth-to-space). For
  F <= 8 the four phases are one 3x3 convolution with ``4F`` outputs (zero taps included,
  2.25x the FLOPs, but faster than four convolutions with few outputs each). Plain JAX
  autodiff throughout.

Measured per layer (``benchmarks/conv_layers.py``) on a 2-core Intel Xeon, N = 256: the
plain/fast ratios are in docs/performance.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype
from flax.linen.linear import default_kernel_init
from jax import lax
from jax.custom_derivatives import SymbolicZero

from koopjax._src import checks

IMPLS = ("fast", "plain")

_DN = ("NHWC", "HWIO", "NHWC")
# up_conv's fast form switches from four 2x2 convolutions to one 3x3 convolution for
# F <= this (the last SKD layer, F = 3).
_FEW_CHANNELS = 8


# ----------------------------------------------------------------------------- checks


def _check_input(name: str, x: Any, even: bool) -> None:
  layout = "(batch, height, width, channels)" + (" with even height and width" if even else "")
  checks.array_of_rank(name, x, 4, layout)
  if even and (x.shape[1] % 2 or x.shape[2] % 2):
    raise ValueError(f"{name} must have shape {layout}; got shape {tuple(x.shape)}.")


def _check_kernel(x: jax.Array, kernel: jax.Array) -> None:
  shape = tuple(getattr(kernel, "shape", ()))
  if len(shape) != 4 or shape[:3] != (4, 4, x.shape[-1]):
    raise ValueError(f"kernel must have shape (4, 4, {x.shape[-1]}, features) for an input "
                     f"with {x.shape[-1]} channels; got shape {shape}.")


# ----------------------------------------------------------------- layout rearrangements


def _pad1(x: jax.Array) -> jax.Array:
  return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))


def _space_to_depth(x: jax.Array) -> jax.Array:
  """(N, 2h, 2w, C) -> (N, h, w, 4C); channel index ``(dy, dx, c)``: ``x[2i + dy, 2j + dx, c]``."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h // 2, w // 2, 4 * c)


def _depth_to_space(y: jax.Array) -> jax.Array:
  """(N, h, w, 4F) with channel index ``(a, b, f)`` -> (N, 2h, 2w, F); ``out[2i + a, 2j + b]``."""
  n, h, w, c4 = y.shape
  f = c4 // 4
  y = y.reshape(n, h, w, 2, 2, f).transpose(0, 1, 3, 2, 4, 5)
  return y.reshape(n, 2 * h, 2 * w, f)


def _s2d_kernel(kernel: jax.Array) -> jax.Array:
  """(4, 4, C, F) -> (2, 2, 4C, F) with ``K2[p, q, (dy, dx, c)] = k[2p + dy, 2q + dx, c]``."""
  _, _, c, f = kernel.shape
  k = kernel.reshape(2, 2, 2, 2, c, f).transpose(0, 2, 1, 3, 4, 5)
  return k.reshape(2, 2, 4 * c, f)


# ------------------------------------------------------------------ down_conv formulations


def _down_plain(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return lax.conv_general_dilated(x, kernel, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)


def _down_s2d_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  xs = _space_to_depth(_pad1(x))
  return lax.conv_general_dilated(xs, _s2d_kernel(kernel), (1, 1), "VALID",
                                  dimension_numbers=_DN)


def _mixed_linear(primal: Callable, wrt_x: Callable, wrt_kernel: Callable) -> Callable:
  """A bilinear ``f(x, kernel)`` whose value and two partial derivatives use different forms.

  All three callables compute the same bilinear map. The value comes from ``primal``; the
  tangent is ``wrt_x(dx, kernel) + wrt_kernel(x, dkernel)``, so reverse mode differentiates
  ``x`` through the transpose of ``wrt_x`` and ``kernel`` through that of ``wrt_kernel``.
  Forward mode, reverse mode and higher orders all work (it is a `jax.custom_jvp`), and a
  derivative nobody asked for is not computed (symbolic zeros).
  """

  @jax.custom_jvp
  def f(x, kernel):
    return primal(x, kernel)

  def f_jvp(primals, tangents):
    x, kernel = primals
    dx, dkernel = tangents
    out = primal(x, kernel)
    terms = []
    if not isinstance(dx, SymbolicZero):
      terms.append(wrt_x(dx, kernel))
    if not isinstance(dkernel, SymbolicZero):
      terms.append(wrt_kernel(x, dkernel))
    if not terms:
      return out, jnp.zeros_like(out)
    return out, functools.reduce(jnp.add, terms)

  f.defjvp(f_jvp, symbolic_zeros=True)
  return f


# Value and kernel gradient from the plain strided convolution; the input gradient from the
# space-to-depth form (its transpose is a stride-1 convolution, not a zero-stuffed one).
_down_fast = _mixed_linear(_down_plain, _down_s2d_conv, _down_plain)


# -------------------------------------------------------------------- up_conv formulations


def _up_plain(x: jax.Array, kernel: jax.Array) -> jax.Array:
  # transpose_kernel=True flips the kernel and swaps its I/O axes, so the kernel is declared
  # as "HWOI": the (4, 4, C, F) array is read as the kernel of a stride-2 convolution F -> C,
  # whose transpose maps C -> F. Padding k - 1 - p = 2 on both sides.
  return lax.conv_transpose(x, kernel, (2, 2), padding=((2, 2), (2, 2)),
                            dimension_numbers=("NHWC", "HWOI", "NHWC"), transpose_kernel=True)


def _up_subpixel(x: jax.Array, kernel: jax.Array) -> jax.Array:
  kf = kernel[::-1, ::-1]
  phases = [
      lax.conv_general_dilated(x, kf[a::2, b::2], (1, 1), ((1 - a, a), (1 - b, b)),
                               dimension_numbers=_DN)
      for a in (0, 1) for b in (0, 1)
  ]
  return _depth_to_space(jnp.concatenate(phases, axis=-1))


def _up_subpixel_3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
  # Phase (a, b)'s 2x2 kernel sits at offset (a, b) of a 3x3 window over pad(x, 1):
  # big[a + s, b + t, :, (a, b, f)] = flip(k)[a + 2s, b + 2t].
  _, _, c, f = kernel.shape
  kf = kernel[::-1, ::-1]
  big = jnp.stack([
      jnp.pad(kf[a::2, b::2], ((a, 1 - a), (b, 1 - b), (0, 0), (0, 0)))
      for a in (0, 1) for b in (0, 1)
  ], axis=-2).reshape(3, 3, c, 4 * f)
  y = lax.conv_general_dilated(x, big, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_DN)
  return _depth_to_space(y)


# ------------------------------------------------------------------------- public functions


def down_conv(x: jax.Array, kernel: jax.Array, impl: str = "fast") -> jax.Array:
  """PyTorch ``Conv2d(C, F, kernel_size=4, stride=2, padding=1)`` without bias, NHWC.

  Args:
    x: input, shape (N, H, W, C) with H and W even.
    kernel: HWIO kernel, shape (4, 4, C, F); ``kernel[a, b, c, f]`` is PyTorch's
      ``weight[f, c, a, b]``.
    impl: ``"fast"`` or ``"plain"`` (same result up to rounding; see the module docstring).

  Returns:
    (N, H/2, W/2, F): ``out[n, i, j] = sum_{a, b} xp[n, 2i + a, 2j + b] @ kernel[a, b]`` with
    ``xp`` the input zero-padded by one pixel on every side.
  """
  checks.one_of("impl", impl, IMPLS)
  _check_input("x", x, even=True)
  _check_kernel(x, kernel)
  if impl == "plain":
    return _down_plain(x, kernel)
  return _down_fast(x, kernel)


def up_conv(x: jax.Array, kernel: jax.Array, impl: str = "fast") -> jax.Array:
  """PyTorch ``ConvTranspose2d(C, F, kernel_size=4, stride=2, padding=1)`` without bias, NHWC.

  Args:
    x: input, shape (N, H, W, C).
    kernel: shape (4, 4, C, F); ``kernel[a, b, c, f]`` is PyTorch's ``weight[c, f, a, b]``.
    impl: ``"fast"`` or ``"plain"`` (same result up to rounding; see the module docstring).

  Returns:
    (N, 2H, 2W, F): the sum over input pixels (i, j) and taps (a, b) of
    ``x[n, i, j] @ kernel[a, b]`` placed at ``out[n, 2i - 1 + a, 2j - 1 + b]`` (positions
    outside the output dropped). Equivalently, the input-gradient (adjoint) of `down_conv`
    with kernel ``kernel.transpose(0, 1, 3, 2)``.
  """
  checks.one_of("impl", impl, IMPLS)
  _check_input("x", x, even=False)
  _check_kernel(x, kernel)
  if impl == "plain":
    return _up_plain(x, kernel)
  if kernel.shape[-1] <= _FEW_CHANNELS:
    return _up_subpixel_3x3(x, kernel)
  return _up_subpixel(x, kernel)


# ---------------------------------------------------------------------------- Flax modules


def _apply(module: nn.Module, x: jax.Array, op: Callable, even: bool) -> jax.Array:
  """Creates the parameters of a `DownConv`/`UpConv` and applies ``op`` (+ bias)."""
  checks.one_of("impl", module.impl, IMPLS)
  _check_input(f"{type(module).__name__} input", x, even=even)
  kernel = module.param("kernel", module.kernel_init, (4, 4, x.shape[-1], module.features),
                        module.param_dtype)
  bias = (module.param("bias", module.bias_init, (module.features,), module.param_dtype)
          if module.use_bias else None)
  dtype = x.dtype if module.dtype is None else module.dtype
  x, kernel, bias = promote_dtype(x, kernel, bias, dtype=dtype)
  y = op(x, kernel, module.impl)
  if bias is not None:
    y = y + bias.reshape(1, 1, 1, module.features)
  return y


class _Conv4x4Stride2(nn.Module):
  """Parameters and application shared by `DownConv` and `UpConv` (see their docstrings)."""

  features: int
  impl: str = "fast"
  use_bias: bool = True
  dtype: Any = None
  param_dtype: Any = jnp.float32
  kernel_init: Callable[..., jax.Array] = default_kernel_init
  bias_init: Callable[..., jax.Array] = nn.initializers.zeros_init()

  op: ClassVar[Callable[..., jax.Array]]
  needs_even_input: ClassVar[bool]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return _apply(self, x, type(self).op, even=type(self).needs_even_input)


class DownConv(_Conv4x4Stride2):
  """PyTorch ``Conv2d(C, features, kernel_size=4, stride=2, padding=1)``, NHWC.

  Maps (N, H, W, C) with H, W even to (N, H/2, W/2, features). Parameters, the same for both
  implementations: ``kernel`` (4, 4, C, features), HWIO, ``kernel[a, b, c, f]`` = PyTorch
  ``weight[f, c, a, b]``; ``bias`` (features,) when ``use_bias``.

  Attributes:
    features: number of output channels.
    impl: ``"fast"`` (reformulated for XLA:CPU) or ``"plain"`` (`lax.conv_general_dilated`).
    use_bias: whether to add a bias.
    dtype: computation dtype; None: the input's dtype.
    param_dtype: dtype of the parameters.
    kernel_init: kernel initialiser (flax.linen.Conv's default, LeCun normal).
    bias_init: bias initialiser (zeros).
  """

  op = staticmethod(down_conv)
  needs_even_input = True


class UpConv(_Conv4x4Stride2):
  """PyTorch ``ConvTranspose2d(C, features, kernel_size=4, stride=2, padding=1)``, NHWC.

  Maps (N, H, W, C) to (N, 2H, 2W, features). Parameters, the same for both implementations:
  ``kernel`` (4, 4, C, features), ``kernel[a, b, c, f]`` = PyTorch ``weight[c, f, a, b]``;
  ``bias`` (features,) when ``use_bias``. The plain implementation is
  ``lax.conv_transpose(x, kernel, (2, 2), ((2, 2), (2, 2)), dimension_numbers=("NHWC",
  "HWOI", "NHWC"), transpose_kernel=True)``.

  Attributes: as `DownConv`, with ``impl`` ``"fast"`` (sub-pixel convolutions) or ``"plain"``
  (`lax.conv_transpose`).
  """

  op = staticmethod(up_conv)
  needs_even_input = False
