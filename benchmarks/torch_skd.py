"""The SKD model, loss and train step of koopjax written in PyTorch (benchmarks only).

Same model and loss as `koopjax.models.skd` (docs/skd.md), in PyTorch's own idiom:

* encoder: stride-2 ``Conv2d(k=4, s=2, p=1)`` stages (no bias: each is followed by
  BatchNorm), BatchNorm2d (momentum 0.1, eps 1e-5), LeakyReLU(0.2), then a 4x4 "valid"
  ``Conv2d`` to k channels (koopjax's equivalent dense layer), BatchNorm, tanh, and an LSTM
  k -> k over the frames;
* Koopman fit of one C per batch through the normal equations ``C = pinv(Zpᵀ Zp + ridge I)
  Zpᵀ Zf`` (same pseudo-inverse cut-off as ``jnp.linalg.pinv``), one-step prediction;
* dropout of the latents after the fit (reconstruction path only);
* decoder: LSTM, ``ConvTranspose2d(k=4, s=1, p=0)`` from the 1x1 map to 4x4 (koopjax's
  dense layer), ``ConvTranspose2d(k=4, s=2, p=1)`` stages with BatchNorm/LeakyReLU and a
  biased last one with a sigmoid;
* MSE losses and the spectral loss with the same static-set selection (stable sort by the
  mode's key, conjugate pairs counted as one component) on ``torch.linalg.eigvals``;
* Adam.

`koopjax_state_dict` maps koopjax's initialised variables onto this module (used by the
parity test and by the benchmark's one-off parity check).

Differences that do not change the loss or the amount of work: PyTorch updates the running
variance with the unbiased batch variance (Flax: biased), and there is no non-finite-step
guard in this step.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from torch import nn

PIXEL_SCALE = 1.0 / 256.0
STATIC_MODES = ("norm", "real", "ball", "none")
DYNAMIC_MODES = ("strict", "thresh", "ball", "real", "none")


def _channels(image_size: int, conv_dim: int) -> list[int]:
  n_stages = int(math.log2(image_size)) - 2
  return [conv_dim * 2**i for i in range(n_stages)]


def _bn(features: int) -> nn.BatchNorm2d:
  return nn.BatchNorm2d(features, eps=1e-5, momentum=0.1)


class TorchSKD(nn.Module):
  """SKD encoder/decoder for frames (N, C, H, W); ``cfg`` is a koopjax `SKDConfig` (or any
  object with its fields)."""

  def __init__(self, cfg: Any):
    super().__init__()
    self.cfg = cfg
    widths = _channels(cfg.image_size, cfg.conv_dim)
    k = cfg.k
    layers, c_in = [], cfg.channels
    for w in widths:
      layers += [nn.Conv2d(c_in, w, 4, 2, 1, bias=False), _bn(w), nn.LeakyReLU(0.2)]
      c_in = w
    layers += [nn.Conv2d(c_in, k, 4, 1, 0, bias=False), _bn(k), nn.Tanh()]
    self.enc_cnn = nn.Sequential(*layers)
    self.enc_lstm = nn.LSTM(k, k, batch_first=True) if cfg.encoder_lstm else None
    hidden = (cfg.decoder_hidden or k) if cfg.decoder_lstm else k
    self.dec_lstm = nn.LSTM(k, hidden, batch_first=True) if cfg.decoder_lstm else None
    rev = widths[::-1]
    layers = [nn.ConvTranspose2d(hidden, rev[0], 4, 1, 0, bias=False), _bn(rev[0]),
              nn.LeakyReLU(0.2)]
    for c_in, w in zip(rev[:-1], rev[1:]):
      layers += [nn.ConvTranspose2d(c_in, w, 4, 2, 1, bias=False), _bn(w), nn.LeakyReLU(0.2)]
    layers += [nn.ConvTranspose2d(rev[-1], cfg.channels, 4, 2, 1, bias=True), nn.Sigmoid()]
    self.dec_cnn = nn.Sequential(*layers)

  @property
  def exact_dtype(self) -> torch.dtype:
    """Dtype of the parameters, latents, Koopman fit and losses (float32, or float64)."""
    return self.enc_cnn[0].weight.dtype

  def encode(self, frames: torch.Tensor, b: int, t: int) -> torch.Tensor:
    """Frames (b·T, C, H, W) -> latents (b, T, k) in the exact dtype."""
    z = self.enc_cnn(frames).reshape(b, t, self.cfg.k)
    if self.enc_lstm is not None:
      z, _ = self.enc_lstm(z)
    return z.to(self.exact_dtype)

  def decode(self, z: torch.Tensor) -> torch.Tensor:
    """Latents (b, T, k) -> frames (b·T, C, H, W)."""
    b, t, _ = z.shape
    h = z
    if self.dec_lstm is not None:
      h, _ = self.dec_lstm(h)
    h = h.reshape(b * t, -1, 1, 1)
    return self.dec_cnn(h).to(self.exact_dtype)


def to_frames(video: torch.Tensor, channels_last: bool = True, dtype: torch.dtype = torch.float32
              ) -> tuple[torch.Tensor, int, int]:
  """uint8 (b, T, H, W, C) -> float frames (b·T, C, H, W) in [0, 1) (channels-last strides:
  a view of the NHWC data, no copy, unless ``channels_last=False``)."""
  if video.dtype != torch.uint8:
    raise TypeError(f"video must be uint8 (b, T, H, W, C); got {video.dtype}.")
  b, t, h, w, c = video.shape
  x = (video.to(dtype) * PIXEL_SCALE).permute(0, 1, 4, 2, 3).reshape(b * t, c, h, w)
  return (x if channels_last else x.contiguous()), b, t


def fit_koopman(z: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
  """C = pinv(Zpᵀ Zp + ridge I) Zpᵀ Zf over the whole batch (float32, no TF32)."""
  k = z.shape[-1]
  zp = z[:, :-1].reshape(-1, k)
  zf = z[:, 1:].reshape(-1, k)
  gram = zp.T @ zp
  if ridge:
    gram = gram + ridge * torch.eye(k, dtype=z.dtype, device=z.device)
  rtol = 10.0 * k * torch.finfo(z.dtype).eps  # jnp.linalg.pinv's default cut-off
  return torch.linalg.pinv(gram, rtol=rtol, hermitian=True) @ (zp.T @ zf)


def predict_one_step(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
  return torch.cat([z[:, :1], z[:, :-1] @ c], dim=1)


def static_mask(eigenvalues: torch.Tensor, n_static: int, mode: str) -> torch.Tensor:
  """As koopjax's `static_mask`: walk the eigenvalues from the most static one by the mode's key
  (stable sort), a real eigenvalue counting 1 and a complex one 1/2; static iff fewer than
  ``n_static`` components come before it."""
  with torch.no_grad():
    re, im = eigenvalues.real, eigenvalues.imag
    if mode in ("norm", "none"):
      key = re**2 + im**2
    elif mode == "real":
      key = re
    else:  # ball
      key = -torch.hypot(re - 1.0, im)
    order = torch.argsort(-key, stable=True)
    weight = torch.where(im[order] == 0, 1.0, 0.5)
    before = torch.cumsum(weight, 0) - weight
    mask = torch.zeros_like(before, dtype=torch.bool)
    mask[order] = before < n_static
  return mask


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
  count = mask.sum()
  return torch.where(mask, x, torch.zeros_like(x)).sum() / count.clamp(min=1)


class _ClipGradientNorm(torch.autograd.Function):
  """Identity forward; cotangent rescaled to norm <= max_norm (koopjax.clip_gradient_norm)."""

  @staticmethod
  def forward(ctx, x, max_norm):
    ctx.max_norm = max_norm
    return x.view_as(x)

  @staticmethod
  def backward(ctx, cotangent):
    norm = torch.linalg.vector_norm(cotangent)
    scale = torch.clamp(ctx.max_norm / torch.clamp(norm, min=torch.finfo(cotangent.dtype).tiny),
                        max=1.0)
    return cotangent * scale, None


def spectral_loss(c: torch.Tensor, cfg: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
  """E_eig = E_static + E_dynamic (docs/skd.md, "Spectral loss") on ``torch.linalg.eigvals(C)``."""
  eigenvalues = torch.linalg.eigvals(c)
  mask = static_mask(eigenvalues, cfg.n_static, cfg.static_mode)
  re, im = eigenvalues.real, eigenvalues.imag
  dn = re**2 + im**2
  db_sq = (re - 1.0)**2 + im**2
  zero = torch.zeros((), dtype=re.dtype, device=re.device)
  mode = cfg.static_mode
  if mode == "norm":
    static = _masked_mean((dn - 1.0)**2, mask)
  elif mode == "real":
    static = _masked_mean((re - 1.0)**2, mask)
  elif mode == "ball":
    static = _masked_mean(db_sq, mask)
  else:
    static = zero
  dyn, mode = ~mask, cfg.dynamic_mode
  if mode == "strict":
    dynamic = _masked_mean((dn - cfg.eigs_thresh**2)**2, dyn)
  elif mode == "thresh":
    dynamic = _masked_mean(torch.where(dn > cfg.dynamic_thresh, dn, zero), dyn)
  elif mode == "ball":
    near = db_sq < cfg.ball_thresh**2
    db = torch.sqrt(torch.where(near, db_sq, torch.ones_like(db_sq)))
    dynamic = _masked_mean(torch.where(near, 2.0 - db, zero), dyn)
  elif mode == "real":
    dynamic = _masked_mean(torch.where(re > cfg.dynamic_thresh, re, zero), dyn)
  else:
    dynamic = zero
  return static + dynamic, {"static": static, "dynamic": dynamic}


def loss_fn(model: TorchSKD, video: torch.Tensor, cfg: Any, *, channels_last: bool = True,
            autocast_dtype: torch.dtype | None = None
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
  """The SKD training loss (docs/skd.md, "Loss") of a uint8 batch (b, T, H, W, C).

  ``autocast_dtype=torch.bfloat16`` runs convolutions, linear layers and LSTMs in bfloat16
  while the Koopman fit, eigenvalues and losses stay in float32 (koopjax's ``precision``).
  """
  exact = model.exact_dtype
  x, b, t = to_frames(video, channels_last, exact)
  device_type = x.device.type
  enabled = autocast_dtype is not None

  with torch.autocast(device_type, dtype=autocast_dtype or torch.bfloat16, enabled=enabled):
    z = model.encode(x, b, t)
  with torch.autocast(device_type, enabled=False):
    c = fit_koopman(z.to(exact), cfg.ridge)
    z_pred = predict_one_step(z, c)
    z_drop = nn.functional.dropout(z, cfg.dropout, model.training) if cfg.dropout else z
  with torch.autocast(device_type, dtype=autocast_dtype or torch.bfloat16, enabled=enabled):
    x_rec = model.decode(z_drop)
    x_pred = model.decode(z_pred)
  with torch.autocast(device_type, enabled=False):
    e_rec = torch.mean((x - x_rec)**2)
    e_pred_x = torch.mean((x_rec - x_pred)**2)
    e_pred_z = torch.mean((z_drop - z_pred)**2)
    c_spectral = _ClipGradientNorm.apply(c, cfg.eig_grad_clip) if cfg.eig_grad_clip else c
    e_eig, spectral = spectral_loss(c_spectral, cfg)
    loss = cfg.w_rec * e_rec + cfg.w_pred * (e_pred_x + e_pred_z) + cfg.w_eigs * e_eig
  parts = {"rec": e_rec, "pred_x": e_pred_x, "pred_z": e_pred_z, "eig": e_eig,
           "eig_static": spectral["static"], "eig_dynamic": spectral["dynamic"]}
  return loss, parts


def make_train_step(model: TorchSKD, cfg: Any, *, compile: bool = False,
                    channels_last: bool = True, autocast_dtype: torch.dtype | None = None):
  """``step(video) -> loss`` (detached, not synchronised): zero grads, loss, backward, Adam
  (optionally after global-norm clipping as koopjax's ``grad_clip_norm``).

  ``compile=True`` wraps the loss (forward and, through AOTAutograd, backward) in
  `torch.compile`; the optimiser step is compiled too. Graph breaks (e.g. around
  ``torch.linalg.eigvals``) fall back to eager for that part.
  """
  model.train()
  optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)

  def compute(video):
    return loss_fn(model, video, cfg, channels_last=channels_last,
                   autocast_dtype=autocast_dtype)[0]

  def update():
    if cfg.grad_clip_norm:
      nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip_norm)
    optimizer.step()

  if compile:
    compute = torch.compile(compute)
    update = torch.compile(update)

  def step(video: torch.Tensor) -> torch.Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = compute(video)
    loss.backward()
    update()
    return loss.detach()

  step.optimizer = optimizer
  return step


# ------------------------------------------------------------------ koopjax -> torch weights


def _find(tree: dict, name: str) -> np.ndarray:
  """The unique leaf called ``name`` in a (possibly nested) parameter dict."""
  found = []

  def walk(node):
    for key, value in node.items():
      if isinstance(value, dict):
        walk(value)
      elif key == name:
        found.append(value)

  walk(tree)
  if len(found) != 1:
    raise KeyError(f"expected exactly one {name!r} leaf, found {len(found)} in {list(tree)}.")
  return np.asarray(found[0])


def _lstm(cell: dict, prefix: str) -> dict[str, np.ndarray]:
  """Flax (Optimized)LSTMCell params -> torch.nn.LSTM layer 0.

  Flax: ``ii, if, ig, io`` input kernels (in, H), no bias; ``hi, hf, hg, ho`` hidden
  kernels (H, H) with biases; gates i, f, g (tanh), o; zero initial carry. Torch stacks the
  gates in the same order i, f, g, o into ``weight_ih_l0`` (4H, in), ``weight_hh_l0`` (4H, H)
  and two biases that are added (all of the bias goes to ``bias_ih_l0``).
  """
  gates = "ifgo"
  w_ih = np.concatenate([_find(cell[f"i{g}"], "kernel").T for g in gates], 0)
  w_hh = np.concatenate([_find(cell[f"h{g}"], "kernel").T for g in gates], 0)
  b_ih = np.concatenate([_find(cell[f"h{g}"], "bias") for g in gates], 0)
  return {f"{prefix}.weight_ih_l0": w_ih, f"{prefix}.weight_hh_l0": w_hh,
          f"{prefix}.bias_ih_l0": b_ih, f"{prefix}.bias_hh_l0": np.zeros_like(b_ih)}


def _cell(lstm_module: dict) -> dict:
  (cell,) = lstm_module.values()  # FrameLSTM_0 -> {"OptimizedLSTMCell_0": {...}}
  return cell


def _bn_state(prefix: str, params: dict, stats: dict) -> dict[str, np.ndarray]:
  return {f"{prefix}.weight": _find(params, "scale"), f"{prefix}.bias": _find(params, "bias"),
          f"{prefix}.running_mean": _find(stats, "mean"),
          f"{prefix}.running_var": _find(stats, "var")}


def koopjax_state_dict(variables: dict, cfg: Any, upconv_flipped: bool
                       ) -> dict[str, np.ndarray]:
  """A `TorchSKD` state dict (numpy arrays) holding koopjax's SKD variables.

  Layouts: conv kernels HWIO -> OIHW; the encoder's dense layer on the flattened (h, w, c)
  4x4 map -> ``Conv2d(k=4)`` weight (k, C, 4, 4); the decoder's dense layer onto the
  (h, w, c) 4x4 map -> ``ConvTranspose2d(k=4)`` weight (in, C, 4, 4); koopjax ``UpConv``
  kernels (4, 4, Cin, Cout) -> ``ConvTranspose2d`` weight (Cin, Cout, 4, 4), spatially
  flipped when ``upconv_flipped`` (see `upconv_kernel_is_flipped`).
  """
  params, stats = variables["params"], variables["batch_stats"]
  widths = _channels(cfg.image_size, cfg.conv_dim)
  n = len(widths)
  out: dict[str, np.ndarray] = {}
  enc, enc_stats = params["encoder"], stats["encoder"]
  for i in range(n):
    out[f"enc_cnn.{3 * i}.weight"] = _find(enc[f"DownConv_{i}"], "kernel").transpose(3, 2, 0, 1)
    out.update(_bn_state(f"enc_cnn.{3 * i + 1}", enc[f"BatchNorm_{i}"],
                         enc_stats[f"BatchNorm_{i}"]))
  dense = _find(enc["Dense_0"], "kernel")  # (16 C, k), rows in (h, w, c) order
  out[f"enc_cnn.{3 * n}.weight"] = dense.reshape(4, 4, widths[-1], cfg.k).transpose(3, 2, 0, 1)
  out.update(_bn_state(f"enc_cnn.{3 * n + 1}", enc[f"BatchNorm_{n}"],
                       enc_stats[f"BatchNorm_{n}"]))
  if cfg.encoder_lstm:
    out.update(_lstm(_cell(enc["FrameLSTM_0"]), "enc_lstm"))

  dec, dec_stats = params["decoder"], stats["decoder"]
  if cfg.decoder_lstm:
    out.update(_lstm(_cell(dec["FrameLSTM_0"]), "dec_lstm"))
  dense = _find(dec["Dense_0"], "kernel")  # (hidden, 16 C), columns in (h, w, c) order
  out["dec_cnn.0.weight"] = dense.reshape(dense.shape[0], 4, 4, widths[-1]).transpose(0, 3, 1, 2)
  out.update(_bn_state("dec_cnn.1", dec["BatchNorm_0"], dec_stats["BatchNorm_0"]))
  for i in range(n):
    kernel = _find(dec[f"UpConv_{i}"], "kernel")  # (4, 4, Cin, Cout)
    if upconv_flipped:
      kernel = kernel[::-1, ::-1]
    out[f"dec_cnn.{3 * (i + 1)}.weight"] = np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))
    if i + 1 < n:
      out.update(_bn_state(f"dec_cnn.{3 * (i + 1) + 1}", dec[f"BatchNorm_{i + 1}"],
                           dec_stats[f"BatchNorm_{i + 1}"]))
    else:
      out[f"dec_cnn.{3 * (i + 1)}.bias"] = _find(dec[f"UpConv_{i}"], "bias")
  return {key: np.ascontiguousarray(value) for key, value in out.items()}


def load_koopjax_variables(model: TorchSKD, variables: dict, upconv_flipped: bool) -> None:
  """Copies koopjax variables into ``model`` (every parameter and buffer but the BatchNorm
  batch counters must be covered)."""
  state = koopjax_state_dict(variables, model.cfg, upconv_flipped)
  own = model.state_dict()
  tensors = {}
  for key, value in state.items():
    if key not in own:
      raise KeyError(f"mapped key {key} is not in the torch model.")
    if tuple(own[key].shape) != value.shape:
      raise ValueError(f"{key}: torch shape {tuple(own[key].shape)} != mapped {value.shape}.")
    tensors[key] = torch.from_numpy(value.copy())
  missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
  if missing:
    raise KeyError(f"torch parameters not mapped from koopjax: {missing}.")
  model.load_state_dict(tensors, strict=False)


def conv_transpose_reference(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
                             ) -> np.ndarray:
  """numpy ``torch.nn.functional.conv_transpose2d(stride=2, padding=1)`` for 4x4 kernels, in
  NHWC: x (N, H, W, Cin), weight (Cin, Cout, 4, 4) -> (N, 2H, 2W, Cout)."""
  n, h, w, _ = x.shape
  cout = weight.shape[1]
  full = np.zeros((n, 2 * h + 2, 2 * w + 2, cout), np.float64)
  for kh in range(4):
    for kw in range(4):
      full[:, kh:kh + 2 * h:2, kw:kw + 2 * w:2] += np.einsum(
          "nhwc,cd->nhwd", x.astype(np.float64), weight[:, :, kh, kw].astype(np.float64))
  out = full[:, 1:1 + 2 * h, 1:1 + 2 * w]
  return out + (0.0 if bias is None else bias)


@functools.cache
def upconv_kernel_is_flipped() -> bool:
  """Whether ``koopjax.nn.UpConv``'s (4, 4, Cin, Cout) kernel is PyTorch's ConvTranspose2d
  weight spatially flipped (plain ``lax.conv_transpose`` without ``transpose_kernel``) or not
  (the gradient-of-convolution form, ``transpose_kernel=True``).

  Probed numerically against `conv_transpose_reference`; raises if neither layout matches
  (then UpConv is not a stride-2 pad-1 transposed convolution at all).
  """
  import jax
  from koopjax.nn import UpConv

  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 3, 3, 2)).astype(np.float32)
  module = UpConv(3, use_bias=False)
  variables = jax.eval_shape(module.init, jax.random.key(0), x)
  leaves = jax.tree_util.tree_leaves_with_path(variables)
  (path, leaf), = [(p, v) for p, v in leaves if jax.tree_util.keystr(p).endswith("['kernel']")]
  kernel = rng.standard_normal(leaf.shape).astype(np.float32)
  variables = jax.tree_util.tree_map_with_path(
      lambda p, v: kernel if p == path else np.zeros(v.shape, v.dtype), variables)
  y = np.asarray(module.apply(variables, x), np.float64)
  scale = np.abs(y).max()
  for flipped in (False, True):
    k = kernel[::-1, ::-1] if flipped else kernel
    ref = conv_transpose_reference(x, k.transpose(2, 3, 0, 1))
    if np.abs(y - ref).max() <= 1e-4 * scale:
      return flipped
  raise AssertionError("koopjax.nn.UpConv matches neither ConvTranspose2d(4, 2, 1) layout.")
