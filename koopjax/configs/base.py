"""Fields every run has, and the checks they share.

A config is a frozen dataclass. `TrainConfig` holds the optimiser, schedule, checkpoint and
logging fields; `VideoDataConfig` adds the fields of a run on a labelled video dataset. The
model families (`koopjax.configs.skd`, `.kae`, `.judge`) extend them.
"""

from __future__ import annotations

import dataclasses
import math

from koopjax.data import videos

CONV_IMPLS = ("fast", "plain")
PRECISIONS = ("float32", "bfloat16", "float64")
LR_DECAYS = ("none", "cosine")
CPU_CONV_LIBRARIES = ("eigen", "ynnpack")  # what XLA:CPU runs convolutions with


class ConfigError(ValueError):
  """A configuration field has a value the run cannot use."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Fields every training run has (optimiser, schedule, checkpoints, logging)."""
  name: str = "base"
  model: str = "skd"
  seed: int = 0
  steps: int = 1000
  batch_size: int = 32
  learning_rate: float = 1e-3
  lr_decay: str = "none"                # "none" or "cosine" (to 5% of learning_rate at `steps`)
  grad_clip_norm: float = 0.0           # 0 disables clipping
  checkpoint_every: int = 500           # steps; 0 = only at the end
  keep_checkpoints: int = 3
  log_every: int = 10
  max_nonfinite_steps: int = 20         # consecutive non-finite steps before stopping
  num_devices: int = 0                  # 0 = all devices
  prefetch: int = 2                     # batches staged on the devices ahead of the step
  cpu_conv_library: str = "eigen"       # XLA:CPU convolutions: "eigen" or "ynnpack" (XLA's default)
  report: bool = True                   # `koopjax train` writes DIR/report/ at the end


@dataclasses.dataclass(frozen=True)
class VideoDataConfig(TrainConfig):
  """Fields of every run on a labelled video dataset (`koopjax.data.videos`)."""
  dataset: str = "synthetic"
  data_dir: str = ""                    # TFDS data dir (sprites)
  image_size: int = 32
  channels: int = 3
  frames: int = 8


def require(condition: bool, field: str, message: str) -> None:
  """Raises `ConfigError` naming ``field`` unless ``condition`` holds."""
  if not condition:
    raise ConfigError(f"config field {field!r}: {message}")


def require_one_of(cfg, field: str, allowed) -> None:
  """Raises `ConfigError` unless ``cfg.<field>`` is one of ``allowed``."""
  value = getattr(cfg, field)
  require(value in allowed, field, f"must be one of {', '.join(allowed)}; got {value!r}.")


def require_non_negative(cfg, fields, what: str = "must be >= 0") -> None:
  """Raises `ConfigError` for the first of ``fields`` that is negative."""
  for name in fields:
    require(getattr(cfg, name) >= 0, name, f"{what}.")


def validate_train(cfg: TrainConfig) -> None:
  """Checks the fields shared by every run."""
  require(cfg.steps >= 1, "steps", f"must be >= 1; got {cfg.steps}.")
  require(cfg.batch_size >= 1, "batch_size", f"must be >= 1; got {cfg.batch_size}.")
  require(cfg.learning_rate > 0, "learning_rate", f"must be > 0; got {cfg.learning_rate}.")
  require_one_of(cfg, "lr_decay", LR_DECAYS)
  require(cfg.grad_clip_norm >= 0, "grad_clip_norm", "must be >= 0 (0 disables clipping).")
  require_one_of(cfg, "cpu_conv_library", CPU_CONV_LIBRARIES)
  require(cfg.checkpoint_every >= 0, "checkpoint_every", "must be >= 0 (0 = only at the end).")
  require(cfg.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1.")
  require(cfg.log_every >= 1, "log_every", "must be >= 1.")
  require(cfg.max_nonfinite_steps >= 1, "max_nonfinite_steps", "must be >= 1.")
  require(cfg.num_devices >= 0, "num_devices", "must be >= 0 (0 = all devices).")
  require(cfg.prefetch >= 0, "prefetch", "must be >= 0.")


def validate_video_data(cfg: VideoDataConfig, network: str) -> None:
  """Checks the dataset, data_dir, image_size and channels of a run on videos."""
  require_one_of(cfg, "dataset", videos.DATASETS)
  spec = videos.DATASETS[cfg.dataset]
  if spec.needs_data_dir:
    require(bool(cfg.data_dir), "data_dir", f"the {cfg.dataset} dataset needs data_dir=DIR "
            f"(prepare it with `koopjax prepare {cfg.dataset} --manual-dir DIR --data-dir DIR`).")
  size_ok = cfg.image_size >= 8 and math.log2(cfg.image_size).is_integer()
  require(size_ok, "image_size", f"the {network} halves the image down to 4x4, so it must be "
          f"a power of two >= 8 (e.g. 32 or 64); got {cfg.image_size}.")
  require(cfg.image_size in spec.image_sizes, "image_size", f"{spec.image_size_note}; got "
          f"{cfg.image_size}.")
  require(cfg.channels >= 1, "channels", "must be >= 1.")
