"""Structured Koopman autoencoder (SKD; Berman, Naiman, Azencot, ICLR 2023).

Architecture of docs/skd.md ("Architecture"), generalised to any power-of-two image size >= 8:
the encoder halves the frame with stride-2 4x4 convolutions down to 4x4, a final 4x4 "valid"
convolution (here the equivalent dense layer) maps it to k features, and an optional LSTM
k -> k runs over frames; the decoder mirrors it. The per-frame vector entering the Koopman
fit always has the Koopman dimension k (the reference's hidden_dim=80 / k=40 pitfall fixed).

Layers followed by BatchNorm have no bias: BatchNorm subtracts the batch mean, so such a bias
has an exact gradient of 0; in float32 it receives rounding noise that Adam normalises into
full-size random steps (which also made N-device and 1-device runs drift apart).

Implements `koopjax.models.Model`; the analysis of a trained model (eigen-structure, swaps,
sampling) is in `koopjax.eval.skd`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

import koopjax as kj
from koopjax.configs import SKDConfig
from koopjax.data.augment import distort_colours
from koopjax.models.video import load_data  # noqa: F401  (the Model protocol's)
from koopjax.models.video import stage_widths
from koopjax.models.video import to_frames
from koopjax.nn import BatchNormLeakyReLU
from koopjax.nn import DownConv
from koopjax.nn import UpConv


def _dtype(cfg: SKDConfig):
  """Compute dtype of convolutions, dense layers and LSTMs."""
  return {"bfloat16": jnp.bfloat16, "float64": jnp.float64}.get(cfg.precision, jnp.float32)


def _exact_dtype(cfg: SKDConfig):
  """Dtype of parameters, latents, the Koopman fit and the losses (never bfloat16)."""
  return jnp.float64 if cfg.precision == "float64" else jnp.float32


def _norm_args(train: bool, cfg: SKDConfig, index: int) -> dict[str, Any]:
  """Arguments of every SKD BatchNorm: PyTorch's defaults (running stats momentum 0.1, eps
  1e-5), and explicit names that keep nn.BatchNorm's tree ("BatchNorm_<i>" in order of use)."""
  return dict(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=_dtype(cfg),
              param_dtype=_exact_dtype(cfg), name=f"BatchNorm_{index}")


def _batch_norm(train: bool, cfg: SKDConfig, index: int) -> nn.BatchNorm:
  return nn.BatchNorm(**_norm_args(train, cfg, index))


def _batch_norm_leaky_relu(train: bool, cfg: SKDConfig, index: int) -> BatchNormLeakyReLU:
  """BatchNorm then LeakyReLU(0.2), fused (`koopjax.nn.BatchNormLeakyReLU`)."""
  return BatchNormLeakyReLU(negative_slope=0.2, **_norm_args(train, cfg, index))


class FrameLSTM(nn.Module):
  """A one-layer LSTM over the frame axis (a `lax.scan`): (b, T, d_in) -> (b, T, features)."""
  features: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    cell = nn.OptimizedLSTMCell(self.features, dtype=self.dtype, param_dtype=self.param_dtype)
    return nn.RNN(cell)(x)


class Encoder(nn.Module):
  """Frames (b, T, H, W, C) in [0, 1) -> latents (b, T, k) (float32)."""
  cfg: SKDConfig

  @nn.compact
  def __call__(self, x, train: bool):
    cfg, dtype, exact = self.cfg, _dtype(self.cfg), _exact_dtype(self.cfg)
    layer = dict(dtype=dtype, param_dtype=exact)
    b, t = x.shape[:2]
    h = x.reshape((b * t,) + x.shape[2:]).astype(dtype)
    widths = stage_widths(cfg)
    for i, features in enumerate(widths):
      h = DownConv(features, impl=cfg.conv_impl, use_bias=False, **layer)(h)
      h = _batch_norm_leaky_relu(train, cfg, i)(h)
    # 4x4 "valid" convolution to a 1x1 map = a dense layer on the flattened 4x4 map.
    h = nn.Dense(cfg.k, use_bias=False, **layer)(h.reshape((b * t, -1)))
    z = jnp.tanh(_batch_norm(train, cfg, len(widths))(h)).reshape((b, t, cfg.k))
    if cfg.encoder_lstm:
      z = FrameLSTM(cfg.k, **layer)(z)
    return z.astype(exact)


