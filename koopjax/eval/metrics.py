"""Judge-based metrics of generated sequences (docs/evaluation.md, "Metrics").

With ``p(y|x)`` the judge's softmax over the classes of one factor for a generated sequence
``x`` and ``p(y) = E_x p(y|x)`` the mean prediction:

* ``acc``  = mean over all sequences of ``1[argmax_y p(y|x) == y_true]``;
* ``IS``   = ``exp(E_x KL(p(y|x) || p(y)))`` (inception score, at most the number of classes);
* ``H_yx`` = ``E_x H(p(y|x))`` = ``-E_x Σ_y p(y|x) ln p(y|x)`` (lower = more confident);
* ``H_y``  = ``H(p(y))`` = ``-Σ_y p(y) ln p(y)`` (at most ln(classes): diverse predictions).

As in the reference evaluation code of the sequential-disentanglement literature, ``acc`` is
taken over every sequence, and IS, H(y|x) and H(y) over a *class-balanced subset*: for every
ground-truth class present, its first ``m`` sequences in the given order, with ``m`` the
count of the rarest present class (so a skewed label distribution does not bias p(y)).
Natural logarithms; ``0 ln 0 = 0``. Computed in float64 numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

METRICS = ("acc", "IS", "H_yx", "H_y")


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """``x ln y`` with ``0 ln y = 0`` (also for y = 0)."""
  safe = np.where(x > 0, y, 1.0)
  return np.where(x > 0, x * np.log(safe), 0.0)


def _check(probs, labels) -> tuple[np.ndarray, np.ndarray]:
  probs = np.asarray(probs, np.float64)
  labels = np.asarray(labels)
  if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] < 1:
    raise ValueError(f"probs must have shape (N, classes) with N >= 1; got {probs.shape}.")
  if labels.shape != (probs.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers of shape ({probs.shape[0]},) (one per row of "
                     f"probs); got dtype {labels.dtype} and shape {labels.shape}.")
  if labels.min() < 0 or labels.max() >= probs.shape[1]:
    raise ValueError(f"labels must be in [0, {probs.shape[1] - 1}] (classes of probs); got "
                     f"values in [{labels.min()}, {labels.max()}].")
  if not np.all(np.isfinite(probs)) or probs.min() < 0:
    raise ValueError("probs must be finite and non-negative (softmax outputs).")
  if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-3):
    raise ValueError("every row of probs must sum to 1 (softmax outputs, not logits); got row "
                     f"sums in [{probs.sum(axis=1).min():.4g}, {probs.sum(axis=1).max():.4g}].")
  return probs, labels


def balanced_subset(labels) -> np.ndarray:
  """Indices of a class-balanced subset of ``labels``.

  For every class present in ``labels`` (ascending), the positions of its first ``m``
  occurrences, ``m = min_c #{i : labels[i] = c}`` over the present classes.

  Args:
    labels: integer ground-truth labels, shape (N,).

  Returns:
    int64 indices, shape (m · #classes present,), grouped by class, in order within a class.
  """
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0:
    raise ValueError(f"labels must be a non-empty 1-D array; got shape {labels.shape}.")
  classes, counts = np.unique(labels, return_counts=True)
  m = int(counts.min())
  return np.concatenate([np.flatnonzero(labels == c)[:m] for c in classes]).astype(np.int64)


def inception_score(probs) -> float:
  """``exp(E_x KL(p(y|x) || p(y)))`` of probabilities (N, classes)."""
  probs = np.asarray(probs, np.float64)
  p_y = probs.mean(axis=0, keepdims=True)
  kl = np.sum(_xlogy(probs, probs) - _xlogy(probs, np.broadcast_to(p_y, probs.shape)), axis=1)
  return float(np.exp(np.mean(kl)))


def conditional_entropy(probs) -> float:
  """``H(y|x) = -E_x Σ_y p(y|x) ln p(y|x)`` of probabilities (N, classes)."""
  probs = np.asarray(probs, np.float64)
  return float(-np.mean(np.sum(_xlogy(probs, probs), axis=1)))


def marginal_entropy(probs) -> float:
  """``H(y) = -Σ_y p(y) ln p(y)`` with ``p(y)`` the mean of probabilities (N, classes)."""
  p_y = np.asarray(probs, np.float64).mean(axis=0)
  return float(-np.sum(_xlogy(p_y, p_y)))


def judge_metrics(probs, labels) -> dict[str, float]:
  """Acc, IS, H(y|x), H(y) of the judge's predictions for one factor.

  Args:
    probs: the judge's softmax p(y|x) for one factor, shape (N, classes), rows sum to 1.
    labels: the ground truth the generated sequences should show, int (N,).

  Returns:
    {"acc": accuracy over all N, "IS", "H_yx", "H_y": over `balanced_subset(labels)`}.
  """
  probs, labels = _check(probs, labels)
  acc = float(np.mean(np.argmax(probs, axis=1) == labels))
  subset = probs[balanced_subset(labels)]
  return {"acc": acc, "IS": inception_score(subset), "H_yx": conditional_entropy(subset),
          "H_y": marginal_entropy(subset)}


def mean_std(values: Sequence[float]) -> dict[str, float]:
  """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
  return {"mean": float(values.mean()), "std": std}


def aggregate_seeds(per_seed: Sequence[Mapping[str, Any]]) -> Any:
  """Nested dicts of floats, one per seed -> the same structure of `mean_std` dicts."""
  first = per_seed[0]
  if isinstance(first, Mapping):
    return {key: aggregate_seeds([s[key] for s in per_seed]) for key in first}
  if isinstance(first, (int, float)) and not isinstance(first, bool):
    return mean_std(per_seed)
  return first
