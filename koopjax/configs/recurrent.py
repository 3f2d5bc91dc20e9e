"""Configs of the recurrent sequence models (`koopjax.models.rnn`, `koopjax.models.rnn_ae`):
the Lipschitz RNN and its baselines on digits, the KANN tasks (phrases, ECG5000).

docs/recurrent.md describes the models and tasks, docs/kann.md the analysis.
"""

from __future__ import annotations

import dataclasses

from koopjax.configs.base import TrainConfig
from koopjax.configs.base import require
from koopjax.configs.base import require_one_of
from koopjax.data import sequences
from koopjax.nn.recurrent import CELLS
from koopjax.nn.recurrent import INTEGRATORS


@dataclasses.dataclass(frozen=True)
class SequenceConfig(TrainConfig):
  """Fields of every recurrent model: its data, its cell and the end-of-run analysis."""
  dataset: str = "digits"               # koopjax.data.sequences.DATASETS
  data_dir: str = ""                    # TFDS data dir (ecg5000; "" = ~/tensorflow_datasets)
  cell: str = "lipschitz"               # koopjax.nn.recurrent.CELLS
  hidden: int = 64                      # H, the (encoder) cell's width
  # The Lipschitz RNN's fields (residual and antisymmetric cells use eps, gamma, init_std).
  beta: float = 0.75                    # β in [0, 1]: skew-symmetric share of A and W
  gamma: float = 0.001                  # γ >= 0: spectral shift (damping) of A and W
  eps: float = 0.1                      # ε > 0: step size of one input step
  alpha: float = 1.0                    # α: weight of the linear term α A h
  init_std: float = 0.1                 # M ~ N(0, (init_std / H)²)
  integrator: str = "euler"             # "euler" or "midpoint"
  # End-of-run analysis (written to WORKDIR/report).
  analysis_size: int = 512              # test sequences for the Hessian and the Koopman fit
  hessian_iterations: int = 20          # power-iteration steps for the top Hessian eigenvalue
  hutchinson_samples: int = 32          # Rademacher probes for the Hessian trace
  noise_levels: str = "0,0.05,0.1,0.2,0.4"  # σ of the Gaussian input noise of the robustness test


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(SequenceConfig):
  """A recurrent sequence classifier: embedding (tokens) or raw values -> cell -> linear
  readout of the last valid step's hidden state."""
  name: str = "digits_lipschitz"
  model: str = "rnn"
  embed_dim: int = 32                   # token embedding width (token datasets only)


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig(SequenceConfig):
  """The reference's recurrent autoencoder for anomaly detection: an encoder cell's last
  state, repeated T times into a decoder cell, then a linear map per step."""
  name: str = "ecg_lstm_ae"
  model: str = "rnn_ae"
  dataset: str = "ecg5000"
  cell: str = "lstm"
  decoder_hidden: int = 128
  anomaly_quantile: float = 0.95        # threshold: this quantile of the train losses


def noise_levels(cfg: SequenceConfig) -> tuple[float, ...]:
  """The parsed ``noise_levels`` field."""
  try:
    levels = tuple(float(v) for v in cfg.noise_levels.split(",") if v.strip())
  except ValueError as error:
    raise ValueError(f"noise_levels must be comma-separated numbers; got "
                     f"{cfg.noise_levels!r}.") from error
  return levels


def _validate_sequence(cfg: SequenceConfig, task: str) -> None:
  require_one_of(cfg, "dataset", tuple(n for n, d in sequences.DATASETS.items() if d.task == task))
  require_one_of(cfg, "cell", CELLS)
  require_one_of(cfg, "integrator", INTEGRATORS)
  require(cfg.hidden >= 1, "hidden", f"must be >= 1; got {cfg.hidden}.")
  require(0.0 <= cfg.beta <= 1.0, "beta", f"must be in [0, 1]; got {cfg.beta}.")
  require(cfg.gamma >= 0, "gamma", f"must be >= 0; got {cfg.gamma}.")
  require(cfg.eps > 0, "eps", f"must be > 0; got {cfg.eps}.")
  require(cfg.init_std > 0, "init_std", f"must be > 0; got {cfg.init_std}.")
  require(cfg.analysis_size >= 2, "analysis_size", f"must be >= 2; got {cfg.analysis_size}.")
  require(cfg.hessian_iterations >= 1, "hessian_iterations", "must be >= 1.")
  require(cfg.hutchinson_samples >= 2, "hutchinson_samples", "must be >= 2.")
  try:
    levels = noise_levels(cfg)
  except ValueError as error:
    require(False, "noise_levels", str(error))
  require(all(v >= 0 for v in levels), "noise_levels", f"must be >= 0; got {cfg.noise_levels!r}.")


def validate_classifier(cfg: ClassifierConfig) -> None:
  """Checks the fields of a sequence-classifier run."""
  require(cfg.model == "rnn", "model", f"a ClassifierConfig trains model 'rnn'; got "
          f"{cfg.model!r}.")
  _validate_sequence(cfg, "classify")
  require(cfg.embed_dim >= 1, "embed_dim", "must be >= 1.")


def validate_autoencoder(cfg: AutoencoderConfig) -> None:
  """Checks the fields of a sequence-autoencoder run."""
  require(cfg.model == "rnn_ae", "model", f"an AutoencoderConfig trains model 'rnn_ae'; got "
          f"{cfg.model!r}.")
  _validate_sequence(cfg, "reconstruct")
  require(cfg.decoder_hidden >= 1, "decoder_hidden", "must be >= 1.")
  require(0 < cfg.anomaly_quantile < 1, "anomaly_quantile", "must be in (0, 1).")


def _digits(cell: str, dataset: str = "digits", **fields) -> ClassifierConfig:
  prefix = "digits" if dataset == "digits" else "digits_permuted"
  return ClassifierConfig(name=f"{prefix}_{cell}", dataset=dataset, cell=cell, hidden=64,
                          steps=1500, batch_size=128, learning_rate=1e-2, lr_decay="cosine",
                          checkpoint_every=500, log_every=50, **fields)


# The digits schedules train each cell for the same 1500 steps (about 150 epochs) in a few CPU
# minutes; docs/recurrent.md has what they reach.
CLASSIFIER_PRESETS = {
    **{f"digits_{cell}": _digits(cell) for cell in CELLS},
    **{f"digits_permuted_{cell}": _digits(cell, "digits_permuted") for cell in CELLS},
    "phrases_gru": ClassifierConfig(name="phrases_gru", dataset="phrases", cell="gru",
                                    hidden=64, embed_dim=32, steps=800, batch_size=64,
                                    learning_rate=5e-3, checkpoint_every=400, log_every=50),
    "phrases_lipschitz": ClassifierConfig(name="phrases_lipschitz", dataset="phrases",
                                          cell="lipschitz", hidden=64, embed_dim=32, steps=800,
                                          batch_size=64, learning_rate=5e-3, eps=0.3,
                                          checkpoint_every=400, log_every=50),
}
AUTOENCODER_PRESETS = {
    # The reference's LSTM autoencoder (64 -> 128), minibatched: 30 epochs of 38 steps.
    "ecg_lstm_ae": AutoencoderConfig(name="ecg_lstm_ae", steps=1150, batch_size=64,
                                     learning_rate=1e-3, grad_clip_norm=1.0,
                                     checkpoint_every=500, log_every=50, analysis_size=64),
}
