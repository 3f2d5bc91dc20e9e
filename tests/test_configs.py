"""Tests of the configs: presets, overrides, validation messages, saved configs."""

import dataclasses
import json

import pytest

from koopjax import configs


def test_skd_validation_names_field_and_allowed_values(tiny):
  cases = [("static_mode=max", "static_mode", "norm, real, ball, none"),
           ("n_static=9", "n_static", "[0, k] = [0, 8]"),
           ("frames=1", "frames", ">= 2 frames"),
           ("image_size=48", "image_size", "power of two"),
           ("dataset=mnist", "dataset", "synthetic, sprites"),
           ("conv_impl=cuda", "conv_impl", "fast, plain"),
           ("cpu_conv_library=mkl", "cpu_conv_library", "eigen, ynnpack"),
           ("analysis_static_radius=-0.1", "analysis_static_radius", "|λ − 1| < r"),
           ("analysis_static_radius=nan", "analysis_static_radius", "must be >= 0"),
           ("w_motion_invariance=-1", "w_motion_invariance", "weights must be >= 0"),
           ("motion_invariance_part=mean", "motion_invariance_part",
            "dynamic_modes, deviations"),
           ("motion_invariance_distortion=hue", "motion_invariance_distortion",
            "channels, affine")]
  for override, field, words in cases:
    with pytest.raises(configs.ConfigError) as info:
      configs.validate(configs.apply_overrides(tiny, [override]))
    assert repr(field) in str(info.value) and words in str(info.value)
  with pytest.raises(configs.ConfigError, match="data_dir"):
    configs.validate(configs.get_config("sprites"))
  sprites_cfg = dataclasses.replace(configs.get_config("sprites"), data_dir="d")
  configs.validate(dataclasses.replace(sprites_cfg, image_size=32))
  with pytest.raises(configs.ConfigError, match="'image_size'.*64x64.*got 16"):
    configs.validate(dataclasses.replace(sprites_cfg, image_size=16))
  with pytest.raises(configs.ConfigError, match="unknown config field 'kdim'"):
    configs.apply_overrides(tiny, ["kdim=3"])
  with pytest.raises(configs.ConfigError, match="k must be a int"):
    configs.apply_overrides(tiny, ["k=three"])
  with pytest.raises(configs.ConfigError, match="unknown config 'cifar'"):
    configs.get_config("cifar")


def test_judge_validation(tiny_judge):
  configs.validate(configs.get_config("judge_synthetic"))
  cases = [("dataset=mnist", "dataset"), ("image_size=48", "image_size"),
           ("conv_impl=cuda", "conv_impl"), ("hidden=0", "hidden")]
  for override, field in cases:
    with pytest.raises(configs.ConfigError, match=repr(field)):
      configs.validate(configs.apply_overrides(tiny_judge, [override]))
  with pytest.raises(configs.ConfigError, match="data_dir"):
    configs.validate(configs.get_config("judge_sprites"))


def test_kae_presets_validate_and_errors_name_the_field():
  for name in ("pendulum", "pendulum_small_angle", "pendulum_noisy", "damped_pendulum",
               "lorenz"):
    cfg = configs.get_config(name)
    configs.validate(cfg)
    assert cfg.model == "kae"
    assert configs.from_dict(json.loads(configs.dumps(cfg))) == cfg
  bad = {"system": "duffing", "operator_init": "xavier", "eigeninit_distribution": "circle",
         "eigeninit_params": "theta", "eval_steps": 5000, "batch_size": 1000}
  for field, value in bad.items():
    with pytest.raises(configs.ConfigError, match=field):
      configs.validate(dataclasses.replace(configs.get_config("pendulum"), **{field: value}))
  assert configs.parse_eigeninit_params(" theta=0.5, radius=2") == {"theta": 0.5, "radius": 2.0}


def test_every_preset_validates_and_round_trips_through_json():
  for name, cfg in configs.CONFIGS.items():
    if getattr(cfg, "dataset", "") != "sprites":  # those need data_dir
      configs.validate(cfg)
    assert cfg.name == name
    assert configs.from_dict(json.loads(configs.dumps(cfg))) == cfg


def test_configs_saved_before_a_field_was_renamed_still_load(tiny):
  saved = configs.to_dict(tiny)
  saved["static_size"] = saved.pop("n_static")
  assert configs.from_dict(saved) == tiny
  assert configs.upgrade_dict(saved) == configs.to_dict(tiny)


def test_dataset_image_sizes_come_from_the_dataset_registry(tiny):
  with pytest.raises(configs.ConfigError, match="synthetic videos are drawn at 32 or 64"):
    configs.validate(dataclasses.replace(tiny, image_size=16))


def test_register_adds_a_preset_and_its_validator(monkeypatch):
  @dataclasses.dataclass(frozen=True)
  class MyConfig(configs.TrainConfig):
    width: int = 3

  def validate_mine(cfg):
    if cfg.width < 1:
      raise configs.ConfigError("config field 'width': must be >= 1.")

  monkeypatch.setattr(configs, "CONFIGS", dict(configs.CONFIGS))
  monkeypatch.setattr(configs, "VALIDATORS", dict(configs.VALIDATORS))
  monkeypatch.setattr(configs, "CLASSES", dict(configs.CLASSES))
  configs.register("mine", MyConfig(name="mine"), validate_mine)
  with pytest.raises(ValueError, match="already registered"):
    configs.register("mine", MyConfig(name="mine"))
  with pytest.raises(configs.ConfigError, match="width"):
    configs.validate(configs.apply_overrides(configs.get_config("mine"), ["width=0"]))
  assert configs.from_dict(configs.to_dict(MyConfig(width=5))) == MyConfig(width=5)
