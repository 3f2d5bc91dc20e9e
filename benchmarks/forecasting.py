"""Eigenvalue initialisation and eigenloss for forecasting Koopman autoencoders (Miller et al.).

For each system, every operator initialisation (gaussian, orthogonal, eigeninit
distributions) is trained with the eigenloss off and on, over several seeds, and compared with
the gaussian / eigenloss-off baseline on two numbers:

- **epochs to threshold**: the first epoch after which the validation loss (`kae.prediction_mse`,
  the mean s-step forward-prediction MSE on all windows of the test split) is <= τ, where τ is
  the baseline's median final validation loss times ``--threshold-factor`` (default 1), so
  "speed-up" = epochs the baseline needs / epochs the configuration needs to reach the loss
  the baseline ends with;
- **cumulative long-term error**: Σ over ``eval_steps`` (1000) steps of the mean relative
  error of C-only rollouts from 30 test initial conditions (`kae_eval.rollout_errors`); "error
  ratio" = configuration / baseline (lower is better).

Medians over seeds (for epochs with an even number of seeds, the lower middle value); τ uses
the upper median of the baseline's final losses, so the baseline's median run reaches it. A
configuration whose median run never reaches τ shows "> E" (E epochs).
The paper reports up to 5x faster convergence and up to 3x lower long-term error.

Training is exactly `koopjax train`'s: every run is assembled by `koopjax.train.build` (state,
optimiser, step keys) and fed the same `ArrayLoader` batches; the built step runs one epoch per
jitted `lax.scan`, so that each (system, eigenloss) pair compiles once. Checked against
`koopjax.train.run` in the tests.

Usage::

    python benchmarks/forecasting.py [--quick] [--json FILE] [--epochs E] [--seeds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from koopjax import configs  # noqa: E402
from koopjax import parallel  # noqa: E402
from koopjax import train  # noqa: E402
from koopjax.data import loader as loader_lib  # noqa: E402
from koopjax.eval import kae as kae_eval  # noqa: E402
from koopjax.models import kae  # noqa: E402

# (label, config overrides) of the operator initialisations compared.
INITS = (
    ("gaussian", {"operator_init": "gaussian"}),
    ("orthogonal", {"operator_init": "orthogonal"}),
    ("eig:unit_circle", {"operator_init": "eigeninit", "eigeninit_distribution": "unit_circle"}),
    ("eig:disk", {"operator_init": "eigeninit", "eigeninit_distribution": "disk"}),
    ("eig:spike_and_slab", {"operator_init": "eigeninit",
                            "eigeninit_distribution": "spike_and_slab",
                            "eigeninit_params": "theta=0.5"}),
)
BASELINE = ("gaussian", False)
PAPER = "up to 5x faster convergence; up to 3x lower cumulative long-term error"


def make_epoch_fn(update, steps_per_epoch: int):
  """One jitted call = one epoch of a built run's pure step (`train.Built.update`) over a
  (steps, B) index array into device-resident windows."""
  def epoch(state, windows, indices, step_key):
    def one(state, index):
      rng = jax.random.fold_in(step_key, state.step)
      state, metrics = update(state, {"window": windows[index]}, rng)
      return state, metrics["finite"]

    state, finite = jax.lax.scan(one, state, indices, length=steps_per_epoch)
    return state, jnp.all(finite)

  return jax.jit(epoch, donate_argnums=0)


def train_curve(cfg: configs.KAEConfig, epochs: int, epoch_fn, windows: np.ndarray,
                device_windows: jax.Array, val_fn, mesh) -> tuple[Any, np.ndarray]:
  """Trains ``cfg`` for ``epochs`` epochs; returns (params, validation loss after each)."""
  data = loader_lib.ArrayLoader({"window": windows}, cfg.batch_size, cfg.seed)
  spe = data.steps_per_epoch
  # The state `koopjax train` starts from (eager init: same values, no compilation per run).
  built = train.build(cfg, mesh, jit_init=False)
  state = built.state
  val = np.empty(epochs)
  for e in range(epochs):
    indices = np.stack([data.indices(step) for step in range(e * spe, (e + 1) * spe)])
    state, _ = epoch_fn(state, device_windows, jnp.asarray(indices), built.step_key)
    val[e] = float(val_fn(state.params))
  return jax.device_get(state.params), val


def epochs_to(curve: np.ndarray, threshold: float) -> float:
  """First epoch (1-based) with validation loss <= threshold; inf if never."""
  hit = np.flatnonzero(curve <= threshold)
  return float(hit[0] + 1) if hit.size else math.inf


def run_system(name: str, epochs: int, seeds: int, eigenloss_weight: float,
               inits=INITS, log=print) -> list[dict[str, Any]]:
  """All runs of one system preset; returns one record per (init, eigenloss, seed)."""
  base = configs.get_config(name)
  steps_per_epoch = (base.n_train - base.pred_steps) // base.batch_size
  base = dataclasses.replace(base, steps=epochs * steps_per_epoch, report=False)
  mesh = parallel.make_mesh(1)
  windows = kae.load_data(base, "train")["window"]
  device_windows = jnp.asarray(windows)
  val_windows = jnp.asarray(kae.load_data(base, "test")["window"])
  records = []
  for eigenloss in (False, True):
    group = dataclasses.replace(base, w_eigenloss=eigenloss_weight if eigenloss else 0.0)
    configs.validate(group)
    # One compiled epoch per group: the loss and optimiser do not depend on the seed or the
    # operator initialisation, which are all that differ within the group.
    epoch_fn = make_epoch_fn(train.build(group, mesh, jit_init=False).update, steps_per_epoch)
    val_fn = jax.jit(lambda p, group=group: kae.prediction_mse(p, val_windows, group))
    for label, overrides in inits:
      for seed in range(seeds):
        cfg = dataclasses.replace(group, seed=seed, **overrides)
        configs.validate(cfg)
        start = time.perf_counter()
        params, curve = train_curve(cfg, epochs, epoch_fn, windows, device_windows, val_fn,
                                    mesh)
        errors = kae_eval.rollout_errors(params, group)
        # A rollout that overflowed (|λ| > 1 grows the latent without bound) counts as inf.
        mean_error = np.mean(np.where(np.isfinite(errors), errors, np.inf), axis=0)
        records.append({
            "system": name, "init": label, "eigenloss": eigenloss, "seed": seed,
            "val_curve": curve.tolist(), "final_val": float(curve[-1]),
            "cumulative_error": float(np.sum(mean_error)),
            "error_at_100": float(mean_error[min(99, len(mean_error) - 1)]),
            "spectral_radius": float(np.max(np.abs(np.linalg.eigvals(
                np.asarray(params["C"], np.float64))))),
            "seconds": time.perf_counter() - start,
        })
        r = records[-1]
        log(f"  {name:16s} {label:19s} eigenloss={'on ' if eigenloss else 'off'} seed={seed} "
            f"val={r['final_val']:.3g} cum_err={r['cumulative_error']:.4g} "
            f"|λ|max={r['spectral_radius']:.4f} ({r['seconds']:.1f}s)")
  return records


def _median(values) -> float:
  values = np.asarray(values, np.float64)
  return float(np.median(values)) if values.size else math.nan


def _lower_median(values) -> float:
  """Median for odd counts, the lower middle value for even ones (inf-safe)."""
  values = np.sort(np.asarray(values, np.float64))
  return float(values[(values.size - 1) // 2]) if values.size else math.nan


def _upper_median(values) -> float:
  values = np.sort(np.asarray(values, np.float64))
  return float(values[values.size // 2]) if values.size else math.nan


def summarise(records: list[dict[str, Any]], threshold_factor: float = 1.0
              ) -> list[dict[str, Any]]:
  """One row per (system, init, eigenloss): medians and ratios to the baseline."""
  rows = []
  for system in dict.fromkeys(r["system"] for r in records):
    runs = [r for r in records if r["system"] == system]
    epochs = len(runs[0]["val_curve"])
    baseline = [r for r in runs if (r["init"], r["eigenloss"]) == BASELINE]
    # Upper median: at least half of the baseline's seeds end at or below τ (factor 1).
    threshold = threshold_factor * _upper_median([r["final_val"] for r in baseline])
    base_epochs = _lower_median([epochs_to(np.asarray(r["val_curve"]), threshold)
                                 for r in baseline])
    base_error = _median([r["cumulative_error"] for r in baseline])
    for init, eigenloss in dict.fromkeys((r["init"], r["eigenloss"]) for r in runs):
      group = [r for r in runs if (r["init"], r["eigenloss"]) == (init, eigenloss)]
      reach = _lower_median([epochs_to(np.asarray(r["val_curve"]), threshold) for r in group])
      error = _median([r["cumulative_error"] for r in group])
      rows.append({
          "system": system, "init": init, "eigenloss": eigenloss, "seeds": len(group),
          "epochs": epochs, "threshold": threshold, "epochs_to_threshold": reach,
          "speedup": base_epochs / reach if math.isfinite(reach) else 0.0,
          "final_val": _median([r["final_val"] for r in group]),
          "cumulative_error": error, "error_ratio": error / base_error,
          "spectral_radius": _median([r["spectral_radius"] for r in group]),
      })
  return rows


def markdown(rows: list[dict[str, Any]]) -> str:
  """The results table (medians over seeds)."""
  lines = ["| system | init | eigenloss | epochs to τ | speed-up vs baseline | final val "
           "MSE | cumulative error | error ratio vs baseline | max abs eig |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    reach = (f"{r['epochs_to_threshold']:.0f}" if math.isfinite(r["epochs_to_threshold"])
             else f"> {r['epochs']}")
    speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
    lines.append(f"| {r['system']} | {r['init']} | {'on' if r['eigenloss'] else 'off'} | "
                 f"{reach} | {speedup} | {r['final_val']:.2e} | {r['cumulative_error']:.4g} | "
                 f"{r['error_ratio']:.2f} | {r['spectral_radius']:.3f} |")
  return "\n".join(lines)


def _json_dumps(data: Any) -> str:
  """Strict JSON: non-finite floats (a run that never reached τ, a diverged rollout) -> null."""
  def clean(x):
    if isinstance(x, float) and not math.isfinite(x):
      return None
    if isinstance(x, dict):
      return {k: clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
      return [clean(v) for v in x]
    return x

  return json.dumps(clean(data), indent=1, allow_nan=False)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--systems", default="pendulum,damped_pendulum,lorenz",
                      help="comma-separated KAE presets (default: %(default)s)")
  parser.add_argument("--epochs", type=int, help="epochs per run (default 600; quick: 60)")
  parser.add_argument("--seeds", type=int, help="seeds per configuration (default 5; quick: 3)")
  parser.add_argument("--eigenloss-weight", type=float, default=0.1,
                      help="w_eigenloss when the eigenloss is on (default %(default)s)")
  parser.add_argument("--threshold-factor", type=float, default=1.0,
                      help="τ = factor x the baseline's median final validation loss")
  parser.add_argument("--quick", action="store_true", help="a < 3 minute smoke setting")
  parser.add_argument("--json", type=pathlib.Path, help="write records and table here")
  args = parser.parse_args(argv)

  systems = [s for s in args.systems.split(",") if s]
  epochs = args.epochs or (60 if args.quick else 600)
  seeds = args.seeds or (3 if args.quick else 5)
  inits = tuple(i for i in INITS if i[0] != "eig:disk") if args.quick else INITS
  if args.quick and args.systems == parser.get_default("systems"):
    systems = ["pendulum"]
  print(f"forecasting benchmark: {systems}, {len(inits)} inits x eigenloss off/on "
        f"(w={args.eigenloss_weight}) x {seeds} seeds, {epochs} epochs; "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s)", flush=True)
  start = time.perf_counter()
  records = []
  for system in systems:
    records += run_system(system, epochs, seeds, args.eigenloss_weight, inits,
                          log=lambda line: print(line, flush=True))
  rows = summarise(records, args.threshold_factor)
  table = markdown(rows)
  elapsed = time.perf_counter() - start
  print(f"\n{table}\n\nPaper (Miller et al. 2022): {PAPER}.\nTotal time {elapsed:.0f} s.")
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(_json_dumps({
        "settings": {"systems": systems, "epochs": epochs, "seeds": seeds,
                     "eigenloss_weight": args.eigenloss_weight,
                     "threshold_factor": args.threshold_factor, "quick": args.quick,
                     "inits": [label for label, _ in inits], "baseline": list(BASELINE),
                     "seconds": elapsed, "paper": PAPER},
        "rows": rows, "records": records, "table": table}) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
