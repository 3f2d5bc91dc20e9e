"""What the recurrent sequence models share: their data, their cell, and reading the last
valid step of padded sequences."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from koopjax._src.lipschitz import max_real_eigenvalue
from koopjax.data import sequences
from koopjax.nn.recurrent import hidden_matrices
from koopjax.nn.recurrent import make_cell


def load_data(cfg, split: str) -> dict[str, np.ndarray]:
  """A split of ``cfg.dataset`` (`koopjax.data.sequences`)."""
  return sequences.load(cfg.dataset, split, data_dir=cfg.data_dir)


def cell_of(cfg, features: int | None = None, name: str | None = None):
  """The config's recurrent cell with ``features`` units (default ``cfg.hidden``)."""
  return make_cell(cfg.cell, cfg.hidden if features is None else features, beta=cfg.beta,
                   gamma=cfg.gamma, eps=cfg.eps, alpha=cfg.alpha, init_std=cfg.init_std,
                   integrator=cfg.integrator, name=name)


def last_step(states: jax.Array, length: jax.Array) -> jax.Array:
  """``states[b, length[b] − 1]`` of states (b, T, H) and lengths (b,): the last valid step."""
  return jnp.take_along_axis(states, (length - 1)[:, None, None], axis=1)[:, 0]


def spectral_metrics(cell_params: dict[str, Any], cfg) -> dict[str, jax.Array]:
  """``max_re_eig_A`` / ``max_re_eig_W``: the largest real part of the spectrum of each
  spectrally controlled matrix of the cell (none for LSTM, GRU, simple, residual)."""
  return {f"max_re_eig_{name}": max_real_eigenvalue(m)
          for name, m in hidden_matrices(cell_params, cfg.cell, beta=cfg.beta,
                                         gamma=cfg.gamma).items()}