class Decoder(nn.Module):
  """Latents (b, T, k) -> frames (b, T, H, W, C) in (0, 1)."""
  cfg: SKDConfig

  @nn.compact
  def __call__(self, z, train: bool):
    cfg, dtype, exact = self.cfg, _dtype(self.cfg), _exact_dtype(self.cfg)
    layer = dict(dtype=dtype, param_dtype=exact)
    b, t = z.shape[:2]
    h = z.astype(dtype)
    if cfg.decoder_lstm:
      h = FrameLSTM(cfg.decoder_hidden or cfg.k, **layer)(h)
    widths = stage_widths(cfg)[::-1]
    # ConvTranspose (4, 1, 0) from a 1x1 map = a dense layer onto the 4x4 map.
    h = nn.Dense(16 * widths[0], use_bias=False, **layer)(h.reshape((b * t, -1)))
    h = h.reshape((b * t, 4, 4, widths[0]))
    h = _batch_norm_leaky_relu(train, cfg, 0)(h)
    for i, features in enumerate(widths[1:], start=1):
      h = UpConv(features, impl=cfg.conv_impl, use_bias=False, **layer)(h)
      h = _batch_norm_leaky_relu(train, cfg, i)(h)
    h = UpConv(cfg.channels, impl=cfg.conv_impl, **layer)(h)
    x = nn.sigmoid(h.astype(exact))
    return x.reshape((b, t) + x.shape[1:])


class SKD(nn.Module):
  cfg: SKDConfig

  def setup(self):
    self.encoder = Encoder(self.cfg)
    self.decoder = Decoder(self.cfg)

  def __call__(self, x, train: bool = False):  # used by `init` only: touches every layer
    return self.decoder(self.encoder(x, train), train)

  def encode(self, x, train: bool = False):
    return self.encoder(x, train)

  def decode(self, z, train: bool = False):
    return self.decoder(z, train)


def init(rng: jax.Array, cfg: SKDConfig) -> dict[str, Any]:
  """Variables {"params", "batch_stats"} for the config's shapes."""
  x = jnp.zeros((1, cfg.frames, cfg.image_size, cfg.image_size, cfg.channels), _exact_dtype(cfg))
  return SKD(cfg).init(rng, x, train=False)


def _mse(a, b):
  return jnp.mean(jnp.square(a - b))


