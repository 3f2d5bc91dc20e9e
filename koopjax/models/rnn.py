"""A recurrent sequence classifier (the Lipschitz RNN's tasks and KANN's sentiment task).

    e_t = Embed(x_t) (token datasets) or x_t (real values)       # (b, T, d)
    h_t = cell(h_{t−1}, e_t),  h_0 = 0                            # (b, T, H)
    logits = Dense(classes)(h_{L−1})                              # L = the sequence's length

trained with the mean softmax cross-entropy. The cell is ``cfg.cell`` (`koopjax.nn.recurrent`);
with a Lipschitz or antisymmetric cell the step's metrics also hold the largest real part of
the spectra of its matrices (``max_re_eig_A``, ``max_re_eig_W``), as the reference logs them.

Implements `koopjax.models.Model`; `hidden_states` and `readout` give the pieces the Koopman
analysis of a trained network needs (`koopjax.eval.kann`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from koopjax.data import sequences
from koopjax.models.sequence import cell_of
from koopjax.models.sequence import last_step
from koopjax.models.sequence import load_data  # noqa: F401  (the Model protocol's)
from koopjax.models.sequence import spectral_metrics


class Classifier(nn.Module):
  """Sequences (b, T) of tokens or (b, T, F) of values -> logits and hidden states."""
  cfg: Any

  def setup(self):
    spec = sequences.spec(self.cfg.dataset)
    self.embed = nn.Embed(spec.input_size, self.cfg.embed_dim) if spec.tokens else None
    self.rnn = nn.RNN(cell_of(self.cfg))
    self.head = nn.Dense(spec.classes)

  def states(self, x):
    """Hidden states (b, T, H)."""
    return self.rnn(self.embed(x) if self.embed is not None else x)

  def readout(self, h):
    """Logits (..., classes) of hidden states (..., H)."""
    return self.head(h)

  def __call__(self, x, length):
    return self.head(last_step(self.states(x), length))


def _dummy_input(cfg):
  spec = sequences.spec(cfg.dataset)
  if spec.tokens:
    return jnp.zeros((1, spec.length), jnp.int32)
  return jnp.zeros((1, spec.length, spec.input_size), jnp.float32)


@jax.jit(static_argnames="cfg")
def init(rng: jax.Array, cfg) -> dict[str, Any]:
  """Variables {"params": ...}; jitted."""
  return Classifier(cfg).init(rng, _dummy_input(cfg), jnp.ones((1,), jnp.int32))


def logits(variables, x: jax.Array, length: jax.Array, cfg) -> jax.Array:
  """Logits (b, classes) of sequences x and their lengths (b,)."""
  return Classifier(cfg).apply({"params": variables["params"]}, x, length)


def hidden_states(variables, x: jax.Array, cfg) -> jax.Array:
  """The hidden states (b, T, H) the network computes on x (padding steps included)."""
  return Classifier(cfg).apply({"params": variables["params"]}, x, method=Classifier.states)


def readout(variables, h: jax.Array, cfg) -> jax.Array:
  """The network's logits (..., classes) if its last hidden state were h (..., H)."""
  return Classifier(cfg).apply({"params": variables["params"]}, h, method=Classifier.readout)


def cell_params(params) -> dict[str, Any]:
  """The recurrent cell's parameters."""
  return params["rnn"]["cell"]


def loss_fn(params, model_state, batch, rng, cfg):
  """Mean softmax cross-entropy; metrics: ``ce``, ``accuracy`` and the cell's spectra."""
  del rng
  out = logits({"params": params}, batch["x"], batch["length"], cfg)
  ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, batch["label"]))
  accuracy = jnp.mean((jnp.argmax(out, axis=-1) == batch["label"]).astype(jnp.float32))
  return ce, ({"ce": ce, "accuracy": accuracy, **spectral_metrics(cell_params(params), cfg)},
              model_state)


def batch_keys(cfg) -> tuple[str, ...]:
  del cfg
  return ("x", "length", "label")


def variables_of(state) -> dict[str, Any]:
  return {"params": state.params}
