"""Configs of SPYL, contrastive sequential disentanglement (`koopjax.models.spyl`, docs/spyl.md)."""

from __future__ import annotations

import dataclasses

from koopjax.configs.base import CONV_IMPLS
from koopjax.configs.base import VideoDataConfig
from koopjax.configs.base import require
from koopjax.configs.base import require_non_negative
from koopjax.configs.base import require_one_of
from koopjax.configs.base import validate_video_data


@dataclasses.dataclass(frozen=True)
class SPYLConfig(VideoDataConfig):
  """Sample and Predict Your Latent (SPYL; docs/spyl.md): a sequential VAE with a static code s
  and per-frame dynamic codes d_t, and contrastive terms whose views are sampled from the
  model's own priors. Defaults are the reference's (Sprites, 64x64)."""
  name: str = "spyl_sprites"
  model: str = "spyl"
  # architecture
  conv_dim: int = 64                    # first conv stage width, doubled per stage
  g_dim: int = 128                      # per-frame feature
  rnn_size: int = 256                   # BiLSTM, dynamics RNN and prior LSTM width
  s_dim: int = 256
  d_dim: int = 32
  conv_impl: str = "fast"
  # loss (docs/spyl.md, "Loss")
  w_rec: float = 10.0
  w_s: float = 5.0
  w_d: float = 1.0
  w_mi: float = 1.0
  w_contrastive: float = 1.0            # 0 switches the contrastive terms off (the ablation)
  warmup_steps: int = 3500              # contrastive terms from this step on (50 of 1000 epochs)
  temperature: float = 0.5
  bank_factor: int = 4                  # the negatives' bank holds bank_factor x batch samples
  negatives: int = 256                  # per anchor: the farthest by KL in the bank


def validate_spyl(cfg: SPYLConfig) -> None:
  """Checks the fields of a SPYL run."""
  require(cfg.model == "spyl", "model", f"a SPYLConfig trains model 'spyl'; got {cfg.model!r}.")
  validate_video_data(cfg, "SPYL encoder")
  require(cfg.frames >= 2, "frames", "must be >= 2.")
  for name in ("conv_dim", "g_dim", "rnn_size", "s_dim", "d_dim", "bank_factor"):
    require(getattr(cfg, name) >= 1, name, f"must be >= 1; got {getattr(cfg, name)}.")
  require_non_negative(cfg, ("w_rec", "w_s", "w_d", "w_mi", "w_contrastive", "warmup_steps"))
  require(cfg.temperature > 0, "temperature", f"must be > 0; got {cfg.temperature}.")
  bank = cfg.bank_factor * cfg.batch_size
  require(1 <= cfg.negatives <= bank, "negatives", f"must be in [1, bank_factor x batch_size "
          f"= {bank}]; got {cfg.negatives}.")
  require_one_of(cfg, "conv_impl", CONV_IMPLS)


# A CPU schedule on the embedded synthetic videos (32x32): widths scaled down (conv 16, g 64,
# rnn 64, s 32, d 8), bank 4 x 32 with the farthest half as negatives (the reference's 256 of
# 512), contrastive terms after the first 5 % of the steps.
_CPU = SPYLConfig(name="spyl_synthetic", dataset="synthetic", image_size=32, conv_dim=16,
                  g_dim=64, rnn_size=64, s_dim=32, d_dim=8, steps=1500, warmup_steps=75,
                  batch_size=32, learning_rate=2e-3, negatives=64, checkpoint_every=500,
                  log_every=25)

PRESETS = {
    # The reference's values: Adam 2e-3, batch 128, 1000 epochs of Sprites (70 steps each),
    # contrastive terms after 50 epochs; for an accelerator.
    "spyl_sprites": SPYLConfig(name="spyl_sprites", dataset="sprites", image_size=64,
                               steps=70_000, batch_size=128, learning_rate=2e-3,
                               checkpoint_every=2000, log_every=100),
    "spyl_synthetic": _CPU,
    # The same CPU network and schedule on Sprites, 2x2 average-pooled to 32x32 as SKD's
    # `sprites_cpu`; needs `koopjax prepare sprites` and data_dir.
    "spyl_sprites_cpu": dataclasses.replace(_CPU, name="spyl_sprites_cpu", dataset="sprites"),
}
