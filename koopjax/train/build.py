"""Config + mesh -> initial train state and jitted step: the one place a run is assembled.

The training loop, `restore`, the benchmarks and the tests all build runs here, so they train
with the same optimiser (schedule included), the same initial state and the same step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import optax
from jax.sharding import Mesh

from koopjax import models
from koopjax import parallel
from koopjax.configs import TrainConfig
from koopjax.train import step as step_lib
from koopjax.train.state import TrainState


class Built(NamedTuple):
  """Everything needed to train one config on one mesh.

  Attributes:
    model: the config's `koopjax.models.Model`.
    mesh: the devices; the batch is split over its "data" axis.
    optimizer: the config's optimiser (`step.optimizer_for`).
    state: the initial `TrainState`, replicated on the mesh.
    step: ``step(state, batch, rng) -> (state, metrics)``, jitted for the mesh (batch sharded,
      state donated).
    update: the same step as a pure, un-jitted function (to run inside `lax.scan` and the like).
    step_key: the root of the per-step keys: step i uses ``fold_in(step_key, i)``.
  """
  model: models.Model
  mesh: Mesh
  optimizer: optax.GradientTransformation
  state: TrainState
  step: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
  update: Callable[..., tuple[TrainState, dict[str, jax.Array]]]
  step_key: jax.Array


def build(cfg: TrainConfig, mesh: Mesh | None = None, *, jit_init: bool = True) -> Built:
  """Builds the initial state and the step of ``cfg`` on ``mesh``.

  Args:
    cfg: a validated config.
    mesh: devices to train on (default: `parallel.make_mesh(cfg.num_devices)`).
    jit_init: trace ``model.init`` under `jit` (what training does); False runs it eagerly,
      which gives the same values and saves a compilation for callers that build many small
      runs (the forecasting benchmark).

  Returns:
    `Built`. Keys: ``init_key, step_key = split(key(cfg.seed))``; the model is initialised
    from ``init_key``.
  """
  model = models.get(cfg.model)
  mesh = parallel.make_mesh(cfg.num_devices) if mesh is None else mesh
  optimizer = step_lib.optimizer_for(cfg)
  init_key, step_key = jax.random.split(jax.random.key(cfg.seed))
  if jit_init:
    state = step_lib.init_state(lambda rng: model.init(rng, cfg), init_key, optimizer, mesh)
  else:
    variables = model.init(init_key, cfg)
    state = step_lib.init_state(lambda _: variables, init_key, optimizer, mesh)

  def loss_fn(params, model_state, batch, rng):
    return model.loss_fn(params, model_state, batch, rng, cfg)

  update = functools.partial(step_lib.train_step, loss_fn=loss_fn, optimizer=optimizer)
  step = step_lib.compile_train_step(loss_fn, optimizer, mesh,
                                     cpu_conv_library=cfg.cpu_conv_library)
  return Built(model, mesh, optimizer, state, step, update, step_key)
