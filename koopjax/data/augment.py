"""Label-free appearance changes of videos, applied on the device inside a loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def distort_colours(rng: jax.Array, frames: jax.Array) -> jax.Array:
  """Each video's RGB channels permuted and some of them inverted, one draw per video.

  The draw is uniform over the 6 channel orders and the 2^C inversion patterns (48
  distortions of RGB, one of which is the identity), and the same for all frames of a video:
  shapes and motion are kept, colours change (a red shirt may become cyan or green).

  Args:
    rng: PRNG key.
    frames: videos (b, T, H, W, C) with values in [0, 1].

  Returns:
    Distorted videos, same shape and dtype.
  """
  if frames.ndim != 5:
    raise ValueError(f"frames must be videos (batch, frames, H, W, C); got shape {frames.shape}.")
  b, channels = frames.shape[0], frames.shape[-1]
  perm_key, invert_key = jax.random.split(rng)
  order = jax.vmap(lambda key: jax.random.permutation(key, channels))(
      jax.random.split(perm_key, b))                                     # (b, C)
  permuted = jnp.take_along_axis(frames, order[:, None, None, None, :], axis=-1)
  invert = jax.random.bernoulli(invert_key, 0.5, (b, 1, 1, 1, channels))
  return jnp.where(invert, 1.0 - permuted, permuted).astype(frames.dtype)
