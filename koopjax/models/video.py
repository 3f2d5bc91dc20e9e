"""What every model of labelled videos shares: pixel scaling, stage widths, data."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from koopjax.data import videos

PIXEL_SCALE = 1.0 / 256.0  # the SKD reference feeds uint8 / 256, in [0, 1)


def to_frames(video: jax.Array, dtype=jnp.float32) -> jax.Array:
  """uint8 videos (b, T, H, W, C) -> floats in [0, 1) (as the reference: / 256)."""
  if video.dtype != jnp.uint8:
    raise TypeError(f"videos must be uint8 (b, T, H, W, C); got {video.dtype}.")
  return video.astype(dtype) * PIXEL_SCALE


def stage_widths(cfg) -> list[int]:
  """Channel widths of the stride-2 stages that halve a frame down to 4x4:
  ``conv_dim · 2^i`` for i < log2(image_size) − 2."""
  n_stages = int(math.log2(cfg.image_size)) - 2
  return [cfg.conv_dim * 2**i for i in range(n_stages)]


def load_data(cfg, split: str) -> dict[str, np.ndarray]:
  """The config's dataset split (`koopjax.data.videos.load`)."""
  return videos.load(cfg.dataset, split, data_dir=cfg.data_dir, image_size=cfg.image_size,
                     frames=cfg.frames)
