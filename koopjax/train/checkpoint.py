"""Orbax checkpoints of the train state with the run's config saved beside them.

Saves are atomic (orbax commits a step directory only when complete), so a run killed at any
moment loses at most the steps since the last save. A checkpoint damaged afterwards (a copy cut
short, a full disk, a stray write) is found when it is read: `newest_intact` falls back to the
newest step that restores, and training sets the damaged one aside (renamed, never deleted).
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from koopjax import configs


class CheckpointError(RuntimeError):
  """No checkpoint of a run can be restored (the message names the directory and the steps)."""


class Restored(NamedTuple):
  """The newest intact checkpoint: its state, its config dict and its step."""
  state: Any
  config: dict[str, Any]
  step: int


def describe(error: BaseException, limit: int = 160) -> str:
  """``Type: first line of the message`` of an exception, at most ``limit`` characters."""
  lines = str(error).strip().splitlines()
  text = f"{type(error).__name__}: {lines[0] if lines else ''}"
  return text if len(text) <= limit else text[:limit - 1] + "…"


class Checkpointer:
  """Saves on demand and keeps the last ``keep`` steps; restores the newest intact one.

  Args:
    directory: the run's ``checkpoints`` folder.
    keep: how many steps to keep.
    create: create the folder if it does not exist (False for readers: they write nothing).
  """

  def __init__(self, directory: str | pathlib.Path, keep: int, *, create: bool = True):
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=create,
                                             enable_async_checkpointing=False))

  def steps(self) -> list[int]:
    """Saved steps, newest first."""
    return sorted(self.manager.all_steps(), reverse=True)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, cfg: configs.TrainConfig) -> None:
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(configs.to_dict(cfg))),
        force=True)
    self.manager.wait_until_finished()

  def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Restores (state, config dict) at ``step`` (default latest) into ``target``'s structure
    and shardings (an abstract target keeps optax NamedTuples as NamedTuples)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}.")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), config=ocp.args.JsonRestore()))
    return restored.state, restored.config

  def config(self, step: int) -> dict[str, Any]:
    """The config dict saved with ``step``."""
    restored = self.manager.restore(step, args=ocp.args.Composite(
        config=ocp.args.JsonRestore()))
    if not isinstance(restored.config, dict) or "__class__" not in restored.config:
      raise ValueError(f"the config saved with step {step} is not a koopjax config.")
    return restored.config

  def newest_intact(self, target_for: Callable[[dict[str, Any]], Any],
                    on_damaged: Callable[[int, BaseException], None]) -> Restored | None:
    """The newest step whose config and arrays read back.

    For each step, newest first: its saved config is read and given to ``target_for``, which
    checks it and returns the structure to restore into — before any array is read, so a run
    resumed with a changed shape fails on koopjax's message, not on orbax's. A step whose
    config or arrays cannot be read is reported to ``on_damaged`` and skipped; errors raised by
    ``target_for`` propagate.

    Returns:
      `Restored`, or None when there is no checkpoint.

    Raises:
      CheckpointError: there are checkpoints and none can be restored.
    """
    damaged = []
    for step in self.steps():
      try:
        saved = self.config(step)
      except Exception as error:  # noqa: BLE001  (any failure to read is damage)
        damaged.append(step)
        on_damaged(step, error)
        continue
      target = target_for(saved)
      try:
        state, _ = self.restore(target, step)
      except Exception as error:  # noqa: BLE001
        damaged.append(step)
        on_damaged(step, error)
        continue
      return Restored(state, saved, step)
    if damaged:
      raise CheckpointError(
          f"no checkpoint in {self.directory} can be restored (step(s) "
          f"{', '.join(map(str, damaged))} damaged); start again with another --workdir, or "
          "move the checkpoints folder away.")
    return None

  def set_aside(self, step: int) -> pathlib.Path:
    """Renames step ``step``'s folder to ``<step>.corrupt-<time>`` (orbax then ignores it)."""
    source = self.directory / str(step)
    target = self.directory / f"{step}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}"
    source.rename(target)
    self.manager.reload()
    return target

  def close(self) -> None:
    self.manager.close()