def forward(params, model_state, batch, rng, cfg: SKDConfig, train: bool = True):
  """Everything of one SKD pass (docs/skd.md); returns (loss, parts, outputs, new_state)."""
  model = SKD(cfg)
  variables = {"params": params, **model_state}
  mutable = ["batch_stats"] if train else False

  def apply(method, value, state):
    out = model.apply({**variables, **state}, value, train, method=method, mutable=mutable)
    return out if train else (out, state)

  x = to_frames(batch["video"], _exact_dtype(cfg))
  z, state = apply(SKD.encode, x, model_state)
  c = kj.fit_koopman(z, ridge=cfg.ridge)
  z_pred = kj.predict_one_step(z, c)
  if train and cfg.dropout > 0:
    keep = jax.random.bernoulli(rng, 1.0 - cfg.dropout, z.shape)
    z_drop = jnp.where(keep, z / (1.0 - cfg.dropout), jnp.zeros_like(z))
  else:
    z_drop = z
  x_rec, state = apply(SKD.decode, z_drop, state)
  x_pred, state = apply(SKD.decode, z_pred, state)

  e_rec = _mse(x, x_rec)
  e_pred_x = _mse(x_rec, x_pred)   # reference: the two decodings, not X
  e_pred_z = _mse(z_drop, z_pred)  # reference: target is the dropped-out latent
  # The spectral gradient explodes as C nears a defective matrix; bound it on this path only.
  c_spectral = kj.clip_gradient_norm(c, cfg.eig_grad_clip) if cfg.eig_grad_clip else c
  e_eig, spectral = kj.skd_spectral_loss(
      c_spectral, n_static=cfg.n_static, static_mode=cfg.static_mode, dynamic_mode=cfg.dynamic_mode,
      dynamic_thresh=cfg.dynamic_thresh, ball_thresh=cfg.ball_thresh,
      eigs_thresh=cfg.eigs_thresh, eig_backend=cfg.eig_backend)
  loss = cfg.w_rec * e_rec + cfg.w_pred * (e_pred_x + e_pred_z) + cfg.w_eigs * e_eig
  parts = {"rec": e_rec, "pred_x": e_pred_x, "pred_z": e_pred_z, "eig": e_eig,
           "eig_static": spectral["static"], "eig_dynamic": spectral["dynamic"]}
  if train and cfg.w_motion_invariance > 0:
    # The distorted batch is encoded with its own batch statistics; the running averages
    # keep the real batch's (its state is dropped). The dropout mask keeps its key.
    colours_rng = jax.random.fold_in(rng, 1)
    x_distorted = distort_colours(colours_rng, x, cfg.motion_invariance_distortion)
    z_distorted, _ = apply(SKD.encode, x_distorted, model_state)
    parts["motion_invariance"] = kj.motion_invariance_loss(*_motion_parts(z, z_distorted, c, cfg))
    loss = loss + cfg.w_motion_invariance * parts["motion_invariance"]
  outputs = {"z": z, "C": c, "x_rec": x_rec, "x_pred": x_pred}
  return loss, parts, outputs, dict(state)


def _motion_parts(z, z_distorted, c, cfg: SKDConfig):
  """The parts of two batches' latents that `motion_invariance_loss` compares."""
  if cfg.motion_invariance_part == "deviations":
    return kj.temporal_deviations(z), kj.temporal_deviations(z_distorted)
  # Gradients through eigenvectors blow up near repeated eigenvalues (the static ones are
  # pulled together at 1), so the split into modes is held fixed within the step.
  decomposition = kj.eig(jax.lax.stop_gradient(c), backend=cfg.eig_backend)
  static = analysis_static_set(decomposition.eigenvalues, cfg)
  return tuple(kj.dynamic_part(latents, decomposition.V, decomposition.U, static)
               for latents in (z, z_distorted))


def loss_fn(params, model_state, batch, rng, cfg: SKDConfig):
  """Training loss (docs/skd.md, "Loss"): ``15 E_rec + (E_pred_x + E_pred_z) + E_eig`` by default."""
  loss, parts, _, new_state = forward(params, model_state, batch, rng, cfg, train=True)
  return loss, (parts, new_state)


def encode(variables, video: jax.Array, cfg: SKDConfig) -> jax.Array:
  """Evaluation-mode latents (b, T, k) of uint8 videos."""
  return SKD(cfg).apply(variables, to_frames(video, _exact_dtype(cfg)), False,
                        method=SKD.encode)


def decode(variables, z: jax.Array, cfg: SKDConfig) -> jax.Array:
  """Evaluation-mode frames (b, T, H, W, C) in (0, 1) of latents (b, T, k)."""
  return SKD(cfg).apply(variables, z, False, method=SKD.decode)


def batch_keys(cfg: SKDConfig) -> tuple[str, ...]:
  """Dataset arrays a training batch holds."""
  del cfg
  return ("video",)


def variables_of(state) -> dict[str, Any]:
  """Model variables from a `TrainState`."""
  return {"params": state.params, **state.model_state}


def analysis_static_set(eigenvalues: jax.Array, cfg: SKDConfig) -> jax.Array:
  """(k,) bool mask S of swaps and sampling: κ components of the loss's static mode, or every
  mode with |λ − 1| < ``cfg.analysis_static_radius`` when that is > 0."""
  if cfg.analysis_static_radius > 0:
    return kj.near_one_mask(eigenvalues, cfg.analysis_static_radius)
  return kj.static_mask(eigenvalues, cfg.n_static, cfg.static_mode)
