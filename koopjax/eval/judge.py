"""The judge's own evaluation: per-head accuracy on real test videos, and batched predictions.

A judge must be at least `REQUIRED_ACCURACY` accurate on every head of real test data before
it judges generated sequences (docs/evaluation.md, "The judge").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from koopjax.eval.batches import map_batches
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import EvaluationError
from koopjax.eval.evaluation import Figure
from koopjax.models import judge as judge_model
from koopjax.models.video import to_frames

NEEDS_JUDGE = False
REQUIRED_ACCURACY = 0.99


class JudgeTooWeakError(EvaluationError):
  """The judge is below `REQUIRED_ACCURACY` on real test data."""


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the judge's evaluation."""
  batch_size: int = 256            # videos classified per call


@jax.jit(static_argnames="cfg")
def _video_probabilities(variables, video, cfg):
  return judge_model.probabilities(variables, to_frames(video), cfg)


def predict(variables, video: np.ndarray, cfg, batch_size: int = 256) -> dict[str, np.ndarray]:
  """Per-factor probabilities (N, classes_f) of uint8 videos (N, T, H, W, C), in batches."""
  if len(video) == 0:
    raise ValueError("predict needs at least one video; got none.")
  probs = map_batches(lambda v: _video_probabilities(variables, v, cfg=cfg), (video,),
                      batch_size)
  return {name: probs[name] for name in judge_model.factor_classes(cfg)}


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


def check_compatible(model_cfg, judge_cfg) -> None:
  """Raises `EvaluationError` unless the judge was trained on videos like the model's."""
  for field in ("dataset", "image_size", "frames", "channels"):
    a, b = getattr(model_cfg, field), getattr(judge_cfg, field)
    if a != b:
      raise EvaluationError(f"the judge was trained with {field}={b!r} but the "
                            f"{model_cfg.model.upper()} run has {field}={a!r}; train a judge for "
                            f"the same data (`koopjax judge --dataset {model_cfg.dataset}`).")


def protocol_heads(run, judge, model: str) -> tuple[tuple[str, ...], tuple[str, ...],
                                                   tuple[str, ...]]:
  """Checks that ``run`` (of ``model``) and ``judge`` can go through the protocol together.

  Returns:
    (every head, the dynamic heads, the static heads) of the judge.

  Raises:
    EvaluationError: no judge, the wrong kinds of runs, or a judge for other data.
  """
  name = model.upper()
  if judge is None:
    raise EvaluationError(f"the {name} evaluation needs a trained judge run.")
  if run.cfg.model != model or judge.cfg.model != "judge":
    raise EvaluationError(f"the {name} evaluation needs an {model!r} run and a 'judge' run; "
                          f"got {run.cfg.model!r} and {judge.cfg.model!r}.")
  check_compatible(run.cfg, judge.cfg)
  return (tuple(judge_model.factor_classes(judge.cfg)),
          tuple(judge_model.dynamic_factor_names(judge.cfg)),
          tuple(judge_model.static_factor_names(judge.cfg)))


def checked_judge(run, test: Mapping[str, np.ndarray], *, batch_size: int = 256,
                  allow_weak: bool = False, log=print) -> tuple[Any, dict[str, float]]:
  """The variables of a judge run that may judge, and its per-head accuracy on ``test``.

  Raises:
    JudgeTooWeakError: a head is below `REQUIRED_ACCURACY` (unless ``allow_weak``).
  """
  variables = jax.device_get(judge_model.variables_of(run.state))
  acc = accuracy(variables, test, run.cfg, batch_size)
  log("judge accuracy on real test videos: " +
      ", ".join(f"{k} {100 * v:.2f}%" for k, v in acc.items()))
  weak = weak_heads(acc)
  if weak and not allow_weak:
    raise JudgeTooWeakError(
        f"the judge in {run.workdir} is below {100 * REQUIRED_ACCURACY:.0f}% on real test data "
        f"for {', '.join(weak)} ({acc}); train it longer (`koopjax judge ... --steps N`) or "
        "pass --allow-weak-judge.")
  return variables, acc


def test_accuracy(run, batch_size: int = 256) -> dict[str, Any]:
  """Per-head accuracy of a trained judge run on its dataset's test split, with the heads
  below `REQUIRED_ACCURACY`."""
  cfg = run.cfg
  variables = jax.device_get(judge_model.variables_of(run.state))
  acc = accuracy(variables, judge_model.load_data(cfg, "test"), cfg, batch_size)
  return {"split": "test", "dataset": cfg.dataset, "step": int(np.asarray(run.state.step)),
          "accuracy": acc, "required": REQUIRED_ACCURACY, "weak_heads": weak_heads(acc)}


def evaluate(run, options: Options = Options(), judge=None) -> Evaluation:
  """Test accuracy of a judge run (``accuracy.json``)."""
  del judge
  record = test_accuracy(run, options.batch_size)
  return Evaluation("judge", record, {"accuracy.json": record}, ())


def run_summary(run) -> Evaluation:
  """Loss curves and per-head test accuracy."""
  evaluation = evaluate(run)
  keys = ["loss"] + [f"ce_{name}" for name in judge_model.factor_classes(run.cfg)]
  curves = Figure("loss_curves.png", "loss_curves", {"history": run.history, "keys": keys})
  return evaluation._replace(figures=(curves,))
