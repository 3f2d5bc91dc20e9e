"""One generic, pure, jit-compiled and data-parallel train step for every koopjax model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from koopjax import parallel
from koopjax.configs import CPU_CONV_LIBRARIES
from koopjax.train.state import TrainState

LossFn = Callable[..., tuple[jax.Array, tuple[dict[str, jax.Array], Any]]]


def _all_finite(tree: Any) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def train_step(state: TrainState, batch: Any, rng: jax.Array, *, loss_fn: LossFn,
               optimizer: optax.GradientTransformation) -> tuple[TrainState, dict[str, jax.Array]]:
  """Computes the loss and gradients on the (global) batch and applies one update.

  A step whose loss or gradients are not finite changes nothing but ``step`` and
  ``nonfinite_streak``: parameters, optimiser and model state keep their last finite values,
  so a non-finite value can never reach a checkpoint.

  Args:
    state: the current `TrainState`.
    batch: a pytree of arrays with the global batch on the leading axis.
    rng: PRNG key for this step (dropout etc.).
    loss_fn: ``loss_fn(params, model_state, batch, rng) -> (loss, (metrics, model_state))``.
    optimizer: the optax transformation.

  Returns:
    (new state, metrics): metrics hold "loss", the loss parts, "grad_norm", "finite" and
    "nonfinite_streak".
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (loss, (parts, model_state)), grads = grad_fn(state.params, state.model_state, batch, rng)
  updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  finite = jnp.isfinite(loss) & _all_finite(grads)

  def keep_if_finite(new, old):
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)

  new_state = TrainState(
      step=state.step + 1,
      params=keep_if_finite(params, state.params),
      model_state=keep_if_finite(model_state, state.model_state),
      opt_state=keep_if_finite(opt_state, state.opt_state),
      nonfinite_streak=jnp.where(finite, 0, state.nonfinite_streak + 1))
  metrics = {"loss": loss, **parts, "grad_norm": optax.tree.norm(grads), "finite": finite,
             "nonfinite_streak": new_state.nonfinite_streak}
  return new_state, metrics


def make_optimizer(learning_rate: float, grad_clip_norm: float = 0.0, *, lr_decay: str = "none",
                   steps: int = 0) -> optax.GradientTransformation:
  """Adam (the reference's optimiser), after global-norm clipping when ``grad_clip_norm > 0``.

  ``lr_decay="cosine"`` anneals the learning rate to 5% of its value over ``steps``.
  """
  schedule = (optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.05)
              if lr_decay == "cosine" else learning_rate)
  adam = optax.adam(schedule)
  return optax.chain(optax.clip_by_global_norm(grad_clip_norm), adam) if grad_clip_norm else adam


def optimizer_for(cfg) -> optax.GradientTransformation:
  """The optimiser a `TrainConfig` describes."""
  return make_optimizer(cfg.learning_rate, cfg.grad_clip_norm, lr_decay=cfg.lr_decay,
                        steps=cfg.steps)


def init_state(init_fn: Callable[[jax.Array], dict[str, Any]], rng: jax.Array,
               optimizer: optax.GradientTransformation, mesh: Mesh) -> TrainState:
  """Builds a replicated `TrainState` directly with its sharding (no host copy to alias)."""
  def build(rng):
    variables = dict(init_fn(rng))
    params = variables.pop("params")
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=optimizer.init(params),
                      nonfinite_streak=jnp.zeros((), jnp.int32))

  return jax.jit(build, out_shardings=parallel.replicated(mesh))(rng)


# XLA:CPU (jax 0.10) hands convolutions, dots and reductions to YNNPACK by default. For this
# project's stride-2 4x4 layers YNNPACK's weight gradients were 4-8x slower than XLA's own
# (Eigen) convolutions on an Intel Xeon (benchmarks/conv_layers.py), the whole SKD step 1.9x.
# "eigen" keeps the rest of XLA's default list (dots and reductions stay with YNNPACK: XLA's
# own tree reductions are slow) and takes convolutions out of it.
_YNN_FUSIONS = "xla_cpu_experimental_ynn_fusion_type"
_YNN_WITHOUT_CONVOLUTIONS = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"


def cpu_compiler_options(mesh: Mesh, conv_library: str) -> dict[str, str] | None:
  """XLA compile options that pick the library behind convolutions on a CPU mesh.

  Args:
    mesh: the devices the step runs on; options are only returned for CPU devices.
    conv_library: ``"eigen"`` (XLA's own convolutions; dots and reductions stay with
      YNNPACK) or ``"ynnpack"`` (XLA's default: no options, so ``XLA_FLAGS`` decide).

  Returns:
    ``compiler_options`` for `jax.jit`, or None (XLA's defaults).
  """
  if conv_library not in CPU_CONV_LIBRARIES:
    raise ValueError(f"conv_library must be one of {', '.join(CPU_CONV_LIBRARIES)}; got "
                     f"{conv_library!r}.")
  if conv_library == "ynnpack" or mesh.devices.flat[0].platform != "cpu":
    return None
  return {_YNN_FUSIONS: _YNN_WITHOUT_CONVOLUTIONS}


def compile_train_step(loss_fn: LossFn, optimizer: optax.GradientTransformation, mesh: Mesh,
                       *, cpu_conv_library: str = "eigen"):
  """`train_step` jitted for the mesh: batch sharded on "data", state replicated and donated.

  ``cpu_conv_library`` chooses the convolution library on CPU (`cpu_compiler_options`).
  """
  def step(state, batch, rng):
    return train_step(state, batch, rng, loss_fn=loss_fn, optimizer=optimizer)

  replicated = parallel.replicated(mesh)
  return jax.jit(step, in_shardings=(replicated, parallel.batch_sharding(mesh), replicated),
                 out_shardings=(replicated, replicated), donate_argnums=0,
                 compiler_options=cpu_compiler_options(mesh, cpu_conv_library))
