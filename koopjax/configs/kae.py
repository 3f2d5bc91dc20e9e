"""Configs of the forecasting Koopman autoencoder (`koopjax.models.kae`, docs/forecasting.md)."""

from __future__ import annotations

import dataclasses
import math

from koopjax._src.eigvals import EIG_BACKENDS
from koopjax._src.spectral import EIGENINIT_DISTRIBUTIONS
from koopjax._src.spectral import EIGENLOSS_KINDS
from koopjax.configs.base import ConfigError
from koopjax.configs.base import TrainConfig
from koopjax.configs.base import require
from koopjax.configs.base import require_non_negative
from koopjax.configs.base import require_one_of
from koopjax.data.dynamics import SYSTEMS

KAE_OPERATOR_INITS = ("gaussian", "orthogonal", "eigeninit")


@dataclasses.dataclass(frozen=True)
class KAEConfig(TrainConfig):
  """Consistent Koopman autoencoder on a lifted dynamical system (docs/forecasting.md).

  One training example is a window x_0..x_s (s = pred_steps) of the training trajectory. The
  trainer's optimiser is Adam with a constant learning rate (the reference uses AdamW with
  lr 1e-2 decayed by 0.2 at epochs 30/200/400/500); one epoch is
  ``(n_train − pred_steps) // batch_size`` steps.
  """
  name: str = "pendulum"
  model: str = "kae"
  steps: int = 5400                     # 600 epochs of 9 steps (the reference's 600 epochs)
  batch_size: int = 64
  learning_rate: float = 1e-3
  grad_clip_norm: float = 0.05          # the reference's clip
  checkpoint_every: int = 0
  log_every: int = 50
  # data (koopjax.data.dynamics)
  system: str = "pendulum"              # pendulum | damped_pendulum | lorenz
  theta0: float = 2.4                   # initial angle of the pendulum systems (radians)
  noise: float = 0.0                    # state-noise standard deviation
  dt: float = 0.1
  n_time: int = 2200
  n_train: int = 600                    # leading steps for training; the rest is the test split
  obs_dim: int = 64
  data_seed: int = 1
  # architecture: encoder obs_dim -> hidden -> hidden -> k, decoder k -> hidden -> hidden -> obs_dim
  hidden: int = 16
  k: int = 6
  # operators
  operator_init: str = "orthogonal"     # gaussian | orthogonal | eigeninit
  orthogonal_scale: float = 0.99        # C0 = scale · orthogonal (the reference)
  eigeninit_distribution: str = "unit_circle"   # any kj.EIGENINIT_DISTRIBUTIONS
  eigeninit_params: str = ""            # "name=value,..." e.g. "theta=0.5"
  backward: bool = True                 # learn D with the backward and consistency losses
  # loss: Σ_j MSE fwd + w_id·s·MSE id + w_bwd·Σ_j MSE bwd + w_consist·consistency + eigenloss
  pred_steps: int = 8                   # s
  w_id: float = 1.0                     # λ
  w_bwd: float = 0.1                    # ν
  w_consist: float = 0.01               # η
  w_eigenloss: float = 0.0
  eigenloss_kind: str = "unit_circle"   # any kj.EIGENLOSS_KINDS
  eigenloss_radius: float = 1.0
  eig_backend: str = "auto"             # where eigenvalues are computed (koopjax.eigvals)
  # evaluation
  eval_initial_conditions: int = 30
  eval_steps: int = 1000


def parse_eigeninit_params(text: str) -> dict[str, float]:
  """``"theta=0.5, radius=1"`` -> ``{"theta": 0.5, "radius": 1.0}`` ("" -> {})."""
  params = {}
  for item in filter(None, (part.strip() for part in text.split(","))):
    key, sep, value = item.partition("=")
    try:
      if not sep or not key.strip():
        raise ValueError
      params[key.strip()] = float(value)
    except ValueError:
      raise ConfigError(f"config field 'eigeninit_params': expected name=value pairs separated "
                        f"by commas (e.g. 'theta=0.5'); got {text!r}.") from None
  return params


def validate_kae(cfg: KAEConfig) -> None:
  """Checks the fields of a forecasting Koopman autoencoder run."""
  require_one_of(cfg, "system", SYSTEMS)
  if cfg.system in ("pendulum", "damped_pendulum"):
    require(0 < abs(cfg.theta0) < math.pi, "theta0", f"must satisfy 0 < |theta0| < pi; got "
          f"{cfg.theta0}.")
  require(cfg.noise >= 0, "noise", f"must be >= 0; got {cfg.noise}.")
  require(cfg.dt > 0, "dt", f"must be > 0; got {cfg.dt}.")
  require(cfg.pred_steps >= 1, "pred_steps", f"must be >= 1; got {cfg.pred_steps}.")
  require(cfg.pred_steps < cfg.n_train < cfg.n_time, "n_train",
          f"need pred_steps < n_train < n_time; got pred_steps={cfg.pred_steps}, "
          f"n_train={cfg.n_train}, n_time={cfg.n_time}.")
  windows = cfg.n_train - cfg.pred_steps
  require(cfg.batch_size <= windows, "batch_size",
          f"must be <= the number of training windows n_train - pred_steps = {windows}; got "
          f"{cfg.batch_size}.")
  require(cfg.obs_dim >= 4, "obs_dim", f"must be >= 4 (the largest state dimension); got "
          f"{cfg.obs_dim}.")
  require(cfg.hidden >= 1, "hidden", "must be >= 1.")
  require(cfg.k >= 1, "k", "must be >= 1.")
  require_one_of(cfg, "operator_init", KAE_OPERATOR_INITS)
  require(cfg.orthogonal_scale > 0, "orthogonal_scale", "must be > 0.")
  require_one_of(cfg, "eigeninit_distribution", EIGENINIT_DISTRIBUTIONS)
  parse_eigeninit_params(cfg.eigeninit_params)
  require_one_of(cfg, "eigenloss_kind", EIGENLOSS_KINDS)
  require_one_of(cfg, "eig_backend", EIG_BACKENDS)
  require(cfg.eigenloss_radius > 0, "eigenloss_radius", "must be > 0.")
  require_non_negative(cfg, ("w_id", "w_bwd", "w_consist", "w_eigenloss"),
                       "loss weights must be >= 0")
  require(cfg.eval_initial_conditions >= 1, "eval_initial_conditions", "must be >= 1.")
  test = cfg.n_time - cfg.n_train
  require(1 <= cfg.eval_steps <= test - 1, "eval_steps",
          f"rollouts must fit in the test split: 1 <= eval_steps <= n_time - n_train - 1 = "
          f"{test - 1}; got {cfg.eval_steps}.")


PRESETS = {
    # The reference pendulum (θ0 = 2.4), its small-angle variant and a noisy one.
    "pendulum": KAEConfig(name="pendulum"),
    "pendulum_small_angle": KAEConfig(name="pendulum_small_angle", theta0=0.8),
    "pendulum_noisy": KAEConfig(name="pendulum_noisy", noise=0.03),
    # A damped, driven pendulum (transient + limit cycle): a wider latent (k = 12).
    "damped_pendulum": KAEConfig(name="damped_pendulum", system="damped_pendulum", theta0=2.0,
                                 k=12),
    # Lorenz-63 (chaotic): long rollouts cannot track it, only short ones.
    "lorenz": KAEConfig(name="lorenz", system="lorenz", dt=0.02, k=12, hidden=32),
}
