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


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="koopjax", description=__doc__)
  verbs = parser.add_subparsers(dest="verb", required=True)

  train = verbs.add_parser("train", help="train a model (resumes from --workdir)")
  train.add_argument("--config", default="synthetic", help="preset name (default: synthetic)")
  train.add_argument("--workdir", help="run directory (default: runs/<config>)")
  train.add_argument("--steps", type=int, help="total optimiser steps")
  train.add_argument("--seed", type=int)
  train.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="override a config field (repeatable)")
  train.add_argument("--no-progress", action="store_true", help="no progress bar")
  _add_distributed(train)
  train.set_defaults(run=_train)

  prepare = verbs.add_parser("prepare", help="build a dataset that needs local source files")
  prepare.add_argument("dataset", choices=["sprites"])
  prepare.add_argument("--manual-dir", help="folder with the LPC sprite sheets (default: "
                       "../shared/data/lpc-sprites beside the repository, if present)")
  prepare.add_argument("--data-dir", required=True, help="TFDS data directory to write")
  prepare.set_defaults(run=_prepare)
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
