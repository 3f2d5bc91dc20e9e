"""The training state: a pytree of arrays only, so it jits, shards and checkpoints as is."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training.

  Attributes:
    step: number of optimiser updates attempted so far (scalar int32).
    params: model parameters.
    model_state: non-trained model variables, e.g. {"batch_stats": ...}.
    opt_state: optax state.
    nonfinite_streak: consecutive steps whose loss or gradients were not finite.
  """
  step: jax.Array
  params: Any
  model_state: Any
  opt_state: Any
  nonfinite_streak: jax.Array
