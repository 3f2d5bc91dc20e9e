"""SKD latents in batches, the judge on their decodings, and the Koopman analysis of a trained
model: what every part of the SKD evaluation and the training report work on."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import numpy as np

import koopjax as kj
from koopjax.eval import sampling
from koopjax.eval import swaps
from koopjax.eval.batches import map_batches
from koopjax.eval.judge import check_compatible
from koopjax.models import judge as judge_model
from koopjax.models import skd


@functools.partial(jax.jit, static_argnames="cfg")
def _encode(variables, video, cfg):
  return skd.encode(variables, video, cfg)


@functools.partial(jax.jit, static_argnames="cfg")
def _decode(variables, z, cfg):
  return skd.decode(variables, z, cfg)


def encode_all(variables, video: np.ndarray, cfg, batch_size: int = 256) -> np.ndarray:
  """SKD latents (N, T, k) of uint8 videos (N, T, H, W, C), in batches."""
  return map_batches(lambda v: _encode(variables, v, cfg=cfg), (np.asarray(video),), batch_size)


def decode_all(variables, z: np.ndarray, cfg, batch_size: int = 256) -> np.ndarray:
  """SKD decodings (N, T, H, W, C) of latents (N, T, k), in batches."""
  return map_batches(lambda b: _decode(variables, b, cfg=cfg), (np.asarray(z),), batch_size)


@functools.partial(jax.jit, static_argnames=("skd_cfg", "judge_cfg"))
def _decode_and_judge(skd_variables, judge_variables, z, skd_cfg, judge_cfg):
  frames = skd.decode(skd_variables, z, skd_cfg)
  return judge_model.probabilities(judge_variables, frames, judge_cfg)


def make_latent_judge(skd_variables, skd_cfg, judge_variables, judge_cfg,
                      batch_size: int = 256) -> swaps.LatentJudge:
  """A function latents (N, T, k) -> {factor: p(y_f | decode(z)) (N, classes_f)}.

  Decodes with the SKD decoder and classifies with the judge, in padded batches of
  ``batch_size`` (one compilation).
  """
  check_compatible(skd_cfg, judge_cfg)

  def judge_latents(z: np.ndarray) -> dict[str, np.ndarray]:
    probs = map_batches(lambda b: _decode_and_judge(skd_variables, judge_variables, b,
                                                    skd_cfg=skd_cfg, judge_cfg=judge_cfg),
                        (np.asarray(z, np.float32),), batch_size)
    return {name: probs[name] for name in heads}  # the judge's head order (tree.map sorts)

  heads = tuple(judge_model.factor_classes(judge_cfg))
  return judge_latents


# ----------------------------------------------------------------------------- analysis


class Analysis(NamedTuple):
  """Latents of a batch with the Koopman operator fitted to them and its eigen-structure."""
  z: jax.Array            # (b, T, k)
  C: jax.Array            # (k, k)
  eig: kj.Eigendecomposition
  static: jax.Array       # (k,) bool, S of `skd.analysis_static_set`


def analyse_latents(z: jax.Array, cfg) -> Analysis:
  """Fits C on latents ``z`` (b, T, k) and splits its modes into static and dynamic."""
  c = kj.fit_koopman(z, ridge=cfg.ridge)
  decomposition = kj.eig(c, backend=cfg.eig_backend)
  return Analysis(z, c, decomposition, skd.analysis_static_set(decomposition.eigenvalues, cfg))


def analyse(variables, video: jax.Array, cfg) -> Analysis:
  """Encodes videos, fits C on the batch and splits its modes into static and dynamic."""
  return analyse_latents(skd.encode(variables, video, cfg), cfg)


def sample_sequences(variables, cfg, video: np.ndarray, analysis: Analysis, fix: str, seed: int,
                     pool_size: int = 256) -> np.ndarray:
  """Encodes uint8 videos, samples their static or dynamic part, decodes.

  Args:
    variables: SKD variables; cfg: its `SKDConfig`.
    video: uint8 (N, T, H, W, C).
    analysis: its eigenbasis and static set are used.
    fix: "motion" or "static" (see `koopjax.eval.sampling.sample_latents`).
    seed: seed of the pools and convex combinations.
    pool_size: sequences per sampling pool.

  Returns:
    Decoded frames (N, T, H, W, C) in (0, 1).
  """
  z = encode_all(variables, video, cfg, pool_size)
  sampled = sampling.sample_pooled(z, analysis.eig.V, analysis.eig.U, analysis.static, fix,
                                   seed, pool_size)
  return decode_all(variables, sampled, cfg, pool_size)


def analysis_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
  """The deterministic batch of ``min(size, n)`` sequences C is fitted on (sorted)."""
  rng = np.random.default_rng([seed, 1])
  return np.sort(rng.choice(n, min(size, n), replace=False))
