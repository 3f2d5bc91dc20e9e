"""The evaluation of a trained SKD model with a judge (docs/evaluation.md).

Notation: latents ``z`` (b, T, k); ``C = V Λ U`` (``U = V⁻¹``) the Koopman operator fitted to
latents of test sequences; eigen-coordinates ``φ = z V``; S the static modes
(`koopjax.models.skd.analysis_static_set`: the run's κ components by its static mode, or every
mode with |λ − 1| < ``analysis_static_radius``), D the rest.

* **Main table**: fix motion, sample static (`koopjax.eval.sampling`); the judge's action head
  must still see the original action: acc, IS, H(y|x), H(y) (`koopjax.eval.metrics`).
* **Symmetric check**: fix static, sample dynamics; every static head must keep its label.
* **Two-factor swap**: ``Re(z_target^D + z_donor^S)``; success when the judge sees the
  donor's static labels and the target's action (`koopjax.eval.swaps`).
* **Multifactor**: modes attributed to factors on train pairs, per-factor swaps on test pairs.
* **Probes**: linear probes of the eigen-coordinates (`koopjax.eval.probes`).

Latents are encoded, decoded and judged in batches, and C analysed, by `koopjax.eval.latents`.

One operator for the whole evaluation: C is fitted once, on the latents of every test
sequence (or a deterministic subset of ``analysis_size``), and its eigenbasis is applied to
the latents of every test sequence (the reference refits C on each test batch; one fixed basis
is what makes mode indices meaningful for multifactor swaps). Sampling pools are batches of
``batch_size`` test sequences drawn by a seeded permutation. Every function is deterministic
in its seed.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import koopjax as kj
from koopjax import configs
from koopjax.eval import judge as judge_eval
from koopjax.eval import metrics as metrics_lib
from koopjax.eval.metrics import aggregate_seeds
from koopjax.eval.metrics import mean_std
from koopjax.eval import probes
from koopjax.eval import sampling
from koopjax.eval import swaps
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import EvaluationError
from koopjax.eval.evaluation import Figure
from koopjax.eval.latents import Analysis
from koopjax.eval.latents import analyse_latents
from koopjax.eval.latents import analysis_indices
from koopjax.eval.latents import decode_all
from koopjax.eval.latents import encode_all
from koopjax.eval.latents import make_latent_judge
from koopjax.models import skd

NEEDS_JUDGE = True
SAMPLE_FIGURE_ROWS = 3
LOSS_KEYS = ("loss", "rec", "pred_x", "pred_z", "eig", "motion_invariance")


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of `evaluate` (sizes trade time for precision; everything runs on CPU)."""
  seeds: tuple[int, ...] = (0, 1, 2)
  batch_size: int = 256            # decode/judge batch and sampling pool size
  analysis_size: int = 0           # test sequences C and its eigenbasis are fitted on; 0 = all
  attribution_pairs: int = 256     # train pairs used to attribute modes to factors
  attribution_threshold: float = 0.05
  probe_train_size: int = 4096     # train sequences the linear probes are fitted on
  allow_weak_judge: bool = False   # judge a model even if the judge is < 99 % on a head
  static_radius: float | None = None  # S = every mode with |λ − 1| < r (0: the κ rule);
                                      # None: the run's analysis_static_radius

  def __post_init__(self):
    if len(self.seeds) < 1:
      raise EvaluationError("EvalOptions.seeds needs at least one seed.")
    minimums = {"batch_size": 1, "analysis_size": 0, "attribution_pairs": 1,
                "probe_train_size": 1}
    for name, low in minimums.items():
      if getattr(self, name) < low:
        raise EvaluationError(f"EvalOptions.{name} must be >= {low}; got {getattr(self, name)}.")


EvalOptions = Options


def sampling_metrics(z: np.ndarray, labels: Mapping[str, np.ndarray], analysis: Analysis,
                     latent_judge: swaps.LatentJudge, fix: str, seed: int, pool_size: int = 256
                     ) -> tuple[dict[str, dict[str, float]], np.ndarray]:
  """One direction of the protocol over every sequence.

  Returns:
    (factor -> `judge_metrics` of the sampled sequences against the *original* labels, for
    every head (the kept factor's heads are the test, the others show leakage); the sampled
    latents (N, T, k)).
  """
  sampled = sampling.sample_pooled(z, analysis.eig.V, analysis.eig.U, analysis.static, fix,
                                   seed, pool_size)
  probs = latent_judge(sampled)
  return ({name: metrics_lib.judge_metrics(p, labels[name]) for name, p in probs.items()},
          sampled)


