"""SKD against SPYL (and SPYL without its contrastive terms) on the same data, with one judge
(docs/spyl.md, "SKD and SPYL side by side").

One judge is trained (``judge_<dataset>``); then every model is trained for the same number of
steps over several seeds by the one trainer (on the synthetic videos SKD: the ``synthetic``
preset; SPYL: ``spyl_synthetic``; the ablation: ``spyl_synthetic`` with ``w_contrastive=0``; on
Sprites, 32x32: ``sprites_cpu`` and ``spyl_sprites_cpu``) and evaluated by
its evaluator with that judge (one protocol seed per trained seed: the spread between training
seeds dominates). The train steps are timed side by side in this process. Prints a markdown
table (mean ± std over training seeds) and writes JSON.

Usage::

    python benchmarks/disentanglement.py [--steps N] [--seeds N] [--quick] [--json FILE]
    python benchmarks/disentanglement.py --dataset sprites --data-dir ~/tfds --seeds 1
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
from koopjax import eval as evaluation_lib  # noqa: E402
from koopjax import train  # noqa: E402

PRESETS = {  # dataset -> row name -> (preset, overrides)
    "synthetic": {
        "SKD": ("synthetic", {}),
        "SPYL": ("spyl_synthetic", {}),
        "SPYL (w_contrastive=0)": ("spyl_synthetic", {"w_contrastive": 0.0}),
    },
    "sprites": {  # both 2x2 average-pooled to 32x32, as SKD's CPU schedule
        "SKD": ("sprites_cpu", {}),
        "SPYL": ("spyl_sprites_cpu", {}),
        "SPYL (w_contrastive=0)": ("spyl_sprites_cpu", {"w_contrastive": 0.0}),
    },
}
MODELS = tuple(PRESETS["synthetic"])
JUDGE_STEPS = {"synthetic": None, "sprites": 2000}  # None: the preset's; 32x32 Sprites: 2000


def config(name: str, steps: int, seed: int, dataset: str = "synthetic",
           data_dir: str = "") -> configs.TrainConfig:
  preset, overrides = PRESETS[dataset][name]
  cfg = configs.get_config(preset)
  fields = dict(steps=steps, seed=seed, report=False, checkpoint_every=0, num_devices=1,
                **overrides, **({"data_dir": data_dir} if data_dir else {}))
  if hasattr(cfg, "warmup_steps"):  # keep the reference's ratio: 5 % of the steps
    fields["warmup_steps"] = max(1, steps // 20)
  cfg = dataclasses.replace(cfg, **fields)
  configs.validate(cfg)
  return cfg


def numbers(record: dict[str, Any]) -> dict[str, float]:
  """The table's numbers from an SKD or SPYL results.json (one protocol seed)."""
  seed = record["per_seed"][0]
  action = seed["fix_motion"]["action"]
  static = [seed["fix_static"][h]["acc"] for h in record["heads"]["static"]]
  return {"action_acc": action["acc"], "IS": action["IS"], "H_yx": action["H_yx"],
          "H_y": action["H_y"], "static_acc": float(np.mean(static)),
          "swap_joint": seed["two_factor_swap"]["joint"],
          "reconstruction_action": record["reconstruction_accuracy"]["action"]}


def _ms(values, scale=1.0, digits=2) -> str:
  values = scale * np.asarray(values, np.float64)
  return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}"


def markdown(rows: dict[str, list[dict[str, float]]], step_s: dict[str, float]) -> str:
  lines = ["| model | seeds | fix dynamics: action acc (%) | IS | H(y\\|x) | H(y) | fix static: "
           "static heads acc (%) | two-factor swaps, joint (%) | step (s) |",
           "|---|---|---|---|---|---|---|---|---|"]
  for name, runs in rows.items():
    col = {k: [r[k] for r in runs] for k in runs[0]}
    lines.append(f"| {name} | {len(runs)} | {_ms(col['action_acc'], 100)} | {_ms(col['IS'])} | "
                 f"{_ms(col['H_yx'], digits=3)} | {_ms(col['H_y'])} | "
                 f"{_ms(col['static_acc'], 100)} | {_ms(col['swap_joint'], 100)} | "
                 f"{step_s.get(name, float('nan')):.3f} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, help="train steps of every model (default 1500)")
  parser.add_argument("--seeds", type=int, help="training seeds (default 3)")
  parser.add_argument("--models", default=",".join(MODELS), help="rows, comma-separated")
  parser.add_argument("--dataset", choices=tuple(PRESETS), default="synthetic")
  parser.add_argument("--data-dir", default="", help="TFDS data dir (sprites)")
  parser.add_argument("--quick", action="store_true", help="a smoke setting")
  parser.add_argument("--json", type=pathlib.Path)
  parser.add_argument("--workdir", type=pathlib.Path, help="keep the runs here")
  args = parser.parse_args(argv)
  steps = args.steps or (4 if args.quick else 1500)
  seeds = args.seeds or (1 if args.quick else 3)
  names = [n for n in args.models.split(",") if n]
  unknown = sorted(set(names) - set(MODELS))
  if unknown:
    parser.error(f"--models: unknown {unknown}; expected some of {list(MODELS)}")
  root = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="disentanglement-"))
  print(f"disentanglement benchmark on {args.dataset}: {names} x {seeds} seeds x {steps} steps; "
        f"{jax.devices()[0]}; runs in {root}", flush=True)
  def cfg_of(name, seed):
    return config(name, steps, seed, args.dataset, args.data_dir)
  judge_fields = {"steps": 20} if args.quick else (
      {"steps": JUDGE_STEPS[args.dataset]} if JUDGE_STEPS[args.dataset] else {})
  judge_cfg = dataclasses.replace(
      configs.get_config(f"judge_{args.dataset}"), report=False, num_devices=1,
      image_size=cfg_of(names[0], 0).image_size, **judge_fields,
      **({"data_dir": args.data_dir} if args.data_dir else {}))
  judge = train.run(judge_cfg, root / "judge", progress=False)
  step_s = {name: timing.train_step_times(cfg_of(name, 0), 10)["step_s_median"]
            for name in names}
  print("step times (s): " + ", ".join(f"{k} {v:.3f}" for k, v in step_s.items()), flush=True)
  rows: dict[str, list[dict[str, float]]] = {}
  records = []
  for name in names:
    for seed in range(seeds):
      cfg = cfg_of(name, seed)
      start = time.perf_counter()
      run = train.run(cfg, root / f"{cfg.name}-{'no-con-' if 'w_contr' in name else ''}{seed}",
                      progress=False)
      train_s = time.perf_counter() - start
      evaluator = evaluation_lib.get(cfg.model)
      options = evaluator.Options(seeds=(seed,), allow_weak_judge=args.quick)
      record = evaluator.evaluate(run, options, judge, log=lambda *_: None).record
      row = numbers(record)
      rows.setdefault(name, []).append(row)
      records.append({"model": name, "seed": seed, "train_s": train_s, **row})
      print(f"{name} seed {seed}: action {100 * row['action_acc']:.1f}%, swaps "
            f"{100 * row['swap_joint']:.1f}% ({train_s:.0f} s)", flush=True)
      table = markdown(rows, step_s)
      if args.json:  # after every run: an interrupted study keeps what it measured
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"settings": {"dataset": args.dataset, "steps": steps,
                                                      "seeds": seeds,
                                                      "device": str(jax.devices()[0])},
                                         "records": records, "step_s": step_s,
                                         "table": table}, indent=1))
  print("\n" + markdown(rows, step_s))
  return 0


if __name__ == "__main__":
  sys.exit(main())
