"""Figures written by runs: loss curves, reconstructions, swap grids, eigenvalue plots."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LOSS_KEYS = ("loss", "rec", "pred_x", "pred_z", "eig", "motion_invariance")


def loss_curves(history: Sequence[dict], path: pathlib.Path, keys=LOSS_KEYS) -> None:
  """Training curves (log scale) of the metrics in ``keys`` that the history has."""
  fig, ax = plt.subplots(figsize=(7, 4))
  steps = np.asarray([r["step"] for r in history])
  for key in keys:
    if history and key in history[0]:
      values = np.asarray([r[key] for r in history], np.float64)
      ax.plot(steps, np.maximum(values, 1e-12), label=key, lw=1)
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("value")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def video_grid(rows: Sequence[np.ndarray], labels: Sequence[str], path: pathlib.Path,
               title: str = "") -> None:
  """One row per video (T, H, W, C) in [0, 1] or uint8, frames left to right."""
  rows = [np.asarray(r, np.float32) / (255.0 if np.asarray(r).dtype == np.uint8 else 1.0)
          for r in rows]
  t = rows[0].shape[0]
  fig, axes = plt.subplots(len(rows), t, figsize=(1.1 * t + 1.6, 1.1 * len(rows) + 0.4),
                           squeeze=False)
  for i, (video, label) in enumerate(zip(rows, labels)):
    for j in range(t):
      ax = axes[i, j]
      ax.imshow(np.clip(video[j], 0, 1), interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      for spine in ax.spines.values():
        spine.set_visible(False)
    axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def complex_plane(ax, points: np.ndarray, title: str = "", min_limit: float = 1.1) -> None:
  """Unit circle, axes through 0, equal aspect and limits that show every finite point."""
  angle = np.linspace(0, 2 * np.pi, 400)
  ax.plot(np.cos(angle), np.sin(angle), color="0.6", lw=1, label="unit circle")
  finite = np.abs(points[np.isfinite(points)])
  limit = max(min_limit, 1.05 * float(np.max(finite, initial=0)))
  ax.set_xlim(-limit, limit)
  ax.set_ylim(-limit, limit)
  ax.set_aspect("equal")
  ax.axhline(0, color="0.85", lw=0.5)
  ax.axvline(0, color="0.85", lw=0.5)
  ax.set_xlabel("Re λ")
  ax.set_ylabel("Im λ")
  ax.legend(loc="lower left", fontsize=8)
  if title:
    ax.set_title(title, fontsize=9)


def eigenvalue_plot(eigenvalues: np.ndarray, static: np.ndarray, path: pathlib.Path,
                    labels: dict[int, str] | None = None, title: str = "") -> None:
  """Eigenvalues on the complex plane with the unit circle; static modes coloured apart.

  Args:
    eigenvalues: (k,) complex.
    static: (k,) bool mask of static modes.
    labels: optional mode index -> text written beside the point (e.g. the factor it carries).
  """
  eigenvalues, static = np.asarray(eigenvalues), np.asarray(static, bool)
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.scatter(eigenvalues.real[~static], eigenvalues.imag[~static], s=28, c="tab:blue",
             label=f"dynamic ({int((~static).sum())})")
  ax.scatter(eigenvalues.real[static], eigenvalues.imag[static], s=36, c="tab:red", marker="s",
             label=f"static ({int(static.sum())})")
  for index, text in (labels or {}).items():
    ax.annotate(text, (eigenvalues[index].real, eigenvalues[index].imag), fontsize=7,
                xytext=(3, 3), textcoords="offset points")
  complex_plane(ax, eigenvalues, title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def pick_swap_pairs(labels: dict[str, np.ndarray], count: int, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Pairs (target, donor) of rows that differ in action and in every static label given."""
  rng = np.random.default_rng(seed)
  n = len(next(iter(labels.values())))
  targets, donors = [], []
  for _ in range(50 * count):
    i, j = rng.integers(0, n, size=2)
    if all(labels[name][i] != labels[name][j] for name in labels):
      targets.append(i)
      donors.append(j)
      if len(targets) == count:
        break
  return np.asarray(targets), np.asarray(donors)


def write_skd_report(result, analysis_size: int = 0, pairs: int = 3) -> pathlib.Path:
  """Writes ``workdir/report/``: loss curves, reconstructions, a two-factor swap grid and the
  eigenvalues of C on the complex plane, C fitted on ``analysis_size`` test sequences (0: all,
  as `koopjax evaluate` does)."""
  import jax
  import jax.numpy as jnp

  from koopjax.eval import protocol
  from koopjax.models import skd

  cfg, out = result.cfg, result.workdir / "report"
  out.mkdir(parents=True, exist_ok=True)
  loss_curves(result.history, out / "loss_curves.png")

  test = skd.load_data(cfg, "test")
  n = min(analysis_size or len(test["video"]), len(test["video"]))
  pick = np.random.default_rng(0).choice(len(test["video"]), n, replace=False)
  video = test["video"][pick]
  variables = jax.device_get(skd.variables_of(result.state))
  analysis = skd.analyse_latents(jnp.asarray(protocol.encode_all(variables, video, cfg)), cfg)

  x_rec = np.asarray(skd.decode(variables, analysis.z[:4], cfg))
  rows, labels = [], []
  for i in range(4):
    rows += [video[i], x_rec[i]]
    labels += [f"input {i}", f"recon {i}"]
  video_grid(rows, labels, out / "reconstructions.png", "test reconstructions")

  label_names = [name for name in test if name not in ("video", "identity")]
  targets, donors = pick_swap_pairs({k: test[k][pick] for k in label_names}, pairs)
  swapped = np.asarray(skd.decode(variables, skd.swap_factors(analysis, targets, donors), cfg))
  rows, labels = [], []
  for i, (a, b) in enumerate(zip(targets, donors)):
    rows += [video[a], video[b], swapped[i]]
    labels += [f"A{i} (motion)", f"B{i} (identity)", f"A{i} motion\n+ B{i} identity"]
  video_grid(rows, labels, out / "swap_grid.png",
             "two-factor swap: static modes of B into A (Koopman eigen-coordinates)")

  eigenvalues = np.asarray(analysis.eig.eigenvalues)
  rule = (f"|λ − 1| < {cfg.analysis_static_radius:g}" if cfg.analysis_static_radius > 0
          else f"κ={cfg.static_size}, {cfg.static_mode}")
  eigenvalue_plot(eigenvalues, np.asarray(analysis.static), out / "eigenvalues.png",
                  title=f"eigenvalues of C (k={cfg.k}; S: {rule})")
  summary = {"step": int(np.asarray(result.state.step)),
             "final_loss": result.history[-1]["loss"] if result.history else None,
             "fitted_on": int(n), "static_modes": int(np.asarray(analysis.static).sum()),
             "eigenvalues": [[float(v.real), float(v.imag)] for v in eigenvalues]}
  (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
  return out
