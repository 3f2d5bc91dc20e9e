"""Strict test set-up and the fixtures every test module shares.

8 fake CPU devices and JAX checks that turn silent mistakes into errors. XLA reads the device
count when the backend starts, so it is set before JAX is imported anywhere in the session.
"""

import dataclasses
import os
import pathlib

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (must come after XLA_FLAGS)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from koopjax import configs  # noqa: E402
from koopjax.models import judge  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = pathlib.Path(__file__).resolve().parents[1]
# The LPC sprite sheets live beside the checkout (never copied into the repository).
SPRITE_SHEETS = REPO.parent / "shared" / "data" / "lpc-sprites"


@pytest.fixture(scope="session")
def repo():
  """The repository root."""
  return REPO


@pytest.fixture(scope="session")
def sprite_sheets():
  """The folder of LPC sprite sheets beside the checkout; skips the test when it is absent."""
  if not SPRITE_SHEETS.is_dir():
    pytest.skip(f"the LPC sprite sheets are not at {SPRITE_SHEETS} (../shared/data/lpc-sprites "
                "beside the checkout); the Sprites tests need them.")
  return SPRITE_SHEETS


@pytest.fixture(scope="session")
def tiny():
  """The tiny SKD config (seconds-scale runs)."""
  return configs.get_config("tiny")


@pytest.fixture(scope="session")
def tiny_judge():
  """A judge config small enough to train in a few steps (one device)."""
  return dataclasses.replace(configs.get_config("judge_synthetic"), conv_dim=4, hidden=8,
                             batch_size=16, steps=3, log_every=1, report=False, num_devices=1)


@pytest.fixture
def key():
  """A function seed -> PRNG key (equinox's `getkey`, deterministic)."""
  return jax.random.key


def make_random_videos(cfg, n=64, seed=0):
  """``{"video": uint8 (n, frames, size, size, 3)}`` of uniform noise."""
  rng = np.random.default_rng(seed)
  return {"video": rng.integers(0, 256, (n, cfg.frames, cfg.image_size, cfg.image_size, 3),
                                dtype=np.uint8)}


def make_labelled_videos(cfg, n=32, seed=0):
  """Random videos with a random label for every factor of ``cfg.dataset``."""
  data = make_random_videos(cfg, n, seed)
  rng = np.random.default_rng(seed + 1)
  for name, classes in judge.factor_classes(cfg).items():
    data[name] = rng.integers(0, classes, n).astype(np.int32)
  return data


@pytest.fixture
def random_videos():
  """``random_videos(cfg, n=64, seed=0)`` -> ``{"video": uint8 noise}``."""
  return make_random_videos


@pytest.fixture
def labelled_videos():
  """``labelled_videos(cfg, n=32, seed=0)`` -> random videos with random labels per factor."""
  return make_labelled_videos
