"""Label-free appearance changes of videos, applied on the device inside a loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp

COLOUR_DISTORTIONS = ("channels", "affine")


def distort_colours(rng: jax.Array, frames: jax.Array, kind: str = "channels") -> jax.Array:
  """Each video's colours changed by one random map, the same for all its frames.

  Shapes and motion are kept, colours change. ``kind`` chooses the family of maps:

  * ``"channels"``: the RGB channels permuted and some of them inverted, x ↦ P x or 1 − P x
    per channel, uniform over the 6 orders and 2^C inversion patterns (48 maps of RGB, one
    the identity). Each colour has at most 48 images (grey (½, ½, ½) has one), so a code
    invariant to these maps can still tell colours of different orbits apart.
  * ``"affine"``: x ↦ clip(½ + s Q (x − ½) + b, 0, 1) with Q Haar-random orthogonal (C x C,
    rotations and reflections of colour space about mid-grey, the channel maps included),
    s ~ U[0.5, 1] and b ~ U[−0.25, 0.25]^C: every colour can become almost any other, so a
    code invariant to these maps carries no colour.

  Args:
    rng: PRNG key.
    frames: videos (b, T, H, W, C) with values in [0, 1].
    kind: one of `COLOUR_DISTORTIONS`.

  Returns:
    Distorted videos, same shape and dtype.
  """
  if frames.ndim != 5:
    raise ValueError(f"frames must be videos (batch, frames, H, W, C); got shape {frames.shape}.")
  if kind not in COLOUR_DISTORTIONS:
    raise ValueError(f"kind must be one of {', '.join(COLOUR_DISTORTIONS)}; got {kind!r}.")
  b, channels = frames.shape[0], frames.shape[-1]
  keys = jax.random.split(rng, 3)
  if kind == "channels":
    order = jax.vmap(lambda key: jax.random.permutation(key, channels))(
        jax.random.split(keys[0], b))                                    # (b, C)
    permuted = jnp.take_along_axis(frames, order[:, None, None, None, :], axis=-1)
    invert = jax.random.bernoulli(keys[1], 0.5, (b, 1, 1, 1, channels))
    return jnp.where(invert, 1.0 - permuted, permuted).astype(frames.dtype)
  rotation = jax.vmap(lambda key: jax.random.orthogonal(key, channels))(
      jax.random.split(keys[0], b))                                      # (b, C, C)
  scale = jax.random.uniform(keys[1], (b, 1, 1), minval=0.5, maxval=1.0)
  offset = jax.random.uniform(keys[2], (b, 1, 1, 1, channels), minval=-0.25, maxval=0.25)
  linear = (scale * rotation).astype(frames.dtype)
  mapped = 0.5 + jnp.einsum("bthwc,bdc->bthwd", frames - 0.5, linear) + offset
  return jnp.clip(mapped, 0.0, 1.0).astype(frames.dtype)
