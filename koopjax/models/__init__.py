"""Models trained by koopjax's one trainer.

Each model module provides ``batch_keys(cfg)`` (the dataset arrays a batch holds),
``load_data(cfg, split)``, ``init(rng, cfg) -> variables``,
``loss_fn(params, model_state, batch, rng, cfg) -> (loss, (metrics, new_model_state))`` and
``write_report(result)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODELS = {"skd": "koopjax.models.skd", "judge": "koopjax.models.judge", "kae": "koopjax.models.kae"}


def get(name: str) -> ModuleType:
  """The model module registered under ``name``."""
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}.")
  return importlib.import_module(MODELS[name])
