"""Evaluation of a recurrent sequence classifier (docs/recurrent.md, "What a run reports").

Test and validation accuracy; accuracy under Gaussian input noise of each σ in
``cfg.noise_levels`` (real-valued inputs only); the curvature of the loss at the trained
parameters (top Hessian eigenvalue and Hutchinson trace, on ``cfg.analysis_size`` test
sequences); and, for Lipschitz and antisymmetric cells, the spectra of the hidden-to-hidden
matrices (their largest real part is logged at every step by the model's loss).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from koopjax.configs import recurrent as recurrent_configs
from koopjax.data import sequences
from koopjax.eval.batches import map_batches
from koopjax.eval.curvature import loss_curvature
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import Figure
from koopjax.models import rnn
from koopjax.models.sequence import load_data
from koopjax.nn.recurrent import hidden_matrices

NEEDS_JUDGE = False
LOSS_KEYS = ("loss", "ce")
NOISE_SEED = 7


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the classifier evaluation (its sizes are config fields: ``analysis_size``,
  ``hessian_iterations``, ``hutchinson_samples``, ``noise_levels``)."""
  batch_size: int = 512


@functools.partial(jax.jit, static_argnames="cfg")
def _predict(params, x, length, noise, key, cfg):
  if not sequences.spec(cfg.dataset).tokens:
    x = x + noise * jax.random.normal(key, x.shape, x.dtype)
  return jnp.argmax(rnn.logits({"params": params}, x, length, cfg), axis=-1)


def accuracy(params, data: dict[str, np.ndarray], cfg, *, noise: float = 0.0, seed: int = 0,
             batch_size: int = 512) -> float:
  """Accuracy on ``data``; real-valued inputs get N(0, noise²) added first.

  The noise of the batch starting at row i is drawn from ``fold_in(key(seed), i)``: every
  run sees the same noise.
  """
  def predict(x, length, row):
    key = jax.random.fold_in(jax.random.key(seed), row[0])
    return _predict(params, x, length, jnp.float32(noise), key, cfg=cfg)

  rows = np.arange(len(data["x"]))
  predictions = map_batches(predict, (data["x"], data["length"], rows), batch_size)
  return float(np.mean(predictions == data["label"]))


def noise_curve(params, data, cfg, levels, batch_size: int = 512) -> list[dict[str, float]]:
  """``[{"sigma": σ, "accuracy": a}, ...]`` of each noise level (the same noise draws)."""
  return [{"sigma": float(s), "accuracy": accuracy(params, data, cfg, noise=s, seed=NOISE_SEED,
                                                   batch_size=batch_size)} for s in levels]


def spectra(params, cfg) -> dict[str, np.ndarray]:
  """Eigenvalues (complex) of the cell's spectrally controlled matrices (A, W), if it has any."""
  matrices = hidden_matrices(rnn.cell_params(params), cfg.cell, beta=cfg.beta, gamma=cfg.gamma)
  return {name: np.linalg.eigvals(np.asarray(m, np.float64)) for name, m in matrices.items()}


def _head(data: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
  return {k: v[:size] for k, v in data.items()}


def evaluate(run, options: Options | None = None, judge: Any = None) -> Evaluation:
  """Accuracy, noise robustness, curvature and spectra of a trained classifier run."""
  del judge
  options = options or Options()
  cfg, params = run.cfg, run.state.params
  test, validation = load_data(cfg, "test"), load_data(cfg, "validation")
  record: dict[str, Any] = {
      "config": cfg.name, "cell": cfg.cell, "dataset": cfg.dataset, "steps": int(cfg.steps),
      "accuracy": {"validation": accuracy(params, validation, cfg, batch_size=options.batch_size),
                   "test": accuracy(params, test, cfg, batch_size=options.batch_size)},
  }
  if not sequences.spec(cfg.dataset).tokens:
    record["noise"] = noise_curve(params, test, cfg, recurrent_configs.noise_levels(cfg),
                                  options.batch_size)
  batch = {k: jnp.asarray(v) for k, v in _head(test, cfg.analysis_size).items()
           if k in rnn.batch_keys(cfg)}
  record["curvature"] = loss_curvature(rnn, params, run.state.model_state, batch, cfg,
                                       iterations=cfg.hessian_iterations,
                                       samples=cfg.hutchinson_samples)
  record["curvature"]["examples"] = int(len(batch["x"]))
  eigenvalues = spectra(params, cfg)
  record["spectra"] = {name: {"max_real": float(np.max(v.real)),
                              "max_abs_imag": float(np.max(np.abs(v.imag)))}
                       for name, v in eigenvalues.items()}
  logged = [k for k in (run.history[0] if run.history else {}) if k.startswith("max_re_eig_")]
  figures = [Figure("loss.png", "loss_curves", {"history": run.history, "keys": LOSS_KEYS})]
  if eigenvalues:
    figures.append(Figure("spectra.png", "matrix_spectra", {"eigenvalues": eigenvalues,
                                                            "title": cfg.name}))
  if logged:
    figures.append(Figure("max_re_eig.png", "metric_traces",
                          {"history": run.history, "keys": logged,
                           "ylabel": "max Re λ", "title": cfg.name}))
  if "noise" in record:
    figures.append(Figure("noise.png", "noise_curves",
                          {"curves": {cfg.name: record["noise"]}}))
  return Evaluation("rnn", record, {"results.json": record}, tuple(figures))


def run_summary(run) -> Evaluation:
  """What every run writes at its end: the full evaluation (a few seconds)."""
  return evaluate(run)
