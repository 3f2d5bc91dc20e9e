"""Typed run configurations: one registry of presets, one validation path.

A config is a frozen dataclass of a model family (`koopjax.configs.skd`, `.kae`, `.judge`,
`.recurrent`, `.spyl`).
`get_config(name)` returns a preset; `apply_overrides(cfg, ["key=value", ...])` builds a new
config from command-line overrides, each value parsed by its field's type; `validate(cfg)`
names the field and the allowed values of anything wrong, so a bad run fails at start rather
than after compilation. A new model family adds a module with its config class, validator and
presets, and one line to `FAMILIES`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable, Iterable
from typing import Any

from koopjax.configs import judge as _judge
from koopjax.configs import kae as _kae
from koopjax.configs import recurrent as _recurrent
from koopjax.configs import spyl as _spyl
from koopjax.configs import skd as _skd
from koopjax.configs.base import CONV_IMPLS
from koopjax.configs.base import CPU_CONV_LIBRARIES
from koopjax.configs.base import LR_DECAYS
from koopjax.configs.base import PRECISIONS
from koopjax.configs.base import ConfigError
from koopjax.configs.base import TrainConfig
from koopjax.configs.base import VideoDataConfig
from koopjax.configs.base import validate_train
from koopjax.configs.judge import JudgeConfig
from koopjax.configs.kae import KAEConfig
from koopjax.configs.kae import parse_eigeninit_params
from koopjax.configs.recurrent import AutoencoderConfig
from koopjax.configs.recurrent import ClassifierConfig
from koopjax.configs.recurrent import SequenceConfig
from koopjax.configs.skd import SKDConfig
from koopjax.configs.spyl import SPYLConfig

# (config class, its validator, its presets) of every model family.
FAMILIES = (
    (SKDConfig, _skd.validate_skd, _skd.PRESETS),
    (KAEConfig, _kae.validate_kae, _kae.PRESETS),
    (JudgeConfig, _judge.validate_judge, _judge.PRESETS),
    (ClassifierConfig, _recurrent.validate_classifier, _recurrent.CLASSIFIER_PRESETS),
    (AutoencoderConfig, _recurrent.validate_autoencoder, _recurrent.AUTOENCODER_PRESETS),
    (SPYLConfig, _spyl.validate_spyl, _spyl.PRESETS),
)

CONFIGS: dict[str, TrainConfig] = {}
VALIDATORS: dict[type, Callable[[Any], None]] = {}
CLASSES: dict[str, type] = {TrainConfig.__name__: TrainConfig}

# Fields renamed since runs were first saved: old name -> new name (saved configs are upgraded).
RENAMED_FIELDS = {"static_size": "n_static"}


def register(name: str, cfg: TrainConfig, validator: Callable[[Any], None] | None = None
             ) -> None:
  """Adds a preset and, when given, the validator of its class (for configs of users'
  models; koopjax's own are registered from `FAMILIES`)."""
  if name in CONFIGS:
    raise ValueError(f"a config named {name!r} is already registered.")
  CONFIGS[name] = cfg
  CLASSES[type(cfg).__name__] = type(cfg)
  if validator is not None:
    VALIDATORS[type(cfg)] = validator


for _cls, _validator, _presets in FAMILIES:
  VALIDATORS[_cls] = _validator
  CLASSES[_cls.__name__] = _cls
  for _name, _cfg in _presets.items():
    register(_name, _cfg)


def get_config(name: str) -> TrainConfig:
  """Returns the preset config of that name."""
  if name not in CONFIGS:
    raise ConfigError(f"unknown config {name!r}; available: {', '.join(sorted(CONFIGS))}.")
  return CONFIGS[name]


def _parse(field: dataclasses.Field, hint: Any, text: str) -> Any:
  if hint is bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
      return True
    if lowered in ("0", "false", "no", "off"):
      return False
    raise ConfigError(f"{field.name} must be true or false; got {text!r}.")
  try:
    return hint(text)
  except ValueError as error:
    raise ConfigError(f"{field.name} must be a {hint.__name__}; got {text!r}.") from error


def apply_overrides(cfg: TrainConfig, overrides: Iterable[str]) -> TrainConfig:
  """Returns ``cfg`` with ``key=value`` overrides applied (values parsed by field type)."""
  fields = {f.name: f for f in dataclasses.fields(cfg)}
  hints = typing.get_type_hints(type(cfg))
  changes = {}
  for item in overrides:
    if "=" not in item:
      raise ConfigError(f"override {item!r} must look like key=value.")
    key, text = item.split("=", 1)
    key = key.strip()
    if key in RENAMED_FIELDS and RENAMED_FIELDS[key] in fields:
      raise ConfigError(f"config field {key!r} is now called {RENAMED_FIELDS[key]!r}.")
    if key not in fields:
      raise ConfigError(f"unknown config field {key!r} for {type(cfg).__name__}; fields: "
                        f"{', '.join(sorted(fields))}.")
    changes[key] = _parse(fields[key], hints[key], text)
  return dataclasses.replace(cfg, **changes)


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
  """JSON-ready dict with the config's class name (for saving beside checkpoints)."""
  return {"__class__": type(cfg).__name__, **dataclasses.asdict(cfg)}


def upgrade_dict(data: dict[str, Any]) -> dict[str, Any]:
  """A saved config dict with renamed fields under their current names."""
  return {RENAMED_FIELDS.get(key, key): value for key, value in data.items()}


def from_dict(data: dict[str, Any]) -> TrainConfig:
  """Inverse of `to_dict` (also reads configs saved before a field was renamed)."""
  data = upgrade_dict(data)
  cls = CLASSES[data.pop("__class__")]
  return cls(**data)


def dumps(cfg: TrainConfig) -> str:
  return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def validate(cfg: TrainConfig) -> None:
  """Raises `ConfigError` naming the field and allowed values of the first problem found."""
  validate_train(cfg)
  validator = VALIDATORS.get(type(cfg))
  if validator is not None:
    validator(cfg)


__all__ = (
    "AutoencoderConfig", "CLASSES", "ClassifierConfig", "CONFIGS", "CONV_IMPLS",
    "CPU_CONV_LIBRARIES", "ConfigError", "JudgeConfig", "KAEConfig", "LR_DECAYS", "PRECISIONS",
    "SKDConfig", "SPYLConfig", "SequenceConfig", "TrainConfig",
    "VALIDATORS",
    "VideoDataConfig", "apply_overrides", "dumps", "from_dict", "get_config",
    "parse_eigeninit_params", "register", "to_dict", "upgrade_dict", "validate",
)
