"""Curvature of a trained model's loss at its parameters: the top Hessian eigenvalue
(sharpness) and the Hessian trace, on a fixed batch (`koopjax._src.hessian`)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from koopjax._src.hessian import hessian_top_eigenvalue
from koopjax._src.hessian import hutchinson_trace


def loss_curvature(model, params: Any, model_state: Any, batch: dict[str, np.ndarray], cfg,
                   *, iterations: int = 20, samples: int = 32, seed: int = 0
                   ) -> dict[str, float]:
  """λ_max of the Hessian of ``model.loss_fn`` w.r.t. the parameters, and its trace.

  Args:
    model: a `koopjax.models.Model`.
    params, model_state: the trained variables.
    batch: the examples the loss is taken on (held fixed).
    cfg: the run's config.
    iterations: power-iteration steps.
    samples: Hutchinson probes.
    seed: for the start vector and the probes.

  Returns:
    ``lambda_max``, ``trace``, ``trace_stderr`` and ``parameters`` (their number).
  """
  def loss(p):
    return model.loss_fn(p, model_state, batch, jax.random.key(0), cfg)[0]

  power_key, probe_key = jax.random.split(jax.random.key(seed))
  top = jax.jit(lambda p: hessian_top_eigenvalue(loss, p, power_key, iterations=iterations))
  trace = jax.jit(lambda p: hutchinson_trace(loss, p, probe_key, samples=samples))
  estimate = trace(params)
  return {"lambda_max": float(top(params)), "trace": float(estimate.trace),
          "trace_stderr": float(estimate.stderr),
          "parameters": int(sum(np.size(x) for x in jax.tree.leaves(params)))}
