"""Configs of the structured Koopman autoencoder (SKD; `koopjax.models.skd`, docs/skd.md)."""

from __future__ import annotations

import dataclasses
import math

import jax

from koopjax._src.eigvals import EIG_BACKENDS
from koopjax._src.spectral import DYNAMIC_MODES
from koopjax._src.spectral import STATIC_MODES
from koopjax.configs.base import CONV_IMPLS
from koopjax.configs.base import PRECISIONS
from koopjax.configs.base import VideoDataConfig
from koopjax.configs.base import require
from koopjax.configs.base import require_non_negative
from koopjax.configs.base import require_one_of
from koopjax.configs.base import validate_video_data
from koopjax.data.augment import COLOUR_DISTORTIONS

MOTION_PARTS = ("dynamic_modes", "deviations")


@dataclasses.dataclass(frozen=True)
class SKDConfig(VideoDataConfig):
  """Structured Koopman autoencoder on videos (docs/skd.md)."""
  name: str = "synthetic"
  model: str = "skd"
  # architecture
  conv_dim: int = 32
  k: int = 40                           # Koopman dimension = per-frame latent size
  encoder_lstm: bool = True             # LSTM k -> k over frames (keeps the fit k-dimensional)
  decoder_lstm: bool = True
  decoder_hidden: int = 0               # decoder LSTM width; 0 = k
  conv_impl: str = "fast"
  precision: str = "float32"            # compute dtype; bfloat16 keeps params, the Koopman fit
                                        # and eigenvalues in float32; float64 needs jax x64
  # loss (docs/skd.md, "Loss" and "Spectral loss")
  w_rec: float = 15.0
  w_pred: float = 1.0
  w_eigs: float = 1.0
  n_static: int = 7                     # κ: static components (a conjugate pair is one)
  static_mode: str = "ball"
  dynamic_mode: str = "real"
  dynamic_thresh: float = 0.5
  ball_thresh: float = 0.6
  eigs_thresh: float = 0.5
  eig_grad_clip: float = 1.0            # max norm of the spectral loss's gradient wrt C (0: off)
  eig_backend: str = "auto"             # eigenvalues on XLA ("device"), NumPy ("host") or
                                        # "auto": the device, the host on TPU (koopjax.eigvals)
  # beyond SKD: weight of `koopjax.motion_invariance_loss` between the motion parts of the
  # batch's latents and of its colour-distorted copy's (`koopjax.data.augment.distort_colours`);
  # 0 = off (the reference). The motion part is the latents' component on the dynamic modes of
  # the batch's C (S as for analysis, eigenvectors held fixed) or their temporal deviations.
  w_motion_invariance: float = 0.0
  motion_invariance_part: str = "dynamic_modes"   # or "deviations"
  motion_invariance_distortion: str = "channels"  # or "affine"
  # analysis (swaps, sampling, probes, figures; not the loss): the static set S is the loss's
  # κ components when 0, else every mode with |λ − 1| < this radius (`koopjax.near_one_mask`)
  analysis_static_radius: float = 0.0
  dropout: float = 0.2
  ridge: float = 0.0


def validate_skd(cfg: SKDConfig) -> None:
  """Checks the fields of an SKD run."""
  validate_video_data(cfg, "encoder")
  require(cfg.frames >= 2, "frames", f"a Koopman fit needs >= 2 frames; got {cfg.frames}.")
  require(cfg.conv_dim >= 1, "conv_dim", "must be >= 1.")
  require(cfg.k >= 1, "k", "must be >= 1.")
  require(0 <= cfg.n_static <= cfg.k, "n_static",
          f"κ must be in [0, k] = [0, {cfg.k}]; got {cfg.n_static}.")
  require_one_of(cfg, "static_mode", STATIC_MODES)
  require_one_of(cfg, "dynamic_mode", DYNAMIC_MODES)
  require_one_of(cfg, "conv_impl", CONV_IMPLS)
  require_one_of(cfg, "eig_backend", EIG_BACKENDS)
  require_one_of(cfg, "precision", PRECISIONS)
  if cfg.precision == "float64":
    require(bool(jax.config.jax_enable_x64), "precision",
            "float64 needs 64-bit JAX (JAX_ENABLE_X64=1 or jax.enable_x64()).")
  require(0 <= cfg.dropout < 1, "dropout", f"must be in [0, 1); got {cfg.dropout}.")
  require_one_of(cfg, "motion_invariance_part", MOTION_PARTS)
  require_one_of(cfg, "motion_invariance_distortion", COLOUR_DISTORTIONS)
  require(cfg.ridge >= 0, "ridge", f"must be >= 0; got {cfg.ridge}.")
  require(math.isfinite(cfg.analysis_static_radius) and cfg.analysis_static_radius >= 0,
          "analysis_static_radius", "must be >= 0 (0 = the loss's κ components; r > 0 = "
          f"every mode with |λ − 1| < r); got {cfg.analysis_static_radius}.")
  require(cfg.eig_grad_clip >= 0, "eig_grad_clip", "must be >= 0 (0 disables it).")
  require(cfg.decoder_hidden >= 0, "decoder_hidden", "must be >= 0 (0 = k).")
  require_non_negative(cfg, ("w_rec", "w_pred", "w_eigs", "w_motion_invariance"),
                       "loss weights must be >= 0")


PRESETS = {
    # The default job (`koopjax train`): the embedded synthetic videos on a 2-core CPU in
    # under 15 minutes. Per-frame encoder/decoder, reconstruction weighted 16x the
    # reference's and twice its learning rate; why each value: docs/experiments.md.
    "synthetic": SKDConfig(name="synthetic", steps=3000, batch_size=32, image_size=32,
                           conv_dim=16, k=40, n_static=8, w_rec=240.0, learning_rate=2e-3,
                           checkpoint_every=250, grad_clip_norm=1.0, lr_decay="cosine",
                           encoder_lstm=False, decoder_lstm=False, dropout=0.0,
                           analysis_static_radius=0.1),
    # The reference hyper-parameters of the public SKD Sprites script (1000 epochs of 9000
    # sequences); needs an accelerator.
    "sprites": SKDConfig(name="sprites", dataset="sprites", steps=1000 * 9000 // 32,
                         batch_size=32, image_size=64, conv_dim=32, k=40, n_static=7,
                         checkpoint_every=2000, log_every=50),
    # A CPU-sized Sprites schedule: 2x2 average-pooled 32x32 frames, the synthetic preset's
    # per-frame network, 9000 steps = 32 epochs (the reference: 1000 epochs at 64x64). It
    # keeps the reference's loss weight and learning rate; results: docs/sprites.md.
    "sprites_cpu": SKDConfig(name="sprites_cpu", dataset="sprites", steps=9000, batch_size=32,
                             image_size=32, conv_dim=16, k=40, n_static=7,
                             checkpoint_every=1000, log_every=50, grad_clip_norm=1.0,
                             lr_decay="cosine", encoder_lstm=False, decoder_lstm=False,
                             dropout=0.0, analysis_static_radius=0.1),
    # A tiny model for tests and smoke runs (seconds).
    "tiny": SKDConfig(name="tiny", steps=30, batch_size=16, image_size=32, conv_dim=4, k=8,
                      n_static=2, checkpoint_every=10, log_every=5, report=False),
}
