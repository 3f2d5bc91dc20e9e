"""Koopman analysis of a trained recurrent network (KANN; docs/kann.md), measured.

The hidden states Z (b, T, H) the frozen network computes on test sequences are projected on
their top-r singular vectors, Zp = Z P, and one linear operator C is fitted to them
(`koopjax.koopman_analysis`). What it reports:

* **fit**: the share of the states the projection loses, ‖Z − Z P Pᵀ‖ / ‖Z‖, and the relative
  error of k-step predictions ``Zp_t C^k`` against ``Zp_{t+k}`` for k = 1..horizon (over all
  valid t; k = 1 is the one-step error);
* **decisions**: the network's output on its true last state h_{L−1} against its output on
  the Koopman-predicted one, ``(Zp_{L−2} C) Pᵀ``. A classifier: the share of equal decisions
  (and both accuracies); an autoencoder: how far apart the two decodings are;
* **token ranking** (`phrases`, whose tokens have known roles): for each dominant mode j
  (largest |λ_j|) a score per token, and how well it ranks the sentiment-bearing tokens above
  the fillers (ROC-AUC, precision at k = the number of sentiment-bearing tokens). Two scores:
  the reference's ``|Φ_t,j|`` (magnitude of the eigen-coordinate) and the *innovation*
  ``|Φ_t,j − λ_j Φ_{t−1,j}|``, the part of the coordinate the linear dynamics do not explain:
  the kick the token at t gives mode j;
* **mode pairs** (autoencoder): modes ranked by mean Σ_t |Φ_t,j|; the states rebuilt from one
  pair only, ``Re(Φ[:, :, pair] U[pair, :]) Pᵀ`` (U = V⁻¹; the reference takes the elementwise
  absolute value of the projector, which we do not), decoded from their last step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from sklearn import metrics as sk_metrics

from koopjax import models
from koopjax._src.analysis import koopman_analysis
from koopjax.data import phrases
from koopjax.eval.batches import map_batches
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import EvaluationError
from koopjax.eval.evaluation import Figure
from koopjax.models import rnn
from koopjax.models import rnn_ae
from koopjax.models.sequence import load_data

MODELS = ("rnn", "rnn_ae")


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the analysis.

  Attributes:
    size: test sequences analysed (0: the run's ``analysis_size``); an autoencoder's are
      normal ones.
    rank: r of the projection (0: KANN's default, min(b·(T−1), H) − 1).
    horizon: longest prediction checked (steps).
    modes: dominant modes scored and drawn.
    examples: sequences drawn in the token heatmap.
    pairs: mode pairs decoded (autoencoder).
    batch_size: sequences per forward pass.
  """
  size: int = 0
  rank: int = 0
  horizon: int = 10
  modes: int = 4
  examples: int = 6
  pairs: int = 4
  batch_size: int = 512


def fit_errors(states: np.ndarray, lengths: np.ndarray, basis: np.ndarray,
               operator: np.ndarray, horizon: int) -> dict[str, Any]:
  """Projection error and k-step prediction errors (module docstring), in float64.

  Args:
    states: Z (b, T, H). lengths: (b,). basis: P (H, r). operator: C (r, r).
    horizon: largest k (steps with t + k beyond a sequence's length are left out).

  Returns:
    ``projection``, ``one_step`` and ``multi_step`` (list of horizon errors, NaN where no
    sequence is long enough).
  """
  z = np.asarray(states, np.float64)
  p, c = np.asarray(basis, np.float64), np.asarray(operator, np.float64)
  valid = np.arange(z.shape[1])[None, :] < np.asarray(lengths)[:, None]
  zp = z @ p
  residual = (z - zp @ p.T)[valid]
  projection = float(np.linalg.norm(residual) / np.linalg.norm(z[valid]))
  errors, prediction = [], zp
  for k in range(1, horizon + 1):
    prediction = prediction @ c
    ok = valid[:, k:]
    if not ok.any():
      errors.append(float("nan"))
      continue
    diff = prediction[:, :-k][ok] - zp[:, k:][ok]
    errors.append(float(np.linalg.norm(diff) / np.linalg.norm(zp[:, k:][ok])))
  return {"projection": projection, "one_step": errors[0], "multi_step": errors}


def predicted_last_states(states: np.ndarray, lengths: np.ndarray, basis: np.ndarray,
                          operator: np.ndarray) -> np.ndarray:
  """``(Zp_{L−2} C) Pᵀ`` (b, H): each sequence's last state predicted from the one before."""
  z = np.asarray(states, np.float64)
  p, c = np.asarray(basis, np.float64), np.asarray(operator, np.float64)
  before_last = z[np.arange(len(z)), np.asarray(lengths) - 2]
  return (before_last @ p @ c @ p.T).astype(np.float32)


