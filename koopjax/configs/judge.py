"""Configs of the judge classifier of the evaluation protocol (`koopjax.models.judge`)."""

from __future__ import annotations

import dataclasses

from koopjax.configs.base import CONV_IMPLS
from koopjax.configs.base import VideoDataConfig
from koopjax.configs.base import require
from koopjax.configs.base import require_one_of
from koopjax.configs.base import validate_video_data


@dataclasses.dataclass(frozen=True)
class JudgeConfig(VideoDataConfig):
  """The judge classifier of the evaluation protocol (docs/evaluation.md): one softmax head
  for the action and for every static factor of the dataset."""
  name: str = "judge_synthetic"
  model: str = "judge"
  conv_dim: int = 16                    # width of the first conv stage, doubled per stage
  hidden: int = 64                      # per-frame features and the sequence feature
  conv_impl: str = "fast"


def validate_judge(cfg: JudgeConfig) -> None:
  """Checks the fields of a judge run."""
  require(cfg.model == "judge", "model",
          f"a JudgeConfig trains model 'judge'; got {cfg.model!r}.")
  validate_video_data(cfg, "judge")
  require(cfg.frames >= 1, "frames", "must be >= 1.")
  require(cfg.conv_dim >= 1, "conv_dim", "must be >= 1.")
  require(cfg.hidden >= 1, "hidden", "must be >= 1.")
  require_one_of(cfg, "conv_impl", CONV_IMPLS)


# A judge must reach 99 % on every head of the test split (identities unseen in training)
# before it judges anything; these schedules do (docs/evaluation.md).
PRESETS = {
    "judge_synthetic": JudgeConfig(name="judge_synthetic", conv_dim=8, hidden=64, steps=400,
                                   batch_size=64, learning_rate=2e-3, grad_clip_norm=1.0,
                                   checkpoint_every=0, log_every=20),
    "judge_sprites": JudgeConfig(name="judge_sprites", dataset="sprites", image_size=64,
                                 conv_dim=8, hidden=64, steps=600, batch_size=64,
                                 learning_rate=2e-3, grad_clip_norm=1.0, checkpoint_every=200,
                                 log_every=50),
}