def example_rows(n: int) -> np.ndarray:
  """Evenly spaced test rows shown in figures (test splits are sorted by identity)."""
  return np.unique(np.linspace(0, n - 1, SAMPLE_FIGURE_ROWS).astype(np.int64))




# ----------------------------------------------------------------------------- multifactor


def multifactor(skd_variables, skd_cfg, train: Mapping[str, np.ndarray], test_z: np.ndarray,
                test_labels: Mapping[str, np.ndarray], analysis: Analysis,
                latent_judge: swaps.LatentJudge, heads: Sequence[str],
                static_heads: Sequence[str], options: Options) -> dict[str, Any]:
  """Modes attributed to factors on train pairs, then per-factor swaps on test pairs for every
  seed (`koopjax.eval.swaps`), and the incremental swap of the first strict test pair.

  Returns:
    {"factors", "attribution", "table" (mean ± std over seeds), "per_seed",
     "incremental_swap": {"target", "donor", "order"}}.
  """
  V, U = analysis.eig.V, analysis.eig.U
  train_labels = {h: np.asarray(train[h]) for h in heads}
  rng = np.random.default_rng([0, 4])
  n_train = len(train["video"])
  targets = np.sort(rng.choice(n_train, min(options.attribution_pairs, n_train), replace=False))
  donor, _ = swaps.donors(train_labels, seed=0, targets=targets)
  encode = functools.partial(encode_all, skd_variables, cfg=skd_cfg,
                             batch_size=options.batch_size)
  attribution = swaps.attribute_modes(
      encode(train["video"][targets]), encode(train["video"][donor]),
      {h: v[targets] for h, v in train_labels.items()},
      {h: v[donor] for h, v in train_labels.items()}, V, U,
      np.asarray(analysis.eig.eigenvalues), latent_judge, heads=heads,
      threshold=options.attribution_threshold)
  attribution["pairs"] = int(len(targets))

  per_seed = [swaps.factor_swap_table(test_z, test_labels, swaps.donors(test_labels, seed)[0],
                                      V, U, attribution["modes"], latent_judge, static_heads)
              for seed in options.seeds]
  table = {f: {"modes": per_seed[0][f]["modes"],
               "success": mean_std([s[f]["success"] for s in per_seed]),
               "donor_rate": {h: float(np.mean([s[f]["donor_rate"][h] for s in per_seed]))
                              for h in per_seed[0][f]["donor_rate"]},
               "pairs": per_seed[0][f]["pairs"]}
           for f in per_seed[0]}
  test_donor, strict = swaps.donors(test_labels, options.seeds[0])
  target = int(np.flatnonzero(strict)[0]) if strict.any() else 0
  order = [f for f in static_heads if attribution["modes"].get(f)]
  return {"factors": list(static_heads), "attribution": attribution, "table": table,
          "per_seed": per_seed,
          "incremental_swap": {"target": target, "donor": int(test_donor[target]),
                               "order": order}}


# ----------------------------------------------------------------------------- the protocol


def _with_static_radius(run, radius: float | None):
  """The run with its analysis rule replaced (``radius`` None: unchanged)."""
  if radius is None:
    return run
  cfg = dataclasses.replace(run.cfg, analysis_static_radius=radius)
  configs.validate(cfg)
  return dataclasses.replace(run, cfg=cfg)