def token_scores(coordinates: np.ndarray, eigenvalues: np.ndarray) -> dict[str, np.ndarray]:
  """Per-token, per-mode scores (b, T, r): ``magnitude`` |Φ_t| and ``innovation``
  |Φ_t − λ Φ_{t−1}| (|Φ_0| at t = 0, where the state before is h_0 = 0)."""
  phi = np.asarray(coordinates)
  previous = np.concatenate([np.zeros_like(phi[:, :1]), phi[:, :-1]], axis=1)
  return {"magnitude": np.abs(phi),
          "innovation": np.abs(phi - np.asarray(eigenvalues)[None, None, :] * previous)}


def ranking_quality(scores: np.ndarray, relevant: np.ndarray, valid: np.ndarray
                    ) -> dict[str, float]:
  """How well ``scores`` (b, T) rank the ``relevant`` tokens among the ``valid`` ones.

  Returns:
    ``roc_auc`` (0.5 = chance) and ``precision_at_k``: the share of relevant tokens among the
    k best-scored, k = the number of relevant tokens.
  """
  s, y = np.asarray(scores)[valid], np.asarray(relevant)[valid].astype(bool)
  if y.all() or not y.any():
    raise ValueError("ranking needs both relevant and other tokens among the valid ones.")
  k = int(y.sum())
  top = np.argsort(-s, kind="stable")[:k]
  return {"roc_auc": float(sk_metrics.roc_auc_score(y, s)),
          "precision_at_k": float(np.mean(y[top])), "k": k}


def dominant_modes(eigenvalues: np.ndarray, count: int) -> np.ndarray:
  """Indices of the ``count`` eigenvalues of largest modulus (the reference's order)."""
  return np.argsort(-np.abs(eigenvalues), kind="stable")[:count]


def token_ranking(analysis, data: dict[str, np.ndarray], modes: int) -> dict[str, Any]:
  """Scores of each dominant mode (and of the dominant pair: the two largest |λ| summed)."""
  eigenvalues = np.asarray(analysis.eigenvalues)
  scores = token_scores(np.asarray(analysis.coordinates), eigenvalues)
  valid = np.arange(data["x"].shape[1])[None, :] < data["length"][:, None]
  relevant = data["role"] != 0
  order = dominant_modes(eigenvalues, modes)
  out: dict[str, Any] = {"modes": [], "chance_precision": float(relevant[valid].mean())}
  for j in order:
    out["modes"].append({"mode": int(j), "eigenvalue": [float(eigenvalues[j].real),
                                                        float(eigenvalues[j].imag)],
                         **{name: ranking_quality(s[..., j], relevant, valid)
                            for name, s in scores.items()}})
  pair = order[:2]
  out["dominant_pair"] = {name: ranking_quality(s[..., pair].sum(-1), relevant, valid)
                          for name, s in scores.items()}
  for name in scores:
    out[f"best_{name}_roc_auc"] = max(m[name]["roc_auc"] for m in out["modes"])
  return out


