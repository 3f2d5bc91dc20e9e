"""A recurrent sequence autoencoder for anomaly detection (KANN's ECG model).

    h_t = enc(h_{t−1}, x_t)                     # (b, T, H), encoder cell
    code = h_{L−1}                              # the last valid state
    g_t = dec(g_{t−1}, code)   for t < T        # (b, T, H_dec): the code fed at every step
    x̂_t = Dense(F)(g_t)

trained on normal sequences only, with the reference's loss: the L1 error summed over a
sequence, averaged over the batch. A sequence's summed L1 error is its anomaly score.

Implements `koopjax.models.Model`; `hidden_states` (the encoder's) and `decode` give the
pieces the Koopman analysis needs (`koopjax.eval.kann`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from koopjax.data import sequences
from koopjax.models.sequence import cell_of
from koopjax.models.sequence import last_step
from koopjax.models.sequence import load_data  # noqa: F401  (the Model protocol's)
from koopjax.models.sequence import spectral_metrics


class Autoencoder(nn.Module):
  """Values (b, T, F) -> reconstructions (b, T, F)."""
  cfg: Any

  def setup(self):
    spec = sequences.spec(self.cfg.dataset)
    self.length = spec.length
    self.encoder = nn.RNN(cell_of(self.cfg))
    self.decoder = nn.RNN(cell_of(self.cfg, self.cfg.decoder_hidden))
    self.out = nn.Dense(spec.input_size)

  def states(self, x):
    """Encoder hidden states (b, T, H)."""
    return self.encoder(x)

  def decode(self, code):
    """Reconstructions (b, T, F) of codes (b, H)."""
    repeated = jnp.broadcast_to(code[:, None, :], (code.shape[0], self.length, code.shape[-1]))
    return self.out(self.decoder(repeated))

  def __call__(self, x, length):
    return self.decode(last_step(self.states(x), length))


@jax.jit(static_argnames="cfg")
def init(rng: jax.Array, cfg) -> dict[str, Any]:
  """Variables {"params": ...}; jitted."""
  spec = sequences.spec(cfg.dataset)
  x = jnp.zeros((1, spec.length, spec.input_size), jnp.float32)
  return Autoencoder(cfg).init(rng, x, jnp.ones((1,), jnp.int32))


def reconstruct(variables, x: jax.Array, length: jax.Array, cfg) -> jax.Array:
  """Reconstructions (b, T, F) of sequences x."""
  return Autoencoder(cfg).apply({"params": variables["params"]}, x, length)


def hidden_states(variables, x: jax.Array, cfg) -> jax.Array:
  """The encoder's hidden states (b, T, H) on x."""
  return Autoencoder(cfg).apply({"params": variables["params"]}, x, method=Autoencoder.states)


def decode(variables, code: jax.Array, cfg) -> jax.Array:
  """The decoder's sequences (b, T, F) from codes (b, H) (what it makes of a last state)."""
  return Autoencoder(cfg).apply({"params": variables["params"]}, code,
                                method=Autoencoder.decode)


def sequence_errors(reconstruction: jax.Array, x: jax.Array, length: jax.Array) -> jax.Array:
  """Summed L1 error of each sequence over its valid steps, (b,): the anomaly score."""
  valid = jnp.arange(x.shape[1])[None, :] < length[:, None]
  return jnp.sum(jnp.abs(reconstruction - x) * valid[..., None], axis=(1, 2))


def cell_params(params) -> dict[str, Any]:
  """The encoder cell's parameters."""
  return params["encoder"]["cell"]


def loss_fn(params, model_state, batch, rng, cfg):
  """Batch mean of the summed L1 errors; metrics: ``l1`` and the encoder cell's spectra."""
  del rng
  x, length = batch["x"], batch["length"]
  l1 = jnp.mean(sequence_errors(reconstruct({"params": params}, x, length, cfg), x, length))
  return l1, ({"l1": l1, **spectral_metrics(cell_params(params), cfg)}, model_state)


def batch_keys(cfg) -> tuple[str, ...]:
  del cfg
  return ("x", "length")


def variables_of(state) -> dict[str, Any]:
  return {"params": state.params}
