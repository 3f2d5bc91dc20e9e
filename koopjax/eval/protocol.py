"""The swap and sampling protocol that evaluates a trained SKD model with a judge.

Notation (skd-spec.md 1.5): latents ``z`` (b, T, k) of a batch; ``C = V Λ U`` (``U = V⁻¹``)
the Koopman operator fitted to latents of test sequences; eigen-coordinates ``φ = z V``
(complex, (b, T, k)); S the static modes (`koopjax.models.skd.analysis_static_set`: the run's
κ components by its static mode, or every mode with |λ − 1| < ``analysis_static_radius``), D
the rest.

* **Sampling** (spec 1.5): ``φc = a φ[π1] + (1 − a) φ[π2]``, a random convex combination of
  two members of the same pool (π1, π2 random permutations of the pool, ``a ~ U(0, 1)`` per
  sequence, i.e. Dirichlet(1, 1) as the reference). "Fix motion" (sample static) replaces
  ``φ[:, :, S]`` by ``φc[:, :, S]``; "fix static" (sample dynamics) replaces ``φ[:, :, D]``.
  The sequence decoded from ``Re(φ' U)`` is judged.
* **Main table** (spec 1.6): fix motion, sample static; the judge's action head must still
  see the original action: acc, IS, H(y|x), H(y) of `koopjax.eval.judge_metrics`.
* **Symmetric check**: fix static, sample dynamics; every static head must keep its label.
* **Two-factor swap**: ``Re(z_target^D + z_donor^S)``; success when the judge sees the
  donor's static labels and the target's action.

One operator for the whole evaluation: C is fitted once, on the latents of every test
sequence (or a deterministic subset of ``analysis_size``), and its eigenbasis is applied to
the latents of every test sequence (the reference instead refits C on each test batch; one
fixed basis is what makes mode indices meaningful for multifactor swaps). The fit needs no
labels; fitted on 256 sequences instead of all 1230 of the synthetic test split, C's
eigenvectors were worse conditioned and the same trained weights swapped up to 4 points
worse (README). Sampling pools are batches of ``batch_size`` test sequences drawn by a
seeded permutation. Every function is deterministic in its seed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import koopjax as kj
from koopjax.eval import metrics as metrics_lib
from koopjax.eval import multifactor
from koopjax.eval import probes

FIXES = ("motion", "static")
# What each direction samples and which heads must keep the original labels.
DIRECTIONS = {"motion": "fix dynamics, sample static", "static": "fix static, sample dynamics"}

# skd-spec.md 1.6: published Sprites rows, action head under "fix motion, sample static".
PUBLISHED_SPRITES = (
    ("SKD (published; recalled, not re-read)", "100%", "8.999", "1.6e-7", "2.197"),
    ("C-DSVAE (published)", "99.99%", "8.871", "0.014", "2.197"),
    ("S3VAE (published)", "99.49%", "8.637", "0.041", "2.197"),
)

LatentJudge = Callable[[np.ndarray], dict[str, np.ndarray]]


class EvaluationError(ValueError):
  """The runs or options given to the evaluation cannot be used (the message says why)."""


class JudgeTooWeakError(EvaluationError):
  """The judge is below the required accuracy on real test data (spec 1.6: >= 99 %)."""


# ----------------------------------------------------------------------------- sampling


def convex_combination(phi: jax.Array, key: jax.Array) -> jax.Array:
  """``φc = a φ[π1] + (1 − a) φ[π2]`` over the leading (pool) axis.

  Args:
    phi: eigen-coordinates of a pool of sequences, shape (b, T, k), complex.
    key: PRNG key; π1, π2 are random permutations of the b rows and ``a ~ U(0, 1)`` (b,).

  Returns:
    φc, shape (b, T, k), dtype of ``phi``.
  """
  b = phi.shape[0]
  k1, k2, k3 = jax.random.split(key, 3)
  p1 = jax.random.permutation(k1, b)
  p2 = jax.random.permutation(k2, b)
  a = jax.random.uniform(k3, (b, 1, 1), dtype=jnp.real(phi).dtype).astype(phi.dtype)
  return a * phi[p1] + (1 - a) * phi[p2]


def sample_latents(z: jax.Array, V: jax.Array, U: jax.Array, static: jax.Array, key: jax.Array,
                   fix: str) -> jax.Array:
  """Latents with the static (``fix="motion"``) or dynamic (``fix="static"``) part sampled.

  ``φ = z V``, ``φc = convex_combination(φ)``; the sampled modes M are S for "motion" and D
  for "static"; returns ``Re(φ' U)`` with ``φ'[..., M] = φc[..., M]``, ``φ'[..., Mᶜ] = φ``.

  Args:
    z: latents of one pool, (b, T, k) real.
    V, U: eigenvectors of C and their inverse, (k, k) complex.
    static: (k,) bool mask of the static modes S.
    key: PRNG key of the convex combination.
    fix: "motion" (keep dynamics, sample the static part) or "static" (keep the static part,
      sample dynamics).

  Returns:
    Real latents, shape and dtype of ``z``.
  """
  if fix not in FIXES:
    raise ValueError(f"fix must be one of {', '.join(map(repr, FIXES))} ('motion': keep "
                     f"dynamics, sample static; 'static': keep static, sample dynamics); "
                     f"got {fix!r}.")
  static = kj.modes_to_mask(static, z.shape[-1])
  sampled = static if fix == "motion" else jnp.logical_not(static)
  with jax.default_matmul_precision("highest"):
    phi = z @ V
    phi_c = convex_combination(phi, key)
    phi = jnp.where(jnp.broadcast_to(sampled, phi.shape), phi_c, phi)
    return jnp.real(phi @ U).astype(z.dtype)


_sample_latents_jit = jax.jit(sample_latents, static_argnames="fix")


def pools(n: int, pool_size: int, seed: int) -> list[np.ndarray]:
  """Seeded partition of ``range(n)`` into ceil(n / pool_size) pools of near-equal size."""
  if n < 1 or pool_size < 1:
    raise ValueError(f"need n >= 1 and pool_size >= 1; got n={n}, pool_size={pool_size}.")
  order = np.random.default_rng([seed, 2]).permutation(n)
  return np.array_split(order, -(-n // pool_size))


def sample_pooled(z: np.ndarray, V, U, static, fix: str, seed: int, pool_size: int = 256
                  ) -> np.ndarray:
  """`sample_latents` over every sequence, pools drawn by `pools(n, pool_size, seed)`.

  Returns:
    Sampled latents (N, T, k) in the order of ``z``.
  """
  z = np.asarray(z)
  out = np.empty_like(z)
  root = jax.random.key(seed)
  for index, rows in enumerate(pools(len(z), pool_size, seed)):
    key = jax.random.fold_in(root, index)
    out[rows] = np.asarray(_sample_latents_jit(jnp.asarray(z[rows]), V, U, static, key,
                                               fix=fix))
  return out


def sample_sequences(variables, cfg, video: np.ndarray, analysis, fix: str, seed: int,
                     pool_size: int = 256) -> np.ndarray:
  """Encodes uint8 videos, samples their static or dynamic part, decodes.

  Args:
    variables: SKD variables; cfg: its `SKDConfig`.
    video: uint8 (N, T, H, W, C).
    analysis: `koopjax.models.skd.Analysis` (its eigenbasis and static set are used).
    fix: "motion" or "static" (see `sample_latents`).
    seed: seed of the pools and convex combinations.
    pool_size: sequences per sampling pool.

  Returns:
    Decoded frames (N, T, H, W, C) in (0, 1).
  """
  z = encode_all(variables, video, cfg, pool_size)
  sampled = sample_pooled(z, analysis.eig.V, analysis.eig.U, analysis.static, fix, seed,
                          pool_size)
  return decode_all(variables, sampled, cfg, pool_size)


# ----------------------------------------------------------------------------- batching


def _padded_batches(x: np.ndarray, batch_size: int):
  """Yields (batch padded to batch_size rows with zeros, number of real rows)."""
  for start in range(0, len(x), batch_size):
    chunk = x[start:start + batch_size]
    n = len(chunk)
    if n < batch_size:
      chunk = np.concatenate([chunk, np.zeros((batch_size - n,) + chunk.shape[1:], chunk.dtype)])
    yield chunk, n


@functools.partial(jax.jit, static_argnames="cfg")
def _encode(variables, video, cfg):
  from koopjax.models import skd
  return skd.encode(variables, video, cfg)


@functools.partial(jax.jit, static_argnames="cfg")
def _decode(variables, z, cfg):
  from koopjax.models import skd
  return skd.decode(variables, z, cfg)


def encode_all(variables, video: np.ndarray, cfg, batch_size: int = 256) -> np.ndarray:
  """SKD latents (N, T, k) of uint8 videos (N, T, H, W, C), in batches."""
  batch_size = min(batch_size, len(video))
  return np.concatenate([np.asarray(_encode(variables, jnp.asarray(b), cfg=cfg))[:n]
                         for b, n in _padded_batches(np.asarray(video), batch_size)])


def decode_all(variables, z: np.ndarray, cfg, batch_size: int = 256) -> np.ndarray:
  """SKD decodings (N, T, H, W, C) of latents (N, T, k), in batches."""
  batch_size = min(batch_size, len(z))
  return np.concatenate([np.asarray(_decode(variables, jnp.asarray(b), cfg=cfg))[:n]
                         for b, n in _padded_batches(np.asarray(z), batch_size)])


@functools.partial(jax.jit, static_argnames=("skd_cfg", "judge_cfg"))
def _decode_and_judge(skd_variables, judge_variables, z, skd_cfg, judge_cfg):
  from koopjax.models import judge
  from koopjax.models import skd
  return judge.probabilities(judge_variables, skd.decode(skd_variables, z, skd_cfg), judge_cfg)


def make_latent_judge(skd_variables, skd_cfg, judge_variables, judge_cfg,
                      batch_size: int = 256) -> LatentJudge:
  """A function latents (N, T, k) -> {factor: p(y_f | decode(z)) (N, classes_f)}.

  Decodes with the SKD decoder and classifies with the judge, in padded batches of
  ``batch_size`` (one compilation).
  """
  from koopjax.models import judge
  check_compatible(skd_cfg, judge_cfg)

  def judge_latents(z: np.ndarray) -> dict[str, np.ndarray]:
    z = np.asarray(z, np.float32)
    size = max(1, min(batch_size, len(z)))
    chunks = [jax.tree.map(lambda p, n=n: np.asarray(p)[:n],
                           _decode_and_judge(skd_variables, judge_variables, jnp.asarray(b),
                                             skd_cfg=skd_cfg, judge_cfg=judge_cfg))
              for b, n in _padded_batches(z, size)]
    return {name: np.concatenate([c[name] for c in chunks]) for name in heads}

  heads = tuple(judge.factor_classes(judge_cfg))  # (jax.tree.map sorts dict keys)
  return judge_latents


def check_compatible(skd_cfg, judge_cfg) -> None:
  """Raises `EvaluationError` unless the judge was trained on videos like the SKD model's."""
  for field in ("dataset", "image_size", "frames", "channels"):
    a, b = getattr(skd_cfg, field), getattr(judge_cfg, field)
    if a != b:
      raise EvaluationError(f"the judge was trained with {field}={b!r} but the SKD run has "
                       f"{field}={a!r}; train a judge for the same data (`koopjax judge "
                       f"--dataset {skd_cfg.dataset}`).")


# ----------------------------------------------------------------------------- pairs, swaps


donors = multifactor.donors
swap_latents = multifactor.swap_latents


def two_factor_swap_accuracy(z: np.ndarray, labels: Mapping[str, np.ndarray], V, U, static,
                             latent_judge: LatentJudge, *, dynamic: Sequence[str] = ("action",),
                             seed: int = 0) -> dict[str, Any]:
  """Fraction of two-factor swaps in which the judge sees the donor's static labels and the
  target's dynamic label(s).

  Every sequence is a target once; its donor differs from it in every label where possible
  (`donors`). The swap ``Re(φ_t[:, D] U[D] + φ_d[:, S] U[S])`` (`koopjax.swap`) is decoded
  and judged.

  Args:
    z: latents (N, T, k) of the sequences.
    labels: factor -> int labels (N,), one entry per judge head.
    V, U: eigenbasis of C; static: (k,) bool mask of S.
    latent_judge: latents -> {factor: probabilities (N, classes)} (`make_latent_judge`).
    dynamic: the heads that must keep the target's label (the others take the donor's).
    seed: seed of the donor choice.

  Returns:
    {"joint": fraction with every head right, "per_head": {factor: fraction right},
     "shows_target" / "shows_donor": {factor: fraction of swaps in which the head reads the
     target's / the donor's label} (a failed head shows whose factor leaked into the swap),
     "pairs": N, "strict_pairs": pairs differing in every label}.
  """
  donor, strict = donors(labels, seed)
  swapped = swap_latents(z, z[donor], V, U, static)
  probs = latent_judge(swapped)
  right, shows_target, shows_donor = {}, {}, {}
  for name, p in probs.items():
    predicted, target = np.argmax(p, axis=1), np.asarray(labels[name])
    shows_target[name] = float(np.mean(predicted == target))
    shows_donor[name] = float(np.mean(predicted == target[donor]))
    right[name] = predicted == (target if name in dynamic else target[donor])
  joint = np.all(np.stack(list(right.values())), axis=0)
  return {"joint": float(joint.mean()), "per_head": {n: float(r.mean()) for n, r in right.items()},
          "shows_target": shows_target, "shows_donor": shows_donor,
          "pairs": int(len(z)), "strict_pairs": int(strict.sum())}


# ----------------------------------------------------------------------------- the protocol


def analysis_indices(n: int, size: int, seed: int = 0) -> np.ndarray:
  """The deterministic batch of ``min(size, n)`` test sequences C is fitted on (sorted)."""
  rng = np.random.default_rng([seed, 1])
  return np.sort(rng.choice(n, min(size, n), replace=False))


def sampling_metrics(z: np.ndarray, labels: Mapping[str, np.ndarray], analysis,
                     latent_judge: LatentJudge, fix: str, seed: int, pool_size: int = 256
                     ) -> tuple[dict[str, dict[str, float]], np.ndarray]:
  """One direction of the protocol over every sequence.

  Returns:
    (factor -> `judge_metrics` of the sampled sequences against the *original* labels, for
    every head (the kept factor's heads are the test, the others show leakage); the sampled
    latents (N, T, k)).
  """
  sampled = sample_pooled(z, analysis.eig.V, analysis.eig.U, analysis.static, fix, seed,
                          pool_size)
  probs = latent_judge(sampled)
  return ({name: metrics_lib.judge_metrics(p, labels[name]) for name, p in probs.items()},
          sampled)


def mean_std(values: Sequence[float]) -> dict[str, float]:
  """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
  values = np.asarray(values, np.float64)
  std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
  return {"mean": float(values.mean()), "std": std}


def _aggregate(per_seed: Sequence[Mapping[str, Any]]) -> Any:
  """Nested dicts of floats, one per seed -> the same structure of `mean_std` dicts."""
  first = per_seed[0]
  if isinstance(first, Mapping):
    return {key: _aggregate([s[key] for s in per_seed]) for key in first}
  if isinstance(first, (int, float)) and not isinstance(first, bool):
    return mean_std(per_seed)
  return first


@dataclasses.dataclass(frozen=True)
class EvalOptions:
  """Knobs of `evaluate_skd` (sizes trade time for precision; everything runs on CPU)."""
  seeds: tuple[int, ...] = (0, 1, 2)
  batch_size: int = 256            # decode/judge batch and sampling pool size
  analysis_size: int = 0           # test sequences C and its eigenbasis are fitted on; 0 = all
  attribution_pairs: int = 256     # train pairs used to attribute modes to factors
  attribution_threshold: float = 0.05
  probe_train_size: int = 4096     # train sequences the linear probes are fitted on
  allow_weak_judge: bool = False   # judge a model even if the judge is < 99 % on a head

  def __post_init__(self):
    if len(self.seeds) < 1:
      raise EvaluationError("EvalOptions.seeds needs at least one seed.")
    minimums = {"batch_size": 1, "analysis_size": 0, "attribution_pairs": 1,
                "probe_train_size": 1}
    for name, low in minimums.items():
      if getattr(self, name) < low:
        raise EvaluationError(f"EvalOptions.{name} must be >= {low}; got {getattr(self, name)}.")


def evaluate_skd(skd_run, judge_run, out_dir: str | pathlib.Path,
                 options: EvalOptions = EvalOptions(), log: Callable[[str], None] = print
                 ) -> dict[str, Any]:
  """The whole evaluation of a trained SKD model; writes results.json, results.md, figures.

  Steps: (1) the judge's accuracy on the real test split (refused below 99 % unless
  ``allow_weak_judge``); (2) latents of every test sequence, C and its eigen-analysis fitted
  on them (or on ``analysis_size`` of them); (3) judge accuracy on reconstructions; (4) for
  every seed both sampling directions over the whole test split and the two-factor swap
  accuracy; (5) the multifactor analysis (`koopjax.eval.multifactor`): modes attributed to
  factors on train pairs, then per-factor swaps on test pairs for every seed; (6) linear
  probes of the eigen-coordinates (`koopjax.eval.probes`), fitted on train sequences, scored
  on test.

  Args:
    skd_run: a `koopjax.train.RunResult` of model "skd" (e.g. `koopjax.train.restore`).
    judge_run: a `RunResult` of model "judge" trained on the same dataset.
    out_dir: folder for the outputs (created).
    options: `EvalOptions`.
    log: progress messages.

  Returns:
    The results dict written to ``out_dir/results.json``.
  """
  from koopjax.models import judge
  from koopjax.models import skd

  skd_cfg, judge_cfg = skd_run.cfg, judge_run.cfg
  if skd_cfg.model != "skd" or judge_cfg.model != "judge":
    raise EvaluationError(f"evaluate_skd needs an 'skd' run and a 'judge' run; got "
                     f"{skd_cfg.model!r} and {judge_cfg.model!r}.")
  check_compatible(skd_cfg, judge_cfg)
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  heads = tuple(judge.factor_classes(judge_cfg))
  dynamic = judge.dynamic_factor_names(judge_cfg)
  static_heads = judge.static_factor_names(judge_cfg)

  log(f"loading the {skd_cfg.dataset} test split")
  test = skd.load_data(skd_cfg, "test")
  labels = {name: np.asarray(test[name]) for name in heads}
  judge_variables = jax.device_get(judge.variables_of(judge_run.state))
  judge_accuracy = judge.accuracy(judge_variables, test, judge_cfg, options.batch_size)
  log("judge accuracy on real test videos: " +
      ", ".join(f"{k} {100 * v:.2f}%" for k, v in judge_accuracy.items()))
  weak = judge.weak_heads(judge_accuracy)
  if weak and not options.allow_weak_judge:
    raise JudgeTooWeakError(
        f"the judge in {judge_run.workdir} is below {100 * judge.REQUIRED_ACCURACY:.0f}% on "
        f"real test data for {', '.join(weak)} ({judge_accuracy}); train it longer "
        "(`koopjax judge ... --steps N`) or pass --allow-weak-judge.")

  skd_variables = jax.device_get(skd.variables_of(skd_run.state))
  z = encode_all(skd_variables, test["video"], skd_cfg, options.batch_size)
  fit_rows = analysis_indices(len(z), options.analysis_size or len(z))
  analysis = skd.analyse_latents(jnp.asarray(z[fit_rows]), skd_cfg)
  V, U, static = analysis.eig.V, analysis.eig.U, analysis.static
  latent_judge = make_latent_judge(skd_variables, skd_cfg, judge_variables, judge_cfg,
                                   options.batch_size)

  recon = latent_judge(z)
  reconstruction = {n: float(np.mean(np.argmax(p, 1) == labels[n])) for n, p in recon.items()}
  log("judge accuracy on reconstructions: " +
      ", ".join(f"{k} {100 * v:.2f}%" for k, v in reconstruction.items()))

  per_seed, examples = [], {}
  for seed in options.seeds:
    record = {}
    for fix in FIXES:
      record[f"fix_{fix}"], sampled = sampling_metrics(z, labels, analysis, latent_judge, fix,
                                                       seed, options.batch_size)
      if seed == options.seeds[0]:
        examples[fix] = sampled[example_rows(len(z))]
    record["two_factor_swap"] = two_factor_swap_accuracy(z, labels, V, U, static, latent_judge,
                                                         dynamic=dynamic, seed=seed)
    log(f"seed {seed}: fix motion -> action acc {100 * record['fix_motion']['action']['acc']:.2f}%"
        f"; fix static -> static accs " +
        ", ".join(f"{n} {100 * record['fix_static'][n]['acc']:.1f}%" for n in static_heads) +
        f"; two-factor swaps {100 * record['two_factor_swap']['joint']:.1f}%")
    per_seed.append(record)

  rows = example_rows(len(z))
  sample_figure(test["video"][rows], skd_variables, skd_cfg, z[rows], examples,
                out_dir / "samples.png", seed=options.seeds[0])

  log("multifactor: attributing modes to factors on train pairs")
  train = skd.load_data(skd_cfg, "train")
  multi = multifactor.evaluate(
      skd_variables=skd_variables, skd_cfg=skd_cfg, train=train, test_z=z, test_labels=labels,
      test_video=test["video"], analysis=analysis, latent_judge=latent_judge, heads=heads,
      static_heads=static_heads, seeds=options.seeds, pairs=options.attribution_pairs,
      threshold=options.attribution_threshold, out_dir=out_dir,
      encode=functools.partial(encode_all, batch_size=options.batch_size),
      decode=functools.partial(decode_all, batch_size=options.batch_size))
  log("linear probes: which modes carry which factor")
  probe_rows = analysis_indices(len(train["video"]), options.probe_train_size, seed=2)
  train_z = encode_all(skd_variables, train["video"][probe_rows], skd_cfg, options.batch_size)
  probe_table = probes.mode_probes(
      train_z, {n: np.asarray(train[n])[probe_rows] for n in heads}, z, labels, V, static)
  del train, train_z

  eigenvalues = np.asarray(analysis.eig.eigenvalues)
  results = {
      "skd_run": str(skd_run.workdir), "skd_step": int(np.asarray(skd_run.state.step)),
      "judge_run": str(judge_run.workdir), "dataset": skd_cfg.dataset,
      "test_sequences": int(len(z)), "options": dataclasses.asdict(options),
      "judge_test_accuracy": judge_accuracy, "reconstruction_accuracy": reconstruction,
      "analysis": {"fitted_on": int(len(fit_rows)), "k": int(skd_cfg.k),
                   "static_size": int(skd_cfg.static_size), "static_mode": skd_cfg.static_mode,
                   "static_radius": float(skd_cfg.analysis_static_radius),
                   "static_modes": np.flatnonzero(np.asarray(static)).tolist(),
                   "eigenvalues": [[float(v.real), float(v.imag)] for v in eigenvalues]},
      "per_seed": per_seed,
      "summary": _aggregate(per_seed),
      "multifactor": multi,
      "probes": probe_table,
  }
  (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
  (out_dir / "results.md").write_text(markdown_report(results, dynamic, static_heads))
  log(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
  return results


# ----------------------------------------------------------------------------- report

SAMPLE_FIGURE_ROWS = 3


def example_rows(n: int) -> np.ndarray:
  """Evenly spaced test rows shown in figures (test splits are sorted by identity)."""
  return np.unique(np.linspace(0, n - 1, SAMPLE_FIGURE_ROWS).astype(np.int64))


def sample_figure(video: np.ndarray, skd_variables, skd_cfg, z: np.ndarray,
                  sampled: Mapping[str, np.ndarray], path: pathlib.Path, seed: int) -> None:
  """Per sequence: the input, its reconstruction and one sample of each direction."""
  from koopjax import report
  decoded = {name: decode_all(skd_variables, latents, skd_cfg)
             for name, latents in {"recon": z, **sampled}.items()}
  rows, names = [], []
  for i in range(len(video)):
    rows += [video[i], decoded["recon"][i], decoded["motion"][i], decoded["static"][i]]
    names += [f"input {i}", "reconstruction", "fix motion,\nsample static",
              "fix static,\nsample dynamics"]
  report.video_grid(rows, names, path, f"samples of the evaluation protocol (seed {seed})")


def _pm(stat: Mapping[str, float], scale: float = 1.0, digits: int = 3, pct: bool = False) -> str:
  suffix = "%" if pct else ""
  return (f"{scale * stat['mean']:.{digits}f}{suffix} ± {scale * stat['std']:.{digits}f}"
          f"{suffix}")


def static_set_description(analysis: Mapping[str, Any]) -> str:
  """How S was chosen and its size, from ``results["analysis"]``."""
  size = len(analysis["static_modes"])
  if analysis.get("static_radius", 0.0) > 0:
    rule = f"every mode with |λ − 1| < {analysis['static_radius']:g}"
  else:
    rule = f"κ = {analysis['static_size']} components by `{analysis['static_mode']}`"
  return f"static set S = {rule} ({size} of {analysis['k']} modes)"


def markdown_report(results: Mapping[str, Any], dynamic: Sequence[str],
                    static_heads: Sequence[str]) -> str:
  """The markdown tables of `evaluate_skd` (mean ± std over seeds)."""
  summary = results["summary"]
  n_seeds = len(results["per_seed"])
  action = dynamic[0]
  fm = summary["fix_motion"][action]
  lines = [
      f"# SKD evaluation: {results['skd_run']} (step {results['skd_step']})",
      "",
      f"Dataset {results['dataset']}, {results['test_sequences']} test sequences, judge "
      f"{results['judge_run']}; mean ± std over {n_seeds} seed(s). C fitted on "
      f"{results['analysis']['fitted_on']} test sequences; " + static_set_description(
          results["analysis"]) + ".",
      "",
      "Judge accuracy on real test videos: " + ", ".join(
          f"{k} {100 * v:.2f}%" for k, v in results["judge_test_accuracy"].items()) + ".",
      "Judge accuracy on SKD reconstructions: " + ", ".join(
          f"{k} {100 * v:.2f}%" for k, v in results["reconstruction_accuracy"].items()) + ".",
      "",
      f"## Fix dynamics, sample static: the {action} head (spec 1.6 main table)",
      "",
      "| model | Acc | IS | H(y|x) | H(y) |",
      "|---|---|---|---|---|",
      f"| koopjax SKD, {results['dataset']} (this run) | {_pm(fm['acc'], 100, 2, True)} | "
      f"{_pm(fm['IS'])} | {_pm(fm['H_yx'], digits=4)} | {_pm(fm['H_y'])} |",
  ]
  lines += [f"| {row[0]}, Sprites | {' | '.join(row[1:])} |" for row in PUBLISHED_SPRITES]
  lines += [
      "",
      f"Upper bounds: IS ≤ number of {action} classes, H(y) ≤ ln(classes) (Sprites: 9 and "
      "2.197). Published rows are Sprites; compare like with like.",
      "",
      "## Fix static, sample dynamics: the static heads keep their labels",
      "",
      "| head | Acc | IS | H(y|x) | H(y) |",
      "|---|---|---|---|---|",
  ]
  fs = summary["fix_static"]
  for name in static_heads:
    m = fs[name]
    lines.append(f"| {name} | {_pm(m['acc'], 100, 2, True)} | {_pm(m['IS'])} | "
                 f"{_pm(m['H_yx'], digits=4)} | {_pm(m['H_y'])} |")
  lines += [
      "",
      "Leakage (lower = the sampled part really changed): accuracy of the *other* heads "
      "against the original labels.",
      "",
      "| direction | " + " | ".join(list(dynamic) + list(static_heads)) + " |",
      "|---|" + "---|" * (len(dynamic) + len(static_heads)),
  ]
  for fix in FIXES:
    row = summary[f"fix_{fix}"]
    cells = [_pm(row[n]["acc"], 100, 1, True) for n in list(dynamic) + list(static_heads)]
    lines.append(f"| {DIRECTIONS[fix]} | " + " | ".join(cells) + " |")
  tf = summary["two_factor_swap"]
  pairs = results["per_seed"][0]["two_factor_swap"]["pairs"]
  lines += [
      "",
      "## Two-factor swaps (donor's static modes into the target)",
      "",
      f"Joint success (every static head = donor's label and {action} = target's): "
      f"**{_pm(tf['joint'], 100, 2, True)}** over {pairs} pairs per seed (donors differ from "
      "targets in every label where possible).",
      "",
      "| head | " + " | ".join(tf["per_head"]) + " |",
      "|---|" + "---|" * len(tf["per_head"]),
      "| right | " + " | ".join(_pm(v, 100, 1, True) for v in tf["per_head"].values()) + " |",
  ]
  lines += [f"| shows the {whose}'s label | " + " | ".join(
      _pm(v, 100, 1, True) for v in tf[f"shows_{whose}"].values()) + " |"
      for whose in ("target", "donor")]
  lines += ["", "The last two rows say whose label a head reads: a wrong head shows which side "
            "leaked into the swap (or neither).", ""]
  lines += multifactor.markdown(results["multifactor"])
  lines += probes.markdown(results["probes"])
  return "\n".join(lines) + "\n"