def mode_pairs(analysis, count: int) -> list[tuple[int, int]]:
  """The first ``count`` pairs of modes ranked by mean Σ_t |Φ_t,j| (the reference's ECG
  order: consecutive entries of the ranking, usually a conjugate pair)."""
  dominance = np.mean(np.sum(np.abs(np.asarray(analysis.coordinates)), axis=1), axis=0)
  order = np.argsort(-dominance, kind="stable")
  return [(int(order[2 * i]), int(order[2 * i + 1])) for i in range(min(count, len(order) // 2))]


def pair_states(analysis, pair: tuple[int, int]) -> np.ndarray:
  """Hidden states (b, T, H) rebuilt from one mode pair: ``Re(Φ[..., pair] U[pair]) Pᵀ``."""
  v = np.asarray(analysis.eigenvectors)
  u = np.linalg.inv(v)
  phi = np.asarray(analysis.coordinates)[..., list(pair)]
  return np.real(phi @ u[list(pair), :]) @ np.asarray(analysis.basis).T


@functools.partial(jax.jit, static_argnames=("model", "cfg"))
def _states(params, x, model, cfg):
  return models.get(model).hidden_states({"params": params}, x, cfg)


def _analysis_data(cfg, size: int) -> dict[str, np.ndarray]:
  test = load_data(cfg, "test")
  if cfg.model == "rnn_ae":
    test = {k: v[test["anomaly"] == 0] for k, v in test.items()}
  return {k: v[:size] for k, v in test.items()}


def _classifier_decisions(params, states, data, predicted, cfg) -> dict[str, float]:
  index = np.arange(len(states)), data["length"] - 1
  true_logits = np.asarray(rnn.readout({"params": params}, jnp.asarray(states[index]), cfg))
  koopman_logits = np.asarray(rnn.readout({"params": params}, jnp.asarray(predicted), cfg))
  true_decision, koopman_decision = true_logits.argmax(-1), koopman_logits.argmax(-1)
  return {"agreement": float(np.mean(true_decision == koopman_decision)),
          "network_accuracy": float(np.mean(true_decision == data["label"])),
          "koopman_accuracy": float(np.mean(koopman_decision == data["label"]))}


def _autoencoder_decisions(params, states, data, predicted, cfg):
  index = np.arange(len(states)), data["length"] - 1
  true = np.asarray(rnn_ae.decode({"params": params}, jnp.asarray(states[index]), cfg))
  koopman = np.asarray(rnn_ae.decode({"params": params}, jnp.asarray(predicted), cfg))
  x, length = jnp.asarray(data["x"]), jnp.asarray(data["length"])
  return {"decoding_relative_difference":
          float(np.linalg.norm(koopman - true) / np.linalg.norm(true)),
          "network_l1": float(np.mean(rnn_ae.sequence_errors(jnp.asarray(true), x, length))),
          "koopman_l1": float(np.mean(rnn_ae.sequence_errors(jnp.asarray(koopman), x, length)))}


def _pair_figure(params, analysis, data, pairs, cfg) -> dict[str, Any]:
  length = data["length"]
  curves = {"input": data["x"][..., 0],
            "autoencoder": np.asarray(rnn_ae.reconstruct({"params": params},
                                                         jnp.asarray(data["x"]),
                                                         jnp.asarray(length), cfg))[..., 0]}
  for pair in pairs:
    rebuilt = pair_states(analysis, pair)[np.arange(len(length)), length - 1]
    decoded = rnn_ae.decode({"params": params}, jnp.asarray(rebuilt, jnp.float32), cfg)
    curves[f"modes {pair[0]},{pair[1]}"] = np.asarray(decoded)[..., 0]
  return {"curves": curves, "title": f"{cfg.name}: decodings from one mode pair"}


def analyse(run, options: Options | None = None) -> Evaluation:
  """The KANN analysis of a trained ``rnn`` or ``rnn_ae`` run (module docstring)."""
  options = options or Options()
  cfg = run.cfg
  if cfg.model not in MODELS:
    raise EvaluationError(f"KANN analyses recurrent runs (models {', '.join(MODELS)}); "
                          f"{run.workdir} holds a {cfg.model!r} run.")
  params = run.state.params
  data = _analysis_data(cfg, options.size or cfg.analysis_size)
  if len(data["x"]) < 2 or int(data["length"].min()) < 2:
    raise EvaluationError("the analysis needs >= 2 test sequences of >= 2 steps.")
  states = map_batches(lambda x: _states(params, x, model=cfg.model, cfg=cfg), (data["x"],),
                       options.batch_size)
  try:
    analysis = jax.device_get(koopman_analysis(jnp.asarray(states), rank=options.rank or None,
                                               lengths=jnp.asarray(data["length"])))
  except ValueError as error:  # a rank out of range, for these states
    raise EvaluationError(str(error)) from error
  basis, operator = np.asarray(analysis.basis), np.asarray(analysis.operator)
  predicted = predicted_last_states(states, data["length"], basis, operator)
  eigenvalues = np.asarray(analysis.eigenvalues)
  record: dict[str, Any] = {
      "config": cfg.name, "model": cfg.model, "cell": cfg.cell, "dataset": cfg.dataset,
      "sequences": int(len(states)), "hidden": int(states.shape[-1]), "rank": int(basis.shape[1]),
      "fit": fit_errors(states, data["length"], basis, operator, options.horizon),
      "spectral_radius": float(np.max(np.abs(eigenvalues))),
      "eigenvalues": {"real": eigenvalues.real, "imag": eigenvalues.imag},
  }
  title = f"{cfg.name}: Koopman operator of the hidden states (r = {basis.shape[1]})"
  figures = [Figure("spectrum.png", "operator_eigenvalues",
                    {"forward": eigenvalues, "backward_inverse": None, "title": title}),
             Figure("errors.png", "horizon_errors",
                    {"errors": record["fit"]["multi_step"], "title": cfg.name})]
  if cfg.model == "rnn":
    record["decisions"] = _classifier_decisions(params, states, data, predicted, cfg)
  else:
    record["decisions"] = _autoencoder_decisions(params, states, data, predicted, cfg)
  if "role" in data:
    record["token_ranking"] = token_ranking(analysis, data, options.modes)
    shown = slice(0, options.examples)
    scores = token_scores(np.asarray(analysis.coordinates), eigenvalues)["innovation"]
    order = dominant_modes(eigenvalues, options.modes)
    figures.append(Figure("tokens.png", "token_heatmap", {
        "words": [phrases.decode(x, n) for x, n in zip(data["x"][shown], data["length"][shown])],
        "roles": data["role"][shown], "scores": scores[shown][..., order],
        "modes": [f"mode {j}: |λ| = {abs(eigenvalues[j]):.3f}" for j in order]}))
  if cfg.model == "rnn_ae":
    pairs = mode_pairs(analysis, options.pairs)
    record["mode_pairs"] = [list(p) for p in pairs]
    figures.append(Figure("mode_pairs.png", "median_bands",
                          _pair_figure(params, analysis, data, pairs, cfg)))
  return Evaluation("kann", record, {"analysis.json": record}, tuple(figures))
