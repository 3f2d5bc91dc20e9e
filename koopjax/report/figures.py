"""Every figure koopjax draws (matplotlib, Agg backend): loss curves, video grids, eigenvalues
against the unit circle, rollout errors.

Each public function takes the output ``path`` first and the data to draw after it, so an
evaluator can describe a figure as data (`koopjax.eval.Figure`) and `koopjax.report.write`
draws it.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

def loss_curves(path: pathlib.Path, history: Sequence[dict], keys: Sequence[str]) -> None:
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


def video_grid(path: pathlib.Path, rows: Sequence[np.ndarray], labels: Sequence[str],
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


def _unit_circle(ax, colour: str, label: str | None = None) -> None:
  angle = np.linspace(0, 2 * np.pi, 400)
  ax.plot(np.cos(angle), np.sin(angle), color=colour, lw=1, label=label)


def complex_plane(ax, points: np.ndarray, title: str = "", min_limit: float = 1.1) -> None:
  """Unit circle, axes through 0, equal aspect and limits that show every finite point."""
  _unit_circle(ax, colour="0.6", label="unit circle")
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


def eigenvalue_plot(path: pathlib.Path, eigenvalues: np.ndarray, static: np.ndarray,
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


def factor_eigenvalues(path: pathlib.Path, eigenvalues, static, attribution: Mapping[str, Any]
                       ) -> None:
  """Eigenvalues of C coloured by the factor their component carries
  (`koopjax.eval.swaps.attribute_modes`).

  Left: the complex plane with the unit circle; right: a zoom on the static modes (near 1),
  where the factors crowd. Squares are static modes, circles dynamic ones; grey: no factor.
  """
  eigenvalues, static = np.asarray(eigenvalues), np.asarray(static, bool)
  head_of = np.full(len(eigenvalues), None, object)
  for modes, head in zip(attribution["components"], attribution["component_head"]):
    head_of[modes] = head
  colours = {h: plt.get_cmap("tab10")(i % 10) for i, h in enumerate(attribution["heads"])}
  fig, axes = plt.subplots(1, 2, figsize=(10, 5))
  for ax, zoom in zip(axes, (False, True)):
    _unit_circle(ax, colour="0.7")
    labelled = set()
    for head in [None, *attribution["heads"]]:
      name = head or "no factor"
      for is_static, marker in ((True, "s"), (False, "o")):
        pick = np.asarray([h == head for h in head_of]) & (static == is_static)
        if pick.any():
          ax.scatter(eigenvalues.real[pick], eigenvalues.imag[pick], marker=marker, s=40,
                     color=colours.get(head, "0.6"), edgecolors="k", linewidths=0.4,
                     label=None if name in labelled else name)
          labelled.add(name)
    if zoom and static.any():
      points = eigenvalues[static]
      pad = max(0.02, 0.15 * float(np.ptp(points.real) + np.ptp(points.imag)))
      ax.set_xlim(points.real.min() - pad, points.real.max() + pad)
      ax.set_ylim(points.imag.min() - pad, points.imag.max() + pad)
      ax.set_title("zoom on the static modes", fontsize=9)
    else:
      limit = max(1.1, float(np.max(np.abs(eigenvalues))) * 1.05)
      ax.set_xlim(-limit, limit)
      ax.set_ylim(-limit, limit)
      ax.set_aspect("equal")
      ax.set_title("eigenvalues of C by attributed factor (■ static, ● dynamic)", fontsize=9)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.grid(alpha=0.3)
  axes[0].legend(loc="lower left", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def error_band(path: pathlib.Path, errors: np.ndarray, title: str) -> None:
  """Relative error per prediction step of many rollouts (n, steps): mean and 5–95 % band."""
  steps = np.arange(1, errors.shape[1] + 1)
  fig, ax = plt.subplots(figsize=(7, 4))
  ax.fill_between(steps, np.nanquantile(errors, 0.05, axis=0),
                  np.nanquantile(errors, 0.95, axis=0), alpha=0.25, color="tab:blue",
                  label="5-95 %")
  ax.plot(steps, np.nanmean(errors, axis=0), color="tab:blue", lw=1.5, label="mean")
  ax.set_xlabel("prediction step")
  ax.set_ylabel("relative L2 error")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def operator_eigenvalues(path: pathlib.Path, forward: np.ndarray,
                         backward_inverse: np.ndarray | None, title: str) -> None:
  """λ(C) of a forward operator and, when given, 1/λ(D) of its backward operator."""
  fig, ax = plt.subplots(figsize=(5, 5))
  ax.scatter(forward.real, forward.imag, s=36, c="tab:red", label="λ(C)", zorder=3)
  if backward_inverse is not None:
    ax.scatter(backward_inverse.real, backward_inverse.imag, s=60, facecolors="none",
               edgecolors="tab:blue", label="1/λ(D)", zorder=2)
  points = forward if backward_inverse is None else np.concatenate([forward, backward_inverse])
  complex_plane(ax, points, title, min_limit=1.15)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def matrix_spectra(path: pathlib.Path, eigenvalues: Mapping[str, np.ndarray], title: str = ""
                   ) -> None:
  """Eigenvalues of continuous-time matrices (name -> (n,) complex) against the imaginary
  axis: left of it, ``dh/dt = M h`` decays."""
  fig, ax = plt.subplots(figsize=(5.5, 5))
  for (name, values), marker in zip(eigenvalues.items(), "os^v"):
    values = np.asarray(values)
    ax.scatter(values.real, values.imag, s=22, marker=marker, alpha=0.8,
               label=f"{name}: max Re λ = {values.real.max():.3g}")
  ax.axvline(0, color="0.3", lw=1)
  ax.axhline(0, color="0.85", lw=0.5)
  ax.set_xlabel("Re λ")
  ax.set_ylabel("Im λ")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def metric_traces(path: pathlib.Path, history: Sequence[dict], keys: Sequence[str],
                  ylabel: str = "value", title: str = "") -> None:
  """Logged metrics against the step, on a linear scale (e.g. max Re λ, which can be < 0)."""
  fig, ax = plt.subplots(figsize=(7, 4))
  steps = np.asarray([r["step"] for r in history])
  for key in keys:
    ax.plot(steps, [r[key] for r in history], label=key, lw=1)
  ax.axhline(0, color="0.3", lw=0.8)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.grid(alpha=0.3)
  ax.legend()
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def noise_curves(path: pathlib.Path, curves: Mapping[str, Sequence[Mapping[str, float]]],
                 title: str = "accuracy under Gaussian input noise") -> None:
  """Test accuracy against the input noise σ, one line per model (name -> [{sigma,
  accuracy}, ...], or [{sigma, mean, std}, ...] for several seeds)."""
  fig, ax = plt.subplots(figsize=(6, 4))
  for name, points in curves.items():
    sigma = np.asarray([p["sigma"] for p in points])
    mean = np.asarray([p.get("accuracy", p.get("mean")) for p in points])
    ax.plot(sigma, 100 * mean, marker="o", lw=1.2, label=name)
    if "std" in points[0]:
      std = np.asarray([p["std"] for p in points])
      ax.fill_between(sigma, 100 * (mean - std), 100 * (mean + std), alpha=0.15)
  ax.set_xlabel("noise σ")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def horizon_errors(path: pathlib.Path, errors: Sequence[float], title: str = "") -> None:
  """Relative error of k-step linear predictions against k."""
  fig, ax = plt.subplots(figsize=(6, 4))
  ax.plot(np.arange(1, len(errors) + 1), errors, marker="o", lw=1.2)
  ax.set_xlabel("prediction steps k")
  ax.set_ylabel("relative error of Zp_t C^k")
  ax.set_title(title, fontsize=9)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def token_heatmap(path: pathlib.Path, words: Sequence[Sequence[str]], roles: np.ndarray,
                  scores: np.ndarray, modes: Sequence[str]) -> None:
  """Per-token scores of a few sequences, one panel per mode; sentiment-bearing words bold
  (green: positive, red: negative).

  Args:
    words: per sequence, its words.
    roles: (n, T) in {−1, 0, 1}.
    scores: (n, T, m) per token and mode.
    modes: m panel titles.
  """
  n, m = len(words), len(modes)
  width = max(len(w) for w in words)
  fig, axes = plt.subplots(m, 1, figsize=(min(0.9 * width + 1, 24), 0.55 * n * m + 0.6 * m),
                           squeeze=False)
  for ax, j, title in zip(axes[:, 0], range(m), modes):
    grid = np.full((n, width), np.nan)
    for i, sentence in enumerate(words):
      row = scores[i, :len(sentence), j]
      grid[i, :len(sentence)] = row / max(float(np.max(row)), 1e-12)
    ax.imshow(grid, cmap="Blues", vmin=0, vmax=1.6, aspect="auto")  # words stay legible
    for i, sentence in enumerate(words):
      for t, word in enumerate(sentence):
        role = int(roles[i, t])
        ax.text(t, i, word, ha="center", va="center", fontsize=6,
                color={1: "darkgreen", -1: "darkred"}.get(role, "black"),
                fontweight="bold" if role else "normal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=130)
  plt.close(fig)


def median_bands(path: pathlib.Path, curves: Mapping[str, np.ndarray], title: str = "") -> None:
  """One panel per set of curves (name -> (n, T)): the median and ± the median absolute
  deviation; the first set ("input") is drawn in grey in every panel."""
  names = list(curves)
  reference = names[0]
  fig, axes = plt.subplots(1, len(names) - 1, figsize=(3.2 * (len(names) - 1), 3),
                           sharey=True, squeeze=False)

  def band(ax, values, colour, label):
    values = np.asarray(values)
    median = np.median(values, axis=0)
    mad = np.median(np.abs(values - median), axis=0)
    steps = np.arange(values.shape[1])
    ax.plot(steps, median, color=colour, lw=1.2, label=label)
    ax.fill_between(steps, median - mad, median + mad, color=colour, alpha=0.2)

  for ax, name in zip(axes[0], names[1:]):
    band(ax, curves[reference], "0.5", reference)
    band(ax, curves[name], "tab:blue", name)
    ax.set_title(name, fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def score_histograms(path: pathlib.Path, scores: Mapping[str, np.ndarray], threshold: float,
                     title: str = "") -> None:
  """Histograms of anomaly scores by group, with the decision threshold."""
  fig, ax = plt.subplots(figsize=(6, 4))
  everything = np.concatenate([np.asarray(v) for v in scores.values()])
  bins = np.linspace(everything.min(), np.quantile(everything, 0.99), 60)
  for name, values in scores.items():
    ax.hist(values, bins=bins, alpha=0.5, density=True, label=f"{name} ({len(values)})")
  ax.axvline(threshold, color="k", lw=1, label="threshold")
  ax.set_xlabel("score")
  ax.set_ylabel("density")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
