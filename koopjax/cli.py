"""The `koopjax` command line: thin verbs over the library (train, judge, evaluate, prepare)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _add_distributed(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group("multi-host (jax.distributed)")
  group.add_argument("--coordinator", help="HOST:PORT of process 0 (omit for one process)")
  group.add_argument("--num-processes", type=int)
  group.add_argument("--process-id", type=int)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
  """Options of every verb that trains through the one trainer."""
  parser.add_argument("--steps", type=int, help="total optimiser steps")
  parser.add_argument("--seed", type=int)
  parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                      help="override a config field (repeatable)")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _train(args: argparse.Namespace) -> int:
  from koopjax import configs
  from koopjax import parallel

  parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
  from koopjax.train import loop

  cfg = configs.get_config(args.config)
  overrides = list(args.set or [])
  if args.steps is not None:
    overrides.append(f"steps={args.steps}")
  if args.seed is not None:
    overrides.append(f"seed={args.seed}")
  cfg = configs.apply_overrides(cfg, overrides)
  configs.validate(cfg)
  workdir = args.workdir or f"runs/{cfg.name}"
  import jax
  if jax.process_index() == 0:
    print(f"koopjax train: config {args.config!r} -> {workdir}\n{configs.dumps(cfg)}")
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform} "
          f"({jax.process_count()} process(es))")
  result = loop.run(cfg, workdir, progress=not args.no_progress)
  if jax.process_index() == 0 and result.history:
    last = result.history[-1]
    print(f"done: step {last['step']}, loss {last['loss']:.5g}; outputs in {result.workdir}")
  return 0


def _prepare(args: argparse.Namespace) -> int:
  from koopjax.data import sprites

  manual_dir = args.manual_dir or sprites.default_manual_dir()
  if manual_dir is None:
    print("koopjax prepare sprites: give --manual-dir DIR (the LPC sprite sheets).",
          file=sys.stderr)
    return 2
  sprites.prepare(manual_dir, args.data_dir)
  print(f"sprites prepared in {args.data_dir}; train with: koopjax train --config sprites "
        f"--set data_dir={args.data_dir}")
  return 0


def _judge(args: argparse.Namespace) -> int:
  from koopjax import configs
  from koopjax.models import judge
  from koopjax.train import loop

  cfg = configs.get_config(f"judge_{args.dataset}")
  overrides = list(args.set or [])
  for field, value in (("steps", args.steps), ("seed", args.seed), ("data_dir", args.data_dir)):
    if value is not None:
      overrides.append(f"{field}={value}")
  cfg = configs.apply_overrides(cfg, overrides)
  configs.validate(cfg)
  workdir = args.workdir or f"runs/{cfg.name}"
  print(f"koopjax judge: dataset {cfg.dataset!r} -> {workdir}\n{configs.dumps(cfg)}")
  result = loop.run(cfg, workdir, progress=not args.no_progress)
  report = judge.test_accuracy_report(result)
  print("test accuracy per head: " + ", ".join(
      f"{name} {100 * acc:.2f}%" for name, acc in report["accuracy"].items()))
  print(f"saved in {result.workdir} (report/accuracy.json)")
  if report["weak_heads"]:
    print(f"koopjax judge: below {100 * judge.REQUIRED_ACCURACY:.0f}% on "
          f"{', '.join(report['weak_heads'])}; `koopjax evaluate` refuses this judge (train "
          "longer with --steps, or pass --allow-weak-judge there).", file=sys.stderr)
    return 1
  return 0


def _evaluate(args: argparse.Namespace) -> int:
  import dataclasses
  import json
  import pathlib

  from koopjax import configs

  workdir = pathlib.Path(args.workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    print(f"koopjax evaluate: no run in {workdir} (no config.json); train one first with "
          "`koopjax train --workdir DIR`.", file=sys.stderr)
    return 2
  model = json.loads(config_path.read_text()).get("model")
  out = pathlib.Path(args.out) if args.out else workdir / "evaluation"
  if model == "skd":
    if not args.judge:
      print(f"koopjax evaluate: {workdir} is an SKD run; its evaluation needs a trained judge: "
            "--judge DIR (train one with `koopjax judge --dataset DATASET --workdir DIR`).",
            file=sys.stderr)
      return 2
    from koopjax.eval import protocol
    from koopjax.train import loop
    try:
      options = protocol.EvalOptions(
          seeds=tuple(args.seeds), batch_size=args.batch_size, analysis_size=args.analysis_size,
          attribution_pairs=args.attribution_pairs, allow_weak_judge=args.allow_weak_judge)
      run = loop.restore(workdir)
      if args.static_radius is not None:
        run = dataclasses.replace(run, cfg=dataclasses.replace(
            run.cfg, analysis_static_radius=args.static_radius))
        configs.validate(run.cfg)
      results = protocol.evaluate_skd(run, loop.restore(args.judge), out, options)
    except (protocol.EvaluationError, configs.ConfigError, FileNotFoundError) as error:
      print(f"koopjax evaluate: {error}", file=sys.stderr)
      return 2
    action = results["summary"]["fix_motion"]["action"]
    print(f"fix dynamics, sample static: action acc {100 * action['acc']['mean']:.2f}% ± "
          f"{100 * action['acc']['std']:.2f}%, IS {action['IS']['mean']:.3f}; outputs in {out}")
    return 0
  from koopjax import models
  from koopjax.train import loop
  module = models.get(model)
  if not hasattr(module, "evaluate"):
    print(f"koopjax evaluate: model {model!r} has no evaluation.", file=sys.stderr)
    return 2
  ignored = [f"--{dest.replace('_', '-')}" for dest, default in args.skd_only_defaults.items()
             if getattr(args, dest) != default]
  if ignored:
    print(f"koopjax evaluate: note: {', '.join(ignored)} "
          f"{'is' if len(ignored) == 1 else 'are'} only used for SKD runs, not {model!r}.")
  module.evaluate(loop.restore(workdir), out)
  print(f"outputs in {out}")
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="koopjax", description=__doc__)
  verbs = parser.add_subparsers(dest="verb", required=True)

  train = verbs.add_parser("train", help="train a model (resumes from --workdir)")
  train.add_argument("--config", default="synthetic", help="preset name (default: synthetic)")
  train.add_argument("--workdir", help="run directory (default: runs/<config>)")
  _add_run_options(train)
  _add_distributed(train)
  train.set_defaults(run=_train)

  prepare = verbs.add_parser("prepare", help="build a dataset that needs local source files")
  prepare.add_argument("dataset", choices=["sprites"])
  prepare.add_argument("--manual-dir", help="folder with the LPC sprite sheets (default: "
                       "../shared/data/lpc-sprites beside the repository, if present)")
  prepare.add_argument("--data-dir", required=True, help="TFDS data directory to write")
  prepare.set_defaults(run=_prepare)

  judge = verbs.add_parser("judge", help="train the judge classifier (a head per factor)")
  judge.add_argument("--dataset", choices=("synthetic", "sprites"), default="synthetic",
                     help="dataset (preset judge_<dataset>; default: synthetic)")
  judge.add_argument("--workdir", help="run directory (default: runs/judge_<dataset>)")
  judge.add_argument("--data-dir", help="TFDS data directory of the prepared dataset (sprites)")
  _add_run_options(judge)
  judge.set_defaults(run=_judge)

  evaluate = verbs.add_parser("evaluate", help="evaluate a trained run (SKD: with a judge)")
  evaluate.add_argument("--workdir", required=True, help="the trained run to evaluate")
  evaluate.add_argument("--judge", help="a trained judge run (required for SKD runs)")
  evaluate.add_argument("--out", help="output folder (default: WORKDIR/evaluation)")
  evaluate.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="sampling seeds (default: 0 1 2)")
  evaluate.add_argument("--batch-size", type=int, default=256,
                        help="decode/judge batch and sampling pool size (default: 256)")
  evaluate.add_argument("--analysis-size", type=int, default=0,
                        help="test sequences the Koopman operator is fitted on (default: 0 = "
                        "all)")
  evaluate.add_argument("--attribution-pairs", type=int, default=256,
                        help="train pairs for attributing modes to factors (default: 256)")
  evaluate.add_argument("--static-radius", type=float, default=None, metavar="R",
                        help="SKD: the static set of swaps and sampling is every mode with "
                        "|λ − 1| < R; 0 = the loss's κ components (default: the run's "
                        "analysis_static_radius)")
  evaluate.add_argument("--allow-weak-judge", action="store_true",
                        help="evaluate even if the judge is below 99%% on a head")
  skd_only = ("judge", "seeds", "batch_size", "analysis_size", "attribution_pairs",
              "static_radius", "allow_weak_judge")
  # Other models' evaluations take none of these; `_evaluate` names those given in vain.
  evaluate.set_defaults(run=_evaluate, skd_only_defaults={
      dest: evaluate.get_default(dest) for dest in skd_only})
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  from koopjax.configs import ConfigError

  args = build_parser().parse_args(argv)
  try:
    return args.run(args)
  except ConfigError as error:
    print(f"koopjax {args.verb}: invalid configuration: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
