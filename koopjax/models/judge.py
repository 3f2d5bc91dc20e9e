"""The judge: a sequence classifier with one softmax head per factor (skd-spec.md 1.6).

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

Model interface of `koopjax.models`: ``batch_keys``, ``load_data``, ``init``, ``loss_fn``,
``write_report``; training goes through ``koopjax.train.run`` with a `JudgeConfig`.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from koopjax.nn import DownConv

PIXEL_SCALE = 1.0 / 256.0  # as SKD: uint8 / 256, in [0, 1)
REQUIRED_ACCURACY = 0.99   # spec 1.6: a judge must reach this on every head of real test data


def factor_classes(cfg) -> dict[str, int]:
  """Head name -> number of classes: ``action`` (the dynamic factor) first, then the static
  factors of ``cfg.dataset`` in the dataset's order."""
  from koopjax.data import videos
  static, dynamic = videos.factors(cfg.dataset)
  return {**dynamic, **static}


def static_factor_names(cfg) -> tuple[str, ...]:
  """Names of the static factors of ``cfg.dataset`` (the heads other than the dynamic ones)."""
  from koopjax.data import videos
  return tuple(videos.factors(cfg.dataset)[0])


def dynamic_factor_names(cfg) -> tuple[str, ...]:
  from koopjax.data import videos
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
    n_stages = int(math.log2(cfg.image_size)) - 2
    for i in range(n_stages):
      features = cfg.conv_dim * 2**i
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


def to_frames(video: jax.Array) -> jax.Array:
  """uint8 videos (b, T, H, W, C) -> float32 frames in [0, 1) (video / 256)."""
  if video.dtype != jnp.uint8:
    raise TypeError(f"videos must be uint8 (b, T, H, W, C); got {video.dtype}.")
  return video.astype(jnp.float32) * PIXEL_SCALE


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


def load_data(cfg, split: str) -> dict[str, np.ndarray]:
  from koopjax.data import videos
  return videos.load(cfg.dataset, split, data_dir=cfg.data_dir, image_size=cfg.image_size,
                     frames=cfg.frames)


def variables_of(state) -> dict[str, Any]:
  """Judge variables from a `TrainState`."""
  return {"params": state.params}


@jax.jit(static_argnames="cfg")
def _video_probabilities(variables, video, cfg):
  return probabilities(variables, to_frames(video), cfg)


def predict(variables, video: np.ndarray, cfg, batch_size: int = 256) -> dict[str, np.ndarray]:
  """Per-factor probabilities (N, classes_f) of uint8 videos (N, T, H, W, C), in batches."""
  if len(video) == 0:
    raise ValueError("predict needs at least one video; got none.")
  chunks = [jax.device_get(_video_probabilities(variables, jnp.asarray(video[i:i + batch_size]),
                                                cfg=cfg))
            for i in range(0, len(video), batch_size)]
  return {name: np.concatenate([c[name] for c in chunks]) for name in factor_classes(cfg)}


def accuracy(variables, data: Mapping[str, np.ndarray], cfg, batch_size: int = 256
             ) -> dict[str, float]:
  """Per-head accuracy on labelled videos: factor -> mean(argmax p(y_f|x) == y_f)."""
  probs = predict(variables, data["video"], cfg, batch_size)
  return {name: float(np.mean(np.argmax(p, axis=-1) == np.asarray(data[name])))
          for name, p in probs.items()}


def weak_heads(accuracies: Mapping[str, float], required: float = REQUIRED_ACCURACY
               ) -> list[str]:
  """Heads whose accuracy is below ``required``."""
  return [name for name, acc in accuracies.items() if acc < required]


def test_accuracy_report(result, batch_size: int = 256) -> dict[str, Any]:
  """Per-head accuracy of a trained judge on its dataset's test split; also written to
  ``workdir/report/accuracy.json``."""
  cfg = result.cfg
  variables = jax.device_get(variables_of(result.state))
  acc = accuracy(variables, load_data(cfg, "test"), cfg, batch_size)
  report = {"split": "test", "dataset": cfg.dataset, "step": int(np.asarray(result.state.step)),
            "accuracy": acc, "required": REQUIRED_ACCURACY, "weak_heads": weak_heads(acc)}
  out = pathlib.Path(result.workdir) / "report"
  out.mkdir(parents=True, exist_ok=True)
  (out / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
  return report


def write_report(result) -> None:
  """Loss curves and per-head test accuracy in ``workdir/report/``."""
  from koopjax import report
  out = pathlib.Path(result.workdir) / "report"
  out.mkdir(parents=True, exist_ok=True)
  keys = ["loss"] + [f"ce_{name}" for name in factor_classes(result.cfg)]
  report.loss_curves(result.history, out / "loss_curves.png", keys=keys)
  test_accuracy_report(result)
