"""Evaluation of a trained SPYL model with the judge, by the protocol SKD is evaluated with
(docs/evaluation.md), so the two compare one to one.

* fix dynamics, sample static: decode (μ_d(x), s ~ N(0, I)); the judge's action head must keep
  the original action (Acc, IS, H(y|x), H(y));
* fix static, sample dynamics: decode (d ~ the learned prior, μ_s(x)); the static heads must
  keep their labels;
* two-factor swaps: decode (μ_d(target), μ_s(donor)) with the donor differing from the target
  in every label where possible (`koopjax.eval.swaps.donors`); every static head must read the
  donor's label and the action the target's.

SKD samples by convex combinations in its eigen-coordinates; SPYL from its priors, as the
reference evaluates it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from koopjax.eval import judge as judge_eval
from koopjax.eval import metrics as metrics_lib
from koopjax.eval import swaps
from koopjax.eval.batches import map_batches
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import EvaluationError
from koopjax.eval.evaluation import Figure
from koopjax.eval.metrics import aggregate_seeds
from koopjax.models import judge as judge_model
from koopjax.models import spyl
from koopjax.models.video import to_frames

NEEDS_JUDGE = True
LOSS_KEYS = ("loss", "rec", "kl_s", "kl_d", "mi", "con_s", "con_d")
FIGURE_ROWS = 4


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the SPYL evaluation."""
  seeds: tuple[int, ...] = (0, 1, 2)
  batch_size: int = 256
  allow_weak_judge: bool = False

  def __post_init__(self):
    if len(self.seeds) < 1:
      raise EvaluationError("Options.seeds needs at least one seed.")
    if self.batch_size < 1:
      raise EvaluationError(f"Options.batch_size must be >= 1; got {self.batch_size}.")


@functools.partial(jax.jit, static_argnames="cfg")
def _posterior_means(variables, video, cfg):
  q = spyl.encode(variables, to_frames(video), cfg)
  return q.d_mean, q.s_mean


@functools.partial(jax.jit, static_argnames="cfg")
def _decode(variables, d, s, cfg):
  return spyl.decode(variables, d, s, cfg)


@functools.partial(jax.jit, static_argnames=("cfg", "judge_cfg"))
def _decode_and_judge(variables, judge_variables, d, s, cfg, judge_cfg):
  return judge_model.probabilities(judge_variables, spyl.decode(variables, d, s, cfg), judge_cfg)


def posterior_means(variables, video: np.ndarray, cfg, batch_size: int = 256):
  """(μ_d (N, T, d_dim), μ_s (N, s_dim)) of uint8 videos."""
  return map_batches(lambda v: _posterior_means(variables, v, cfg=cfg), (video,), batch_size)


def judge_codes(variables, judge_variables, d: np.ndarray, s: np.ndarray, cfg, judge_cfg,
                batch_size: int = 256) -> dict[str, np.ndarray]:
  """The judge's probabilities on the decodings of codes (d, s), in batches (in the judge's
  head order)."""
  probs = map_batches(lambda d_, s_: _decode_and_judge(variables, judge_variables, d_, s_,
                                                       cfg=cfg, judge_cfg=judge_cfg),
                      (d, s), batch_size)
  return {name: probs[name] for name in judge_model.factor_classes(judge_cfg)}


def sampled_codes(variables, d: np.ndarray, s: np.ndarray, cfg, fix: str, seed: int):
  """Codes with the static part (``fix="motion"``: s ~ N(0, I)) or the dynamic part
  (``fix="static"``: d from the prior) sampled, the other kept."""
  key = jax.random.fold_in(jax.random.key(seed), {"motion": 0, "static": 1}[fix])
  if fix == "motion":
    return d, np.asarray(jax.random.normal(key, s.shape, jnp.float32))
  return np.asarray(spyl.sample_dynamics(variables, key, len(d), cfg)), s


