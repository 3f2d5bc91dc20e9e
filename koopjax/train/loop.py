"""The training loop shared by every model: data, sharded state, progress, metrics, resume.

``run(cfg, workdir)`` trains (or resumes) a run in ``workdir``:
``workdir/config.json``, ``workdir/metrics.jsonl`` (one JSON line per step) and
``workdir/checkpoints/<step>/`` (orbax). Figures of a finished run are written by
`koopjax.report.write_run_report` (``koopjax train`` calls it when ``cfg.report``).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

import jax
import numpy as np
import tqdm

from koopjax import configs
from koopjax import parallel
from koopjax.data import loader as loader_lib
from koopjax.train.build import build
from koopjax.train.checkpoint import Checkpointer
from koopjax.train.checkpoint import describe

# Fields that may change when a run is resumed (schedule, logging, how the run is analysed);
# everything else must match the saved config.
RESUMABLE_FIELDS = frozenset({"steps", "log_every", "checkpoint_every", "keep_checkpoints",
                              "report", "prefetch", "num_devices", "max_nonfinite_steps",
                              "cpu_conv_library", "analysis_static_radius",
                              "eig_backend"})


class NonFiniteLossError(RuntimeError):
  """Training produced too many consecutive non-finite losses or gradients."""


@dataclasses.dataclass
class RunResult:
  """A trained (or restored) run.

  Attributes:
    state: the `TrainState`.
    cfg: its config.
    workdir: its run directory.
    history: the logged metrics, one dict per step.
    start: the step training started from in this call (``cfg.steps``: nothing was left to do).
  """
  state: Any
  cfg: configs.TrainConfig
  workdir: pathlib.Path
  history: list[dict[str, float]]
  start: int = 0


def _check_resumable(saved: dict[str, Any], cfg: configs.TrainConfig, workdir) -> None:
  saved, current = configs.upgrade_dict(saved), configs.to_dict(cfg)
  different = sorted(k for k in set(saved) | set(current)
                     if k not in RESUMABLE_FIELDS and saved.get(k) != current.get(k))
  if different:
    details = ", ".join(f"{k}: saved {saved.get(k)!r} vs now {current.get(k)!r}"
                        for k in different)
    raise configs.ConfigError(
        f"{workdir} holds a run with a different config ({details}); resume with the same "
        "config or choose a new --workdir.")


def _read_history(path: pathlib.Path, up_to_step: int) -> list[dict[str, float]]:
  """Metrics lines of steps <= up_to_step (later ones belong to work lost in a crash)."""
  if not path.exists():
    return []
  records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in records if r["step"] <= up_to_step]


def _write_history(path: pathlib.Path, history: list[dict[str, float]]) -> None:
  path.write_text("".join(json.dumps(r) + "\n" for r in history))


def prepare_workdir(workdir: str | pathlib.Path) -> pathlib.Path:
  """Creates the run directory if needed and checks that it can be written.

  Raises:
    OSError: naming the path: it exists and is not a directory, or it cannot be created or
      written (read-only file system, permissions, no space left).
  """
  workdir = pathlib.Path(workdir).absolute()
  if workdir.exists() and not workdir.is_dir():
    raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory; expected a run "
                             "directory (new, or one to resume)", str(workdir))
  workdir.mkdir(parents=True, exist_ok=True)
  try:
    # A file of this process's own: every process of a multi-host run probes the same folder.
    with tempfile.NamedTemporaryFile(dir=workdir, prefix=".koopjax-write-check-"):
      pass
  except OSError as error:
    raise OSError(error.errno, f"{error.strerror}; expected a writable run directory",
                  str(workdir)) from error
  return workdir


def run(cfg: configs.TrainConfig, workdir: str | pathlib.Path, *, progress: bool = True
        ) -> RunResult:
  """Trains ``cfg`` in ``workdir``, resuming from its newest intact checkpoint if there is one.

  A checkpoint that cannot be restored is reported in one line and set aside (its folder
  renamed ``<step>.corrupt-<time>``); training resumes from the newest one that restores. The
  saved config is compared with ``cfg`` before any array is read.
  """
  configs.validate(cfg)
  workdir = prepare_workdir(workdir)
  is_main = jax.process_index() == 0
  built = build(cfg)
  model, mesh, state, step_key = built.model, built.mesh, built.state, built.step_key
  rows = parallel.process_rows(cfg.batch_size, mesh)

  train_data = model.load_data(cfg, "train")
  data = loader_lib.ArrayLoader({k: train_data[k] for k in model.batch_keys(cfg)},
                                cfg.batch_size, cfg.seed)

  checkpointer = Checkpointer(workdir / "checkpoints", cfg.keep_checkpoints)

  def resumable(saved: dict[str, Any]):
    _check_resumable(saved, cfg, workdir)
    return state

  def set_aside(step: int, error: BaseException) -> None:
    """One line per damaged checkpoint; its folder is renamed, never deleted."""
    where = checkpointer.set_aside(step) if is_main else "(process 0 moves it)"
    if is_main:
      print(f"koopjax: checkpoint step {step} in {checkpointer.directory} cannot be restored "
            f"({describe(error)}); moved aside to {where}.", file=sys.stderr)

  start = 0
  restored = checkpointer.newest_intact(resumable, set_aside)
  if restored is not None:
    state, start = restored.state, int(restored.step)
    if is_main:
      print(f"Resuming {workdir} from step {start}.")
  metrics_path = workdir / "metrics.jsonl"
  history = _read_history(metrics_path, start)
  if is_main:
    (workdir / "config.json").write_text(configs.dumps(cfg) + "\n")
    _write_history(metrics_path, history)

  train_step = built.step

  def make_batch(step: int):
    return parallel.to_global(data.batch(step, rows), mesh)

  pending: list[tuple[int, dict[str, jax.Array]]] = []
  last_saved = start
  bar = tqdm.tqdm(total=cfg.steps, initial=start, disable=not (progress and is_main),
                  dynamic_ncols=True, desc=cfg.name, unit="step")
  window_start, window_steps = time.perf_counter(), 0

  def flush() -> None:
    """Fetches the queued per-step metrics (one host sync per log interval) and logs them."""
    nonlocal window_start, window_steps
    if not pending:
      return
    fetched = jax.device_get([m for _, m in pending])
    records = []
    for (step, _), values in zip(pending, fetched):
      records.append({"step": step, **{k: (bool(v) if k == "finite" else float(v))
                                       for k, v in values.items()}})
    pending.clear()
    history.extend(records)
    elapsed = time.perf_counter() - window_start
    rate = window_steps * cfg.batch_size / max(elapsed, 1e-9)
    if is_main:
      with metrics_path.open("a") as f:
        for r in records:
          f.write(json.dumps({**r, "seq_per_s": rate}) + "\n")
      bar.set_postfix(loss=f"{records[-1]['loss']:.4g}", seq_s=f"{rate:.1f}")
    window_start, window_steps = time.perf_counter(), 0

  try:
    for step, batch in loader_lib.prefetch(make_batch, start, cfg.steps, cfg.prefetch):
      state, metrics = train_step(state, batch, jax.random.fold_in(step_key, step))
      pending.append((step + 1, metrics))
      window_steps += 1
      bar.update(1)
      done = step + 1
      if done % cfg.log_every == 0 or done == cfg.steps:
        flush()
        streak = int(history[-1]["nonfinite_streak"]) if history else 0
        if streak >= cfg.max_nonfinite_steps:
          raise NonFiniteLossError(
              f"{streak} consecutive steps with a non-finite loss or gradient (limit "
              f"max_nonfinite_steps={cfg.max_nonfinite_steps}) at step {done}; parameters kept "
              f"their last finite values and the last checkpoint (step {last_saved}) is intact. "
              "Lower learning_rate, enable grad_clip_norm, or check the data.")
      if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != cfg.steps:
        checkpointer.save(done, state, cfg)
        last_saved = done
    flush()
    if start < cfg.steps:
      checkpointer.save(cfg.steps, state, cfg)
  finally:
    bar.close()
    checkpointer.close()

  return RunResult(state=state, cfg=cfg, workdir=workdir, history=history, start=start)


def restore(workdir: str | pathlib.Path, step: int | None = None) -> RunResult:
  """Loads a finished or interrupted run (state on one device set, config, history)."""
  workdir = pathlib.Path(workdir).absolute()
  if not (workdir / "checkpoints").is_dir():
    raise FileNotFoundError(errno.ENOENT, "no trained run here (no checkpoints folder); expected "
                            "a run directory written by `koopjax train`", str(workdir))
  # A reader writes nothing: no folder is created and a damaged checkpoint stays where it is.
  checkpointer = Checkpointer(workdir / "checkpoints", keep=1_000_000, create=False)

  def target_for(saved: dict[str, Any]):
    return build(configs.from_dict(saved), parallel.make_mesh(1)).state

  def skip(damaged_step: int, error: BaseException) -> None:
    print(f"koopjax: checkpoint step {damaged_step} in {checkpointer.directory} cannot be "
          f"restored ({describe(error)}); reading an older one.", file=sys.stderr)

  try:
    if step is not None:
      state, saved = checkpointer.restore(target_for(checkpointer.config(step)), step)
    else:
      restored = checkpointer.newest_intact(target_for, skip)
      if restored is None:
        raise FileNotFoundError(errno.ENOENT, "no checkpoint in this run yet; train first",
                                str(workdir / "checkpoints"))
      state, saved = restored.state, restored.config
    cfg = configs.from_dict(saved)
  finally:
    checkpointer.close()
  history = _read_history(workdir / "metrics.jsonl", int(np.asarray(state.step)))
  return RunResult(state=state, cfg=cfg, workdir=workdir, history=history)