def evaluate(run, options: Options = Options(), judge=None, log=print) -> Evaluation:
  """The whole evaluation of a trained SKD model with a judge.

  Steps: (1) the judge's accuracy on the real test split (refused below 99 % unless
  ``allow_weak_judge``); (2) latents of every test sequence, C and its eigen-analysis fitted
  on them (or on ``analysis_size`` of them); (3) judge accuracy on reconstructions; (4) for
  every seed both sampling directions over the whole test split and the two-factor swap
  accuracy; (5) the multifactor analysis; (6) linear probes of the eigen-coordinates, fitted
  on train sequences, scored on test.

  Args:
    run: a `koopjax.train.RunResult` of model "skd" (e.g. `koopjax.train.restore`).
    options: `Options`.
    judge: a `RunResult` of model "judge" trained on the same dataset.
    log: progress messages.

  Returns:
    `Evaluation` with documents ``results.json`` and ``multifactor.json`` and the figures
    ``samples.png``, ``eigenvalues_by_factor.png`` and ``incremental_swap.png``.
  """
  heads, dynamic, static_heads = judge_eval.protocol_heads(run, judge, "skd")
  run = _with_static_radius(run, options.static_radius)
  skd_cfg, judge_cfg = run.cfg, judge.cfg

  log(f"loading the {skd_cfg.dataset} test split")
  test = skd.load_data(skd_cfg, "test")
  labels = {name: np.asarray(test[name]) for name in heads}
  judge_variables, judge_accuracy = judge_eval.checked_judge(
      judge, test, batch_size=options.batch_size, allow_weak=options.allow_weak_judge, log=log)

  skd_variables = jax.device_get(skd.variables_of(run.state))
  z = encode_all(skd_variables, test["video"], skd_cfg, options.batch_size)
  fit_rows = analysis_indices(len(z), options.analysis_size or len(z))
  analysis = analyse_latents(jnp.asarray(z[fit_rows]), skd_cfg)
  V, U, static = analysis.eig.V, analysis.eig.U, analysis.static
  latent_judge = make_latent_judge(skd_variables, skd_cfg, judge_variables, judge_cfg,
                                   options.batch_size)

  recon = latent_judge(z)
  reconstruction = {n: float(np.mean(np.argmax(p, 1) == labels[n])) for n, p in recon.items()}
  log("judge accuracy on reconstructions: " +
      ", ".join(f"{k} {100 * v:.2f}%" for k, v in reconstruction.items()))

  per_seed, examples = [], {}
  rows = example_rows(len(z))
  for seed in options.seeds:
    record = {}
    for fix in sampling.FIXES:
      record[f"fix_{fix}"], sampled = sampling_metrics(z, labels, analysis, latent_judge, fix,
                                                       seed, options.batch_size)
      if seed == options.seeds[0]:
        examples[fix] = sampled[rows]
    record["two_factor_swap"] = swaps.two_factor_swap_accuracy(
        z, labels, V, U, static, latent_judge, dynamic=dynamic, seed=seed)
    log(f"seed {seed}: fix motion -> action acc {100 * record['fix_motion']['action']['acc']:.2f}%"
        f"; fix static -> static accs " +
        ", ".join(f"{n} {100 * record['fix_static'][n]['acc']:.1f}%" for n in static_heads) +
        f"; two-factor swaps {100 * record['two_factor_swap']['joint']:.1f}%")
    per_seed.append(record)

  log("multifactor: attributing modes to factors on train pairs")
  train = skd.load_data(skd_cfg, "train")
  multi = multifactor(skd_variables, skd_cfg, train, z, labels, analysis, latent_judge, heads,
                      static_heads, options)
  log("linear probes: which modes carry which factor")
  probe_rows = analysis_indices(len(train["video"]), options.probe_train_size, seed=2)
  train_z = encode_all(skd_variables, train["video"][probe_rows], skd_cfg, options.batch_size)
  probe_table = probes.mode_probes(
      train_z, {n: np.asarray(train[n])[probe_rows] for n in heads}, z, labels, V, static)
  del train, train_z

  eigenvalues = np.asarray(analysis.eig.eigenvalues)
  results = {
      "skd_run": str(run.workdir), "skd_step": int(np.asarray(run.state.step)),
      "judge_run": str(judge.workdir), "dataset": skd_cfg.dataset,
      "heads": {"dynamic": list(dynamic), "static": list(static_heads)},
      "test_sequences": int(len(z)), "options": dataclasses.asdict(options),
      "judge_test_accuracy": judge_accuracy, "reconstruction_accuracy": reconstruction,
      "analysis": {"fitted_on": int(len(fit_rows)), "k": int(skd_cfg.k),
                   "n_static": int(skd_cfg.n_static), "static_mode": skd_cfg.static_mode,
                   "static_radius": float(skd_cfg.analysis_static_radius),
                   "static_modes": np.flatnonzero(np.asarray(static)).tolist(),
                   "eigenvalues": [[float(v.real), float(v.imag)] for v in eigenvalues]},
      "per_seed": per_seed,
      "summary": aggregate_seeds(per_seed),
      "multifactor": multi,
      "probes": probe_table,
  }
  figures = (
      _samples_figure(test["video"][rows], skd_variables, skd_cfg, z[rows], examples,
                      options.seeds[0]),
      Figure("eigenvalues_by_factor.png", "factor_eigenvalues",
             {"eigenvalues": eigenvalues, "static": np.asarray(static),
              "attribution": multi["attribution"]}),
      _incremental_figure(test["video"], z, skd_variables, skd_cfg, V, U, multi),
  )
  return Evaluation("skd", results, {"results.json": results, "multifactor.json": multi},
                    figures)


