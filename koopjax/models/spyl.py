"""SPYL: Sample and Predict Your Latent (Naiman, Berman & Azencot, ICML 2023), docs/spyl.md.

A sequential VAE on videos (the C-DSVAE backbone) with one static code s and per-frame
dynamic codes d_t::

    g_t        = tanh(Dense(g_dim)([DownConv -> GroupNorm -> LeakyReLU] x stages of x_t))
    f_t, b_t   = forward and backward LSTM (rnn_size) over g
    q(s | x)   = N(Dense([f_{T-1}, b_0]), ·)                     # (b, s_dim)
    q(d_t | x) = N(Dense(RNN([f, b])_t), ·)                      # (b, T, d_dim)
    p(s) = N(0, I);  p(d_t | d_<t) = N(Dense(LSTMCell(d_{t-1})), ·), d_{-1} = 0
    x̂_t        = sigmoid(UpConv stages of Dense([d_t, s]))

Loss, per batch of B sequences (sums over pixels, frames and code dimensions):

    w_rec Σ(x̂ − x)²/B + w_s KL(q(s)‖p(s))/B + w_d Σ_t KL(q(d_t)‖p(d_t | d_<t))/B
      + w_mi MI_MWS(s; d) + [step >= warmup_steps] w_contrastive (L_s + L_d)

with the contrastive terms InfoNCE (cosine, temperature τ) between views sampled from the
model itself: the static positive re-encodes Dec(d ~ prior, μ_s(x)) and takes its μ_s; the
dynamic positive re-encodes Dec(μ_d(x), s ~ N(0, I)) and takes the time mean of its μ_d; the
negatives (no gradient) are, for each anchor, the ``negatives`` farthest by KL of a bank of
``bank_factor`` x B sequences decoded from prior samples and re-encoded.

GroupNorm replaces the reference's BatchNorm (no batch statistics: a re-encoded batch of
generated videos is normalised like real ones). The model state holds a step counter that the
warm-up switch reads (the trainer passes no step to a loss).

Implements `koopjax.models.Model`; `encode`, `decode` and `sample_dynamics` serve the
evaluation (`koopjax.eval.spyl`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from koopjax._src.contrastive import farthest_by_kl
from koopjax._src.contrastive import gaussian_kl
from koopjax._src.contrastive import info_nce
from koopjax._src.contrastive import mws_mutual_information
from koopjax.data import videos
from koopjax.models.video import load_data  # noqa: F401  (the Model protocol's)
from koopjax.models.video import stage_widths
from koopjax.models.video import to_frames
from koopjax.nn import DownConv
from koopjax.nn import UpConv


class Posterior(NamedTuple):
  """q(s | x) and q(d_t | x): means and log-variances."""
  s_mean: jax.Array      # (b, s_dim)
  s_logvar: jax.Array
  d_mean: jax.Array      # (b, T, d_dim)
  d_logvar: jax.Array


def _norm(features: int) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=math.gcd(8, features))


class SPYL(nn.Module):
  cfg: Any

  def setup(self):
    cfg = self.cfg
    widths = stage_widths(cfg)
    self.down = [DownConv(w, impl=cfg.conv_impl) for w in widths]
    self.down_norms = [_norm(w) for w in widths]
    self.frame_out = nn.Dense(cfg.g_dim)
    self.forward_rnn = nn.RNN(nn.OptimizedLSTMCell(cfg.rnn_size))
    self.backward_rnn = nn.RNN(nn.OptimizedLSTMCell(cfg.rnn_size), reverse=True, keep_order=True)
    self.s_mean_head, self.s_logvar_head = nn.Dense(cfg.s_dim), nn.Dense(cfg.s_dim)
    self.dynamics_rnn = nn.RNN(nn.SimpleCell(cfg.rnn_size))
    self.d_mean_head, self.d_logvar_head = nn.Dense(cfg.d_dim), nn.Dense(cfg.d_dim)
    self.prior_cell = nn.OptimizedLSTMCell(cfg.rnn_size)
    self.prior_mean_head, self.prior_logvar_head = nn.Dense(cfg.d_dim), nn.Dense(cfg.d_dim)
    up = widths[::-1]
    self.frame_in = nn.Dense(16 * up[0])
    self.frame_in_norm = _norm(up[0])
    self.up = [UpConv(w, impl=cfg.conv_impl) for w in up[1:]] + [
        UpConv(cfg.channels, impl=cfg.conv_impl)]
    self.up_norms = [_norm(w) for w in up[1:]]

  def encode(self, x) -> Posterior:
    """Frames (b, T, H, W, C) in [0, 1) -> the posteriors."""
    b, t = x.shape[:2]
    h = x.reshape((b * t,) + x.shape[2:])
    for conv, norm in zip(self.down, self.down_norms):
      h = nn.leaky_relu(norm(conv(h)), 0.2)
    g = jnp.tanh(self.frame_out(h.reshape((b * t, -1)))).reshape((b, t, -1))
    f, r = self.forward_rnn(g), self.backward_rnn(g)
    summary = jnp.concatenate([f[:, -1], r[:, 0]], axis=-1)
    dynamics = self.dynamics_rnn(jnp.concatenate([f, r], axis=-1))
    return Posterior(self.s_mean_head(summary), self.s_logvar_head(summary),
                     self.d_mean_head(dynamics), self.d_logvar_head(dynamics))

  def decode(self, d, s):
    """Codes d (b, T, d_dim) and s (b, s_dim) -> frames (b, T, H, W, C) in (0, 1)."""
    b, t = d.shape[:2]
    z = jnp.concatenate([d, jnp.broadcast_to(s[:, None, :], (b, t, s.shape[-1]))], axis=-1)
    h = self.frame_in(z.reshape((b * t, -1)))
    h = nn.leaky_relu(self.frame_in_norm(h.reshape((b * t, 4, 4, -1))), 0.2)
    for conv, norm in zip(self.up[:-1], self.up_norms):
      h = nn.leaky_relu(norm(conv(h)), 0.2)
    x = nn.sigmoid(self.up[-1](h))
    return x.reshape((b, t) + x.shape[1:])

  def _prior_step(self, carry, d_previous):
    carry, h = self.prior_cell(carry, d_previous)
    return carry, self.prior_mean_head(h), self.prior_logvar_head(h)

  def prior(self, d):
    """p(d_t | d_<t) teacher-forced on d (b, T, d_dim): (means, log-variances), each (b, T, d)."""
    carry = self.prior_cell.initialize_carry(jax.random.key(0), d[:, 0].shape)
    previous, means, logvars = jnp.zeros_like(d[:, 0]), [], []
    for t in range(d.shape[1]):
      carry, mean, logvar = self._prior_step(carry, previous)
      means.append(mean)
      logvars.append(logvar)
      previous = d[:, t]
    return jnp.stack(means, axis=1), jnp.stack(logvars, axis=1)

  def sample_prior(self, key, n: int, frames: int):
    """d (n, T, d_dim) drawn from the prior chain, each step fed the previous sample."""
    carry = self.prior_cell.initialize_carry(jax.random.key(0), (n, self.cfg.d_dim))
    previous, samples = jnp.zeros((n, self.cfg.d_dim)), []
    for t in range(frames):
      carry, mean, logvar = self._prior_step(carry, previous)
      previous = mean + jnp.exp(0.5 * logvar) * jax.random.normal(
          jax.random.fold_in(key, t), mean.shape)
      samples.append(previous)
    return jnp.stack(samples, axis=1)

  def __call__(self, x):  # used by `init` only: touches every layer
    q = self.encode(x)
    self.prior(q.d_mean)
    return self.decode(q.d_mean, q.s_mean)


@jax.jit(static_argnames="cfg")
def init(rng: jax.Array, cfg) -> dict[str, Any]:
  """Variables {"params", "counter": {"step"}}; jitted."""
  x = jnp.zeros((1, cfg.frames, cfg.image_size, cfg.image_size, cfg.channels), jnp.float32)
  return {**SPYL(cfg).init(rng, x), "counter": {"step": jnp.zeros((), jnp.int32)}}


def _apply(params, cfg, method, *args):
  return SPYL(cfg).apply({"params": params}, *args, method=method)


def encode(variables, frames: jax.Array, cfg) -> Posterior:
  """Posteriors of frames (b, T, H, W, C) in [0, 1)."""
  return _apply(variables["params"], cfg, SPYL.encode, frames)


def decode(variables, d: jax.Array, s: jax.Array, cfg) -> jax.Array:
  """Frames (b, T, H, W, C) in (0, 1) of codes d (b, T, d_dim) and s (b, s_dim)."""
  return _apply(variables["params"], cfg, SPYL.decode, d, s)


def sample_dynamics(variables, key: jax.Array, n: int, cfg) -> jax.Array:
  """n dynamic codes (n, T, d_dim) from the learned prior."""
  return SPYL(cfg).apply({"params": variables["params"]}, key, n, cfg.frames,
                         method=SPYL.sample_prior)


def _reparameterise(key, mean, logvar):
  return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)


def contrastive_terms(params, q: Posterior, key: jax.Array, cfg) -> dict[str, jax.Array]:
  """``con_s`` and ``con_d``: InfoNCE of the static and dynamic views (module docstring)."""
  b = q.s_mean.shape[0]
  keys = jax.random.split(key, 5)
  # Static view: new dynamics from the prior, this sequence's static mean.
  d_prior = _apply(params, cfg, SPYL.sample_prior, keys[0], b, cfg.frames)
  s_positive = _apply(params, cfg, SPYL.encode,
                      _apply(params, cfg, SPYL.decode, d_prior, q.s_mean)).s_mean
  # Dynamic view: this sequence's dynamics, a static code from N(0, I).
  s_random = jax.random.normal(keys[1], q.s_mean.shape)
  d_positive = _apply(params, cfg, SPYL.encode,
                      _apply(params, cfg, SPYL.decode, q.d_mean, s_random)).d_mean.mean(1)
  # Negatives: the bank, decoded from prior samples and re-encoded, without gradient.
  n = cfg.bank_factor * b
  bank_d = _apply(params, cfg, SPYL.sample_prior, keys[2], n, cfg.frames)
  bank_s = jax.random.normal(keys[3], (n, cfg.s_dim))
  bank = jax.lax.stop_gradient(
      _apply(params, cfg, SPYL.encode, _apply(params, cfg, SPYL.decode, bank_d, bank_s)))
  far_s = farthest_by_kl(jax.lax.stop_gradient(q.s_mean), jax.lax.stop_gradient(q.s_logvar),
                         bank.s_mean, bank.s_logvar, cfg.negatives)
  d_anchor, d_anchor_logvar = q.d_mean.mean(1), q.d_logvar.mean(1)
  bank_d_mean, bank_d_logvar = bank.d_mean.mean(1), bank.d_logvar.mean(1)
  far_d = farthest_by_kl(jax.lax.stop_gradient(d_anchor),
                         jax.lax.stop_gradient(d_anchor_logvar), bank_d_mean, bank_d_logvar,
                         cfg.negatives)
  return {"con_s": info_nce(q.s_mean, s_positive, bank.s_mean[far_s], cfg.temperature),
          "con_d": info_nce(d_anchor, d_positive, bank_d_mean[far_d], cfg.temperature)}


def loss_fn(params, model_state, batch, rng, cfg):
  """The SPYL loss (module docstring); metrics: every term, and whether the contrastive terms
  are on."""
  x = to_frames(batch["video"])
  b = x.shape[0]
  keys = jax.random.split(rng, 3)
  q = _apply(params, cfg, SPYL.encode, x)
  s = _reparameterise(keys[0], q.s_mean, q.s_logvar)
  d = _reparameterise(keys[1], q.d_mean, q.d_logvar)
  prior_mean, prior_logvar = _apply(params, cfg, SPYL.prior, d)
  x_rec = _apply(params, cfg, SPYL.decode, d, s)
  parts = {
      "rec": jnp.sum(jnp.square(x_rec - x)) / b,
      "kl_s": jnp.sum(gaussian_kl(q.s_mean, q.s_logvar)) / b,
      "kl_d": jnp.sum(gaussian_kl(q.d_mean, q.d_logvar, prior_mean, prior_logvar)) / b,
      "mi": mws_mutual_information(s, q.s_mean, q.s_logvar, d, q.d_mean, q.d_logvar,
                                   videos.DATASETS[cfg.dataset].train_size),
  }
  loss = (cfg.w_rec * parts["rec"] + cfg.w_s * parts["kl_s"] + cfg.w_d * parts["kl_d"]
          + cfg.w_mi * parts["mi"])
  step = model_state["counter"]["step"]
  if cfg.w_contrastive > 0:
    on = step >= cfg.warmup_steps
    # Computed during the warm-up too and multiplied by the switch: a `lax.cond` on the
    # (traced) step made the whole step 10x slower on XLA:CPU (docs/design.md).
    parts.update(contrastive_terms(params, q, keys[2], cfg))
    loss = loss + cfg.w_contrastive * on * (parts["con_s"] + parts["con_d"])
    parts["contrastive_on"] = on.astype(jnp.float32)
  return loss, (parts, {"counter": {"step": step + 1}})


def batch_keys(cfg) -> tuple[str, ...]:
  del cfg
  return ("video",)


def variables_of(state) -> dict[str, Any]:
  return {"params": state.params, **state.model_state}
