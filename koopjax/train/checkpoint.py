"""Orbax checkpoints of the train state with the run's config saved beside them."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from koopjax import configs


class Checkpointer:
  """Saves every ``every`` steps (and on demand), keeps the last ``keep``; restores the latest.

  Saves are atomic (orbax commits a step directory only when complete), so a run killed at
  any moment loses at most the steps since the last save.
  """

  def __init__(self, directory: str | pathlib.Path, keep: int):
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))

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
    return restored.config

  def close(self) -> None:
    self.manager.close()
