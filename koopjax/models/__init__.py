"""Models trained by koopjax's one trainer, each described by the `Model` protocol.

A model module holds the network, its initialisation, its loss and encode/decode functions:
nothing about files, figures, evaluation or the command line. It is found by name through
`get` (the registry `MODELS`); a new model adds a module here, a config module
(`koopjax.configs`) and an evaluator (`koopjax.eval`).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from koopjax.models import judge
from koopjax.models import kae
from koopjax.models import rnn
from koopjax.models import rnn_ae
from koopjax.models import sequence
from koopjax.models import skd
from koopjax.models import spyl


@runtime_checkable
class Model(Protocol):
  """What the trainer needs of a model (a module of functions satisfies it)."""

  def batch_keys(self, cfg: Any) -> tuple[str, ...]:
    """Names of the dataset arrays a training batch holds."""

  def load_data(self, cfg: Any, split: str) -> dict[str, np.ndarray]:
    """A whole split of the config's dataset as in-memory arrays."""

  def init(self, rng: jax.Array, cfg: Any) -> dict[str, Any]:
    """Variables ``{"params": ..., <model state collections>...}``; traceable under `jit`."""

  def loss_fn(self, params: Any, model_state: Any, batch: dict[str, jax.Array],
              rng: jax.Array, cfg: Any) -> tuple[jax.Array, tuple[dict[str, jax.Array], Any]]:
    """``(loss, (metrics, new_model_state))`` of one global batch."""

  def variables_of(self, state: Any) -> dict[str, Any]:
    """The model's variables in a `koopjax.train.TrainState`."""


MODELS: dict[str, Model] = {"skd": skd, "judge": judge, "kae": kae, "rnn": rnn,
                            "rnn_ae": rnn_ae, "spyl": spyl}


def get(name: str) -> Model:
  """The model registered under ``name``."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}.")
  return MODELS[name]


__all__ = ("MODELS", "Model", "get", "judge", "kae", "rnn", "rnn_ae", "sequence", "skd", "spyl")