def _samples_figure(video: np.ndarray, skd_variables, skd_cfg, z: np.ndarray,
                    sampled: Mapping[str, np.ndarray], seed: int) -> Figure:
  """Per sequence: the input, its reconstruction and one sample of each direction."""
  decoded = {name: decode_all(skd_variables, latents, skd_cfg)
             for name, latents in {"recon": z, **sampled}.items()}
  rows, names = [], []
  for i in range(len(video)):
    rows += [video[i], decoded["recon"][i], decoded["motion"][i], decoded["static"][i]]
    names += [f"input {i}", "reconstruction", "fix motion,\nsample static",
              "fix static,\nsample dynamics"]
  return Figure("samples.png", "video_grid", {"rows": rows, "labels": names, "title":
                                              f"samples of the evaluation protocol (seed {seed})"})


def _incremental_figure(video: np.ndarray, z: np.ndarray, skd_variables, skd_cfg, V, U,
                        multi: Mapping[str, Any]) -> Figure:
  """The donor's modes of one more factor per row, from target to donor."""
  target, donor = multi["incremental_swap"]["target"], multi["incremental_swap"]["donor"]
  order = multi["incremental_swap"]["order"]
  modes = multi["attribution"]["modes"]
  frames = swaps.incremental_swaps(z[target], z[donor], V, U, [modes[f] for f in order])
  decoded = decode_all(skd_variables, np.concatenate([z[[target]], frames, z[[donor]]]), skd_cfg)
  rows = [video[target]] + list(decoded) + [video[donor]]
  names = ["target", "target (recon)"] + ["+ " + f for f in order] + ["donor (recon)", "donor"]
  return Figure("incremental_swap.png", "video_grid", {
      "rows": rows, "labels": names,
      "title": "incremental multifactor swap: the donor's modes of one more factor per row"})


# ----------------------------------------------------------------------------- training report


def run_summary(run, analysis_size: int = 0, pairs: int = 3) -> Evaluation:
  """What ``koopjax train`` writes at the end: loss curves, reconstructions, a two-factor swap
  grid and the eigenvalues of C, with C fitted on ``analysis_size`` test sequences (0: all,
  as `evaluate` does); ``summary.json``."""
  cfg = run.cfg
  test = skd.load_data(cfg, "test")
  n = min(analysis_size or len(test["video"]), len(test["video"]))
  pick = np.random.default_rng(0).choice(len(test["video"]), n, replace=False)
  video = test["video"][pick]
  variables = jax.device_get(skd.variables_of(run.state))
  analysis = analyse_latents(jnp.asarray(encode_all(variables, video, cfg)), cfg)

  x_rec = np.asarray(skd.decode(variables, analysis.z[:4], cfg))
  rows, labels = [], []
  for i in range(4):
    rows += [video[i], x_rec[i]]
    labels += [f"input {i}", f"recon {i}"]

  factors = [name for name in test if name not in ("video", "identity")]
  donor, strict = swaps.donors({k: test[k][pick] for k in factors}, seed=0)
  targets = np.flatnonzero(strict)[:pairs]
  z_swap = kj.swap(analysis.z[targets], analysis.z[donor[targets]], analysis.eig.V,
                   analysis.eig.U, analysis.static)
  swapped = np.asarray(skd.decode(variables, z_swap, cfg))
  swap_rows, swap_labels = [], []
  for i, a in enumerate(targets):
    swap_rows += [video[a], video[donor[a]], swapped[i]]
    swap_labels += [f"A{i} (motion)", f"B{i} (identity)", f"A{i} motion\n+ B{i} identity"]

  eigenvalues = np.asarray(analysis.eig.eigenvalues)
  rule = (f"|λ − 1| < {cfg.analysis_static_radius:g}" if cfg.analysis_static_radius > 0
          else f"κ={cfg.n_static}, {cfg.static_mode}")
  summary = {"step": int(np.asarray(run.state.step)),
             "final_loss": run.history[-1]["loss"] if run.history else None,
             "fitted_on": int(n), "static_modes": int(np.asarray(analysis.static).sum()),
             "eigenvalues": [[float(v.real), float(v.imag)] for v in eigenvalues]}
  figures = (
      Figure("loss_curves.png", "loss_curves", {"history": run.history, "keys": LOSS_KEYS}),
      Figure("reconstructions.png", "video_grid", {"rows": rows, "labels": labels,
                                                   "title": "test reconstructions"}),
      Figure("swap_grid.png", "video_grid", {
          "rows": swap_rows, "labels": swap_labels,
          "title": "two-factor swap: static modes of B into A (Koopman eigen-coordinates)"}),
      Figure("eigenvalues.png", "eigenvalue_plot", {
          "eigenvalues": eigenvalues, "static": np.asarray(analysis.static),
          "title": f"eigenvalues of C (k={cfg.k}; S: {rule})"}),
  )
  return Evaluation("skd", summary, {"summary.json": summary}, figures)