def evaluate(run, options: Options = Options(), judge=None, log=print) -> Evaluation:
  """Both sampling directions and two-factor swaps of a trained SPYL run, judged.

  Returns:
    `Evaluation` with ``results.json`` (the keys of SKD's where they mean the same) and
    ``samples.png``.
  """
  heads, dynamic, static_heads = judge_eval.protocol_heads(run, judge, "spyl")
  cfg, judge_cfg = run.cfg, judge.cfg
  test = spyl.load_data(cfg, "test")
  labels = {name: np.asarray(test[name]) for name in heads}
  judge_variables, judge_accuracy = judge_eval.checked_judge(
      judge, test, batch_size=options.batch_size, allow_weak=options.allow_weak_judge, log=log)
  variables = jax.device_get(spyl.variables_of(run.state))
  d, s = posterior_means(variables, test["video"], cfg, options.batch_size)

  def judged(d_, s_):
    return judge_codes(variables, judge_variables, d_, s_, cfg, judge_cfg, options.batch_size)

  reconstruction = {n: float(np.mean(np.argmax(p, 1) == labels[n]))
                    for n, p in judged(d, s).items()}
  per_seed, examples = [], {}
  rows = np.unique(np.linspace(0, len(d) - 1, FIGURE_ROWS).astype(np.int64))
  for seed in options.seeds:
    record = {}
    for fix in ("motion", "static"):
      d_, s_ = sampled_codes(variables, d, s, cfg, fix, seed)
      record[f"fix_{fix}"] = {name: metrics_lib.judge_metrics(p, labels[name])
                              for name, p in judged(d_, s_).items()}
      if seed == options.seeds[0]:
        examples[fix] = (d_[rows], s_[rows])
    donor, strict = swaps.donors(labels, seed)
    record["two_factor_swap"] = swaps.score_swaps(judged(d, s[donor]), labels, donor, strict,
                                                  dynamic)
    log(f"seed {seed}: fix motion -> action acc {100 * record['fix_motion']['action']['acc']:.2f}%"
        f"; two-factor swaps {100 * record['two_factor_swap']['joint']:.1f}%")
    per_seed.append(record)
  results = {
      "spyl_run": str(run.workdir), "spyl_step": int(np.asarray(run.state.step)),
      "judge_run": str(judge.workdir), "dataset": cfg.dataset,
      "heads": {"dynamic": list(dynamic), "static": list(static_heads)},
      "test_sequences": int(len(d)), "options": dataclasses.asdict(options),
      "judge_test_accuracy": judge_accuracy, "reconstruction_accuracy": reconstruction,
      "w_contrastive": float(cfg.w_contrastive),
      "per_seed": per_seed, "summary": aggregate_seeds(per_seed),
  }
  grid, names = [], []
  decoded = {"recon": np.asarray(_decode(variables, d[rows], s[rows], cfg=cfg)),
             **{fix: np.asarray(_decode(variables, *codes, cfg=cfg))
                for fix, codes in examples.items()}}
  for i, row in enumerate(rows):
    grid += [test["video"][row], decoded["recon"][i], decoded["motion"][i], decoded["static"][i]]
    names += [f"input {row}", "reconstruction", "fix motion,\nsample static",
              "fix static,\nsample dynamics"]
  figure = Figure("samples.png", "video_grid", {
      "rows": grid, "labels": names,
      "title": f"SPYL samples of the evaluation protocol (seed {options.seeds[0]})"})
  return Evaluation("spyl", results, {"results.json": results}, (figure,))


def run_summary(run) -> Evaluation:
  """What ``koopjax train`` writes at the end: loss curves, test reconstructions and a
  two-factor swap grid (no judge needed)."""
  cfg = run.cfg
  test = spyl.load_data(cfg, "test")
  variables = jax.device_get(spyl.variables_of(run.state))
  factors = [name for name in test if name not in ("video", "identity")]
  donor, strict = swaps.donors({k: test[k] for k in factors}, seed=0)
  targets = np.flatnonzero(strict)[:3]
  picked = np.concatenate([np.arange(4), targets, donor[targets]])
  d, s = posterior_means(variables, test["video"][picked], cfg)
  recon = np.asarray(_decode(variables, d[:4], s[:4], cfg=cfg))
  n = len(targets)
  swapped = np.asarray(_decode(variables, d[4:4 + n], s[4 + n:], cfg=cfg))
  rows, labels = [], []
  for i in range(4):
    rows += [test["video"][i], recon[i]]
    labels += [f"input {i}", f"recon {i}"]
  swap_rows, swap_labels = [], []
  for i, a in enumerate(targets):
    swap_rows += [test["video"][a], test["video"][donor[a]], swapped[i]]
    swap_labels += [f"A{i} (motion)", f"B{i} (identity)", f"A{i} d\n+ B{i} s"]
  summary = {"step": int(np.asarray(run.state.step)),
             "final_loss": run.history[-1]["loss"] if run.history else None}
  figures = (
      Figure("loss_curves.png", "loss_curves", {"history": run.history, "keys": LOSS_KEYS}),
      Figure("reconstructions.png", "video_grid", {"rows": rows, "labels": labels,
                                                   "title": "test reconstructions"}),
      Figure("swap_grid.png", "video_grid", {"rows": swap_rows, "labels": swap_labels,
                                             "title": "two-factor swap: s of B into A"}),
  )
  return Evaluation("spyl", summary, {"summary.json": summary}, figures)
