"""The judge: a sequence classifier with one softmax head per factor (docs/evaluation.md).

The evaluation protocol of sequential disentanglement lets a classifier trained on labelled
real videos decide what generated videos show. The judge sees a whole sequence
``x`` of shape (b, T, H, W, C) and predicts every factor of the dataset: the dynamic factor
``action`` and every static factor (Sprites: skin, pants, top, hair; synthetic: also
background). It must be >= 99 % accurate on every head on real test data before it judges
anything.

Architecture (per frame, then over time)::

    m_t        = [DownConv 4x4/2 -> GroupNorm -> LeakyReLU(0.2)] x log2(H / 4) of frame t
                                                                  # (b, T, 4, 4, c)
    h_t        = LeakyReLU(Dense(hidden)(flatten m_t))            # (b, T, hidden)
    motion     = LeakyReLU(Dense(hidden)(concat_t h_t))           # (b, hidden)
    appearance = LeakyReLU(Dense(hidden)([mean, max] of m over t, y, x))   # (b, hidden)
    logits_action = Dense(classes)(motion);  logits_f = Dense(classes_f)(appearance)

The dynamic head sees the frames in order (walking left and right differ by direction); the
static heads see features pooled over time and space, invariant to where the character is
and how it moves (this is what makes them generalise to the unseen identities of the test
split). GroupNorm, not BatchNorm: the judge has no model state, so its predictions do not
depend on batch statistics of generated videos.

Inputs are frames in [0, 1): uint8 videos are scaled by 1/256 like SKD's, so SKD decodings
(sigmoid outputs in the same scale) can be judged directly.

Implements `koopjax.models.Model`; its accuracy on real data and the batched predictions the
evaluation uses are in `koopjax.eval.judge`.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from koopjax.data import videos
from koopjax.models.video import load_data  # noqa: F401  (the Model protocol's)
from koopjax.models.video import stage_widths
from koopjax.models.video import to_frames
from koopjax.nn import DownConv


def factor_classes(cfg) -> dict[str, int]:
  """Head name -> number of classes: ``action`` (the dynamic factor) first, then the static
  factors of ``cfg.dataset`` in the dataset's order."""
  return videos.factor_classes(cfg.dataset)


def static_factor_names(cfg) -> tuple[str, ...]:
  """Names of the static factors of ``cfg.dataset`` (the heads other than the dynamic ones)."""
  return tuple(videos.factors(cfg.dataset)[0])


def dynamic_factor_names(cfg) -> tuple[str, ...]:
  return tuple(videos.factors(cfg.dataset)[1])


class Judge(nn.Module):
  """Frames (b, T, H, W, C) in [0, 1) -> {factor: logits (b, classes)}."""
  cfg: Any
  classes: tuple[tuple[str, int], ...]
  dynamic: tuple[str, ...]

  @nn.compact
  def __call__(self, x):
    cfg = self.cfg
    b, t = x.shape[:2]
    h = x.reshape((b * t,) + x.shape[2:]).astype(jnp.float32)
    for features in stage_widths(cfg):
      h = DownConv(features, impl=cfg.conv_impl)(h)
      h = nn.GroupNorm(num_groups=math.gcd(8, features))(h)
      h = nn.leaky_relu(h, 0.2)
    channels = h.shape[-1]
    frame = nn.leaky_relu(nn.Dense(cfg.hidden)(h.reshape((b * t, -1))), 0.2)
    motion = nn.leaky_relu(
        nn.Dense(cfg.hidden, name="motion")(frame.reshape((b, t * cfg.hidden))), 0.2)
    pooled = h.reshape((b, -1, channels))
    pooled = jnp.concatenate([jnp.mean(pooled, axis=1), jnp.max(pooled, axis=1)], axis=-1)
    appearance = nn.leaky_relu(nn.Dense(cfg.hidden, name="appearance")(pooled), 0.2)
    return {name: nn.Dense(n, name=f"head_{name}")(motion if name in self.dynamic else appearance)
            for name, n in self.classes}


def _module(cfg) -> Judge:
  return Judge(cfg, tuple(factor_classes(cfg).items()), dynamic_factor_names(cfg))


@jax.jit(static_argnames="cfg")
def init(rng: jax.Array, cfg) -> dict[str, Any]:
  """Variables {"params": ...} (the judge has no model state); jitted."""
  x = jnp.zeros((1, cfg.frames, cfg.image_size, cfg.image_size, cfg.channels), jnp.float32)
  return _module(cfg).init(rng, x)


def logits(variables, frames: jax.Array, cfg) -> dict[str, jax.Array]:
  """Per-factor logits (b, classes_f) of frames (b, T, H, W, C) in [0, 1)."""
  expected = (cfg.frames, cfg.image_size, cfg.image_size, cfg.channels)
  if frames.ndim != 5 or tuple(frames.shape[1:]) != expected:
    raise ValueError(f"the judge takes sequences of shape (b, {', '.join(map(str, expected))}); "
                     f"got {tuple(frames.shape)}.")
  return _module(cfg).apply({"params": variables["params"]}, frames)


def probabilities(variables, frames: jax.Array, cfg) -> dict[str, jax.Array]:
  """Per-factor softmax p(y_f | x), shape (b, classes_f), of frames in [0, 1)."""
  return {name: jax.nn.softmax(v, axis=-1) for name, v in logits(variables, frames, cfg).items()}


def loss_fn(params, model_state, batch, rng, cfg):
  """Sum over heads of the mean softmax cross-entropy; metrics: per-head loss and accuracy."""
  del rng
  out = logits({"params": params}, to_frames(batch["video"]), cfg)
  metrics, loss = {}, 0.0
  for name, value in out.items():
    labels = batch[name]
    ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(value, labels))
    metrics[f"ce_{name}"] = ce
    metrics[f"acc_{name}"] = jnp.mean((jnp.argmax(value, axis=-1) == labels).astype(jnp.float32))
    loss = loss + ce
  return loss, (metrics, model_state)


def batch_keys(cfg) -> tuple[str, ...]:
  """The video and one label array per head."""
  return ("video", *factor_classes(cfg))


def variables_of(state) -> dict[str, Any]:
  """Judge variables from a `TrainState`."""
  return {"params": state.params}
