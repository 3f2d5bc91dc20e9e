"""Evaluation of a recurrent autoencoder as an anomaly detector (docs/kann.md, "ECG5000").

Every sequence's anomaly score is its summed L1 reconstruction error. The threshold is the
``cfg.anomaly_quantile`` quantile of the training sequences' scores (all normal); the test
split holds held-out normal sequences and every anomaly. Reported: ROC-AUC of the scores
(threshold-free), accuracy, precision and recall at the threshold, and the Koopman fit of the
encoder's hidden states (one-step error; the full analysis is ``koopjax analyse``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np
from sklearn import metrics as sk_metrics

from koopjax.eval import kann
from koopjax.eval.batches import map_batches
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import Figure
from koopjax.models import rnn_ae
from koopjax.models.sequence import load_data

NEEDS_JUDGE = False
LOSS_KEYS = ("loss",)


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the anomaly-detection evaluation."""
  batch_size: int = 512


@functools.partial(jax.jit, static_argnames="cfg")
def _scores(params, x, length, cfg):
  reconstruction = rnn_ae.reconstruct({"params": params}, x, length, cfg)
  return rnn_ae.sequence_errors(reconstruction, x, length)


def anomaly_scores(params, data: dict[str, np.ndarray], cfg, batch_size: int = 512
                   ) -> np.ndarray:
  """Summed L1 reconstruction error of every sequence (N,)."""
  return map_batches(lambda x, n: _scores(params, x, n, cfg=cfg), (data["x"], data["length"]),
                     batch_size)


def detection(scores: np.ndarray, anomaly: np.ndarray, threshold: float) -> dict[str, float]:
  """ROC-AUC of ``scores`` for ``anomaly`` (0/1), and accuracy, precision, recall of
  ``scores > threshold``."""
  anomaly = np.asarray(anomaly).astype(bool)
  flagged = np.asarray(scores) > threshold
  return {"roc_auc": float(sk_metrics.roc_auc_score(anomaly, scores)),
          "accuracy": float(np.mean(flagged == anomaly)),
          "precision": float(sk_metrics.precision_score(anomaly, flagged, zero_division=0)),
          "recall": float(sk_metrics.recall_score(anomaly, flagged, zero_division=0)),
          "threshold": float(threshold)}


def evaluate(run, options: Options | None = None, judge: Any = None) -> Evaluation:
  """Anomaly detection on the test split, and the Koopman one-step error of the encoder."""
  del judge
  options = options or Options()
  cfg, params = run.cfg, run.state.params
  train, test = load_data(cfg, "train"), load_data(cfg, "test")
  train_scores = anomaly_scores(params, train, cfg, options.batch_size)
  test_scores = anomaly_scores(params, test, cfg, options.batch_size)
  threshold = float(np.quantile(train_scores, cfg.anomaly_quantile))
  fit = kann.analyse(run, kann.Options(horizon=1, batch_size=options.batch_size)).record
  record = {
      "config": cfg.name, "cell": cfg.cell, "dataset": cfg.dataset, "steps": int(cfg.steps),
      "train_l1": float(np.mean(train_scores)),
      "test_normal_l1": float(np.mean(test_scores[test["anomaly"] == 0])),
      "test_anomaly_l1": float(np.mean(test_scores[test["anomaly"] == 1])),
      "detection": detection(test_scores, test["anomaly"], threshold),
      "koopman": {"sequences": fit["sequences"], "rank": fit["rank"],
                  "one_step": fit["fit"]["one_step"], "projection": fit["fit"]["projection"]},
  }
  figures = (Figure("loss.png", "loss_curves", {"history": run.history, "keys": LOSS_KEYS}),
             Figure("scores.png", "score_histograms", {
                 "scores": {"normal": test_scores[test["anomaly"] == 0],
                            "anomaly": test_scores[test["anomaly"] == 1]},
                 "threshold": threshold, "title": f"{cfg.name}: summed L1 error per sequence"}))
  return Evaluation("rnn_ae", record, {"results.json": record}, figures)


def run_summary(run) -> Evaluation:
  """What every run writes at its end: the full evaluation."""
  return evaluate(run)
