"""The Lipschitz RNN against recurrent baselines on digits and digits_permuted (docs/recurrent.md).

Every cell (`koopjax.nn.recurrent.CELLS`) x dataset x seed is trained with its preset
(``digits_<cell>`` / ``digits_permuted_<cell>``: the same schedule for every cell) by the one
trainer, then evaluated by `koopjax.eval.rnn`: test accuracy, accuracy under Gaussian input
noise, the top Hessian eigenvalue and the Hutchinson trace of the loss on the first
``analysis_size`` test sequences. The train step is timed side by side in the same process
(seed 0, after compilation). Prints a markdown table (mean ± std over seeds) and writes JSON.

Usage::

    python benchmarks/recurrent.py [--quick] [--seeds N] [--cells a,b] [--json FILE]
        [--figure FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

import jax
import numpy as np

if __package__ in (None, ""):
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import timing  # noqa: E402
from koopjax import configs  # noqa: E402
from koopjax import train  # noqa: E402
from koopjax.eval import rnn as rnn_eval  # noqa: E402
from koopjax.nn.recurrent import CELLS  # noqa: E402
from koopjax.report import figures  # noqa: E402

DATASETS = ("digits", "digits_permuted")
PAPER = ("Lipschitz RNN (Erichson et al., ICLR 2021, as published): sequential MNIST 99.4 %, "
         "permuted MNIST 96.3 % (784 steps, 60k images, N = 128) - a different, bigger task")


def preset(dataset: str, cell: str, seed: int, steps: int | None) -> configs.ClassifierConfig:
  cfg = configs.get_config(f"{dataset}_{cell}")
  return dataclasses.replace(cfg, seed=seed, steps=steps or cfg.steps, report=False,
                             checkpoint_every=0, num_devices=1)


def run_one(dataset: str, cell: str, seed: int, steps: int | None, timed: bool
            ) -> dict[str, Any]:
  cfg = preset(dataset, cell, seed, steps)
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    result = train.run(cfg, workdir, progress=False)
    train_s = time.perf_counter() - start
    record = rnn_eval.evaluate(result).record
  record.update(seed=seed, train_s=train_s, final_loss=result.history[-1]["loss"])
  if timed:
    record["step_time"] = timing.train_step_times(cfg)
  return record


def _mean_std(values) -> dict[str, float]:
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "std": float(values.std())}


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  rows = []
  for dataset in dict.fromkeys(r["dataset"] for r in records):
    for cell in dict.fromkeys(r["cell"] for r in records):
      group = [r for r in records if r["dataset"] == dataset and r["cell"] == cell]
      if not group:
        continue
      sigmas = [p["sigma"] for p in group[0]["noise"]]
      rows.append({
          "dataset": dataset, "cell": cell, "seeds": len(group),
          "test_accuracy": _mean_std([r["accuracy"]["test"] for r in group]),
          "parameters": group[0]["curvature"]["parameters"],
          "lambda_max": _mean_std([r["curvature"]["lambda_max"] for r in group]),
          "trace": _mean_std([r["curvature"]["trace"] for r in group]),
          "noise": [{"sigma": s, **_mean_std([r["noise"][i]["accuracy"] for r in group])}
                    for i, s in enumerate(sigmas)],
          "step_ms": next((1e3 * r["step_time"]["step_s_median"] for r in group
                           if "step_time" in r), float("nan")),
      })
  return rows


def markdown(rows: list[dict[str, Any]]) -> str:
  sigmas = [p["sigma"] for p in rows[0]["noise"]]
  lines = ["| dataset | cell | test accuracy | params | step (ms) | Hessian λ_max | Hessian trace"
           " | " + " | ".join(f"acc @ σ={s:g}" for s in sigmas[1:]) + " |",
           "|---|---|---|---|---|---|---|" + "---|" * (len(sigmas) - 1)]
  for r in rows:
    acc, lam, tr = r["test_accuracy"], r["lambda_max"], r["trace"]
    noise = " | ".join(f"{100 * p['mean']:.1f}%" for p in r["noise"][1:])
    lines.append(f"| {r['dataset']} | {r['cell']} | {100 * acc['mean']:.2f}% ± "
                 f"{100 * acc['std']:.2f} | {r['parameters']} | {r['step_ms']:.2f} | "
                 f"{lam['mean']:.3g} ± {lam['std']:.2g} | {tr['mean']:.3g} ± {tr['std']:.2g} | "
                 f"{noise} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells")
  parser.add_argument("--datasets", default=",".join(DATASETS))
  parser.add_argument("--seeds", type=int, help="seeds per cell (default 3; quick: 1)")
  parser.add_argument("--steps", type=int, help="train steps (default: the presets'; quick: 30)")
  parser.add_argument("--quick", action="store_true", help="a smoke setting (seconds)")
  parser.add_argument("--json", type=pathlib.Path, help="write records and table here")
  parser.add_argument("--figure", type=pathlib.Path, help="draw the noise curves here (PNG)")
  parser.add_argument("--time-only", action="store_true",
                      help="only time the train step of every cell, side by side (no training)")
  args = parser.parse_args(argv)
  cells = [c for c in args.cells.split(",") if c]
  datasets = [d for d in args.datasets.split(",") if d]
  seeds = args.seeds or (1 if args.quick else 3)
  steps = args.steps or (30 if args.quick else None)
  print(f"recurrent benchmark: {cells} x {datasets} x {seeds} seeds; "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s)", flush=True)
  if args.time_only:
    times = {(d, c): timing.train_step_times(preset(d, c, 0, steps))
             for d in datasets for c in cells}
    lines = ["| dataset | cell | step (ms), median of 20 |", "|---|---|---|"]
    lines += [f"| {d} | {c} | {1e3 * t['step_s_median']:.2f} |" for (d, c), t in times.items()]
    print("\n".join(lines))
    return 0
  start, records = time.perf_counter(), []
  for dataset in datasets:
    for cell in cells:
      for seed in range(seeds):
        record = run_one(dataset, cell, seed, steps, timed=seed == 0)
        records.append(record)
        print(f"{dataset} {cell} seed {seed}: test {100 * record['accuracy']['test']:.2f}%, "
              f"λ_max {record['curvature']['lambda_max']:.3g} ({record['train_s']:.0f} s)",
              flush=True)
  rows = summarise(records)
  table = markdown(rows)
  print(f"\n{table}\n\n{PAPER}.\nTotal time {time.perf_counter() - start:.0f} s.")
  if args.figure:
    for dataset in datasets:
      path = args.figure.with_name(f"{args.figure.stem}_{dataset}{args.figure.suffix}")
      figures.noise_curves(path, {r["cell"]: r["noise"] for r in rows if r["dataset"] == dataset},
                           title=f"{dataset}: test accuracy under input noise "
                           f"(mean ± std, {seeds} seeds)")
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "settings": {"cells": cells, "datasets": datasets, "seeds": seeds, "steps": steps,
                     "quick": args.quick, "device": str(jax.devices()[0])},
        "records": records, "rows": rows, "table": table}, indent=1, default=float))
  return 0


if __name__ == "__main__":
  sys.exit(main())
