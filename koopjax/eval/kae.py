"""Evaluation of a forecasting Koopman autoencoder: long rollouts from test initial conditions
and the operator's spectrum (docs/forecasting.md, "Evaluation")."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from koopjax.configs import KAEConfig
from koopjax.eval.evaluation import Evaluation
from koopjax.eval.evaluation import Figure
from koopjax.models import kae

NEEDS_JUDGE = False
LOSS_KEYS = ("loss", "fwd", "identity", "bwd", "consist", "eigenloss")


@dataclasses.dataclass(frozen=True)
class Options:
  """Knobs of the forecasting evaluation (its sizes are config fields: ``eval_steps``,
  ``eval_initial_conditions``)."""


def initial_conditions(n_test: int, steps: int, count: int) -> np.ndarray:
  """``count`` start indices spread evenly over the test steps that leave room for ``steps``.

  Args:
    n_test: length of the test split.
    steps: rollout length (needs start + steps <= n_test − 1).
    count: number of initial conditions.

  Returns:
    Integer indices, shape (count,), in [0, n_test − steps − 1].
  """
  last = n_test - steps - 1
  if last < 0:
    raise ValueError(f"a {steps}-step rollout needs a test split of more than {steps} steps; "
                     f"got {n_test}.")
  return np.round(np.linspace(0, last, count)).astype(np.int64)


@functools.partial(jax.jit, static_argnames=("steps", "cfg"))
def _rollout_errors(params, x0, targets, *, steps: int, cfg: KAEConfig):
  prediction = kae.predict(params, x0, steps, cfg)[:, 1:]
  return (jnp.linalg.norm(prediction - targets, axis=-1)
          / jnp.linalg.norm(targets, axis=-1))


def rollout_errors(params: dict[str, Any], cfg: KAEConfig, steps: int | None = None,
                   count: int | None = None) -> np.ndarray:
  """Relative L2 errors of C-only rollouts from test initial conditions against clean data.

  From observed (possibly noisy) ``x_i = test[i]`` at the indices of `initial_conditions`,
  ``err[i, t] = ‖dec(enc(x_i) C^t) − x*_{i+t}‖ / ‖x*_{i+t}‖`` for t = 1..steps, with x* the
  clean test data. Computed in float64 (see the comment inside).

  Args:
    params: model parameters.
    cfg: the config (data and evaluation fields).
    steps: rollout length (default ``cfg.eval_steps``).
    count: number of initial conditions (default ``cfg.eval_initial_conditions``).

  Returns:
    float64 array (count, steps); non-finite only where even float64 overflowed (|λ| >~ 2).
  """
  steps = cfg.eval_steps if steps is None else steps
  count = cfg.eval_initial_conditions if count is None else count
  data = kae.trajectory(cfg)
  starts = initial_conditions(len(data.test), steps, count)
  targets = data.test_clean[starts[:, None] + np.arange(1, steps + 1)[None, :]]
  # float64: a latent growing like |λ|^t (|λ| > 1) then saturates the tanh decoder, as it
  # does in exact arithmetic, instead of overflowing float32 (|λ| = 1.1 does by t = 930).
  with jax.enable_x64(True):
    params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    errors = _rollout_errors(params64, jnp.asarray(data.test[starts], jnp.float64),
                             jnp.asarray(targets, jnp.float64), steps=steps, cfg=cfg)
    return np.asarray(errors, np.float64)


def _summary(errors: np.ndarray) -> dict[str, Any]:
  mean = np.nanmean(np.where(np.isfinite(errors), errors, np.nan), axis=0)
  marks = [t for t in (1, 10, 100, 500, 1000) if t <= errors.shape[1]]
  return {
      "cumulative_mean_error": float(np.sum(mean)),
      "final_mean_error": float(mean[-1]),
      "mean_error_at": {str(t): float(mean[t - 1]) for t in marks},
      "diverged_rollouts": int(np.sum(~np.all(np.isfinite(errors), axis=1))),
  }


def _complex_list(values: np.ndarray) -> list[list[float]]:
  return [[float(v.real), float(v.imag)] for v in values]


def evaluate(run, options: Options = Options(), judge=None) -> Evaluation:
  """Long rollouts and the operator's spectrum of a trained run.

  Rolls out ``cfg.eval_steps`` steps with C only from ``cfg.eval_initial_conditions`` test
  initial conditions (`rollout_errors`). Figures: ``relative_error.png`` (mean and 5–95 % band
  per step) and ``eigenvalues.png`` (λ(C), and 1/λ(D) when D is learned, against the unit
  circle); document ``evaluation.json`` (the curves, the eigenvalues and a summary).

  Args:
    run: a `koopjax.train.RunResult` (from `koopjax.train.run` or `restore`).
    options: `Options`.
    judge: unused.

  Returns:
    `Evaluation`; its record's "summary" holds the headline numbers.
  """
  del options, judge
  cfg = run.cfg
  params = jax.device_get(run.state.params)
  errors = rollout_errors(params, cfg)
  starts = initial_conditions(len(kae.trajectory(cfg).test), cfg.eval_steps,
                              cfg.eval_initial_conditions)
  forward = np.linalg.eigvals(np.asarray(params["C"], np.float64))
  backward_inverse = None
  if "D" in params:
    backward_inverse = 1.0 / np.linalg.eigvals(np.asarray(params["D"], np.float64))
  summary = {
      "config": cfg.name, "system": cfg.system, "step": int(np.asarray(run.state.step)),
      **_summary(errors),
      "spectral_radius": float(np.max(np.abs(forward))),
      "eigenvalue_moduli": sorted(float(m) for m in np.abs(forward)),
  }
  finite = np.where(np.isfinite(errors), errors, np.nan)
  record = {
      "summary": summary,
      "initial_conditions": starts.tolist(),
      "relative_error": {
          "mean": np.nanmean(finite, axis=0).tolist(),
          "q05": np.nanquantile(finite, 0.05, axis=0).tolist(),
          "q95": np.nanquantile(finite, 0.95, axis=0).tolist(),
      },
      "eigenvalues_C": _complex_list(forward),
      "inverse_eigenvalues_D": (None if backward_inverse is None
                                else _complex_list(backward_inverse)),
  }
  title = (f"{cfg.name}: {cfg.eval_initial_conditions} test initial conditions, "
           f"step {summary['step']}")
  figures = (
      Figure("relative_error.png", "error_band", {"errors": finite, "title": title}),
      Figure("eigenvalues.png", "operator_eigenvalues",
             {"forward": forward, "backward_inverse": backward_inverse,
              "title": f"{cfg.name}: spectral radius {summary['spectral_radius']:.4f}"}),
  )
  return Evaluation("kae", record, {"evaluation.json": record}, figures)


def run_summary(run) -> Evaluation:
  """Loss curves and the `evaluate` outputs."""
  evaluation = evaluate(run)
  curves = Figure("loss.png", "loss_curves", {"history": run.history, "keys": LOSS_KEYS})
  return evaluation._replace(figures=(curves, *evaluation.figures))
