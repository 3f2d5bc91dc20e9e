"""Linear probes: which Koopman modes carry which factor, without the decoder.

A swap moves a factor only if the factor lives where the swap looks: identity in the static
modes S (eigenvalues near 1), motion in the dynamic modes D. The judge-based metrics say
whether swaps succeed; these probes say why not, by reading the labels linearly off the
eigen-coordinates ``φ = z V`` of held-out sequences (latents z (N, T, k), C = V Λ V⁻¹):

* ``static_mean``: the time average of ``φ[:, :, S]`` (what a static factor should be);
* ``dynamic_mean``: the time average of ``φ[:, :, D]`` (should carry no static factor: a
  dynamic mode's coordinate decays or oscillates, so its time average is not a persistent
  code);
* ``dynamic_trajectory``: every frame of ``φ[:, :, D]`` (the motion should be here);
* ``all_trajectory``: every frame of every coordinate (what is linearly readable at all).

Complex coordinates enter as their real and imaginary parts. The probe is a one-vs-rest
ridge regression on standardised features, fitted on training sequences and scored on test
sequences (accuracy of the arg-max); chance is one over the number of classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# Probe inputs in report order: (name, which modes, how the frames are combined).
INPUTS = (
    ("static_mean", "static", "mean"),
    ("dynamic_mean", "dynamic", "mean"),
    ("dynamic_trajectory", "dynamic", "trajectory"),
    ("all_trajectory", "all", "trajectory"),
)
DESCRIPTIONS = {
    "static_mean": "S modes, time mean",
    "dynamic_mean": "D modes, time mean",
    "dynamic_trajectory": "D modes, every frame",
    "all_trajectory": "all modes, every frame",
}


def ridge_probe_accuracy(train_x, train_y, test_x, test_y, *, ridge: float = 1e-2) -> float:
  """Test accuracy of a one-vs-rest ridge-regression classifier (a linear probe).

  Features are standardised with the training mean and standard deviation; the weights
  ``W = (AᵀA + ridge·n·I)⁻¹ Aᵀ Y`` (A the standardised features with a column of ones, Y the
  one-hot labels, n training rows) and the prediction is ``argmax(B W)``.

  Args:
    train_x: (n, F) real features of the training rows.
    train_y: (n,) integer labels in [0, classes).
    test_x: (m, F) features of the test rows.
    test_y: (m,) integer labels.
    ridge: regularisation per training row (> 0).

  Returns:
    Fraction of test rows classified correctly.
  """
  train_x, test_x = np.asarray(train_x), np.asarray(test_x)
  train_y, test_y = np.asarray(train_y), np.asarray(test_y)
  if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
    raise ValueError(f"train_x and test_x must be (rows, features) with the same features; "
                     f"got shapes {train_x.shape} and {test_x.shape}.")
  if np.iscomplexobj(train_x) or np.iscomplexobj(test_x):
    raise TypeError("probe features must be real; split complex coordinates into real and "
                    "imaginary parts (`eigen_features` does).")
  for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
      raise ValueError(f"{name}_y must be integer labels of shape ({len(x)},); got dtype "
                       f"{y.dtype} and shape {y.shape}.")
  if not ridge > 0:
    raise ValueError(f"ridge must be > 0; got {ridge}.")
  mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
  a = np.c_[(train_x - mean) / scale, np.ones(len(train_x))]
  b = np.c_[(test_x - mean) / scale, np.ones(len(test_x))]
  classes = int(max(train_y.max(), test_y.max())) + 1
  w = np.linalg.solve(a.T @ a + ridge * len(a) * np.eye(a.shape[1]),
                      a.T @ np.eye(classes)[train_y])
  return float(np.mean(np.argmax(b @ w, axis=1) == test_y))


def eigen_features(z, V, modes, how: str) -> np.ndarray:
  """Real probe features from the eigen-coordinates ``φ = z V`` of some modes.

  Args:
    z: latents (N, T, k).
    V: (k, k) complex right eigenvectors of C (columns).
    modes: (k,) bool mask of the modes to use.
    how: ``"mean"`` (time average, (N, 2M)) or ``"trajectory"`` (every frame, (N, 2MT)),
      M the number of modes; real parts first, then imaginary parts.
  """
  z, V, modes = np.asarray(z), np.asarray(V), np.asarray(modes, bool)
  if z.ndim != 3 or V.shape != (z.shape[-1],) * 2 or modes.shape != (z.shape[-1],):
    raise ValueError(f"expected z (N, T, k), V (k, k) and modes (k,); got shapes {z.shape}, "
                     f"{V.shape} and {modes.shape}.")
  phi = (z @ V)[:, :, modes]
  if how == "mean":
    phi = phi.mean(axis=1)
  elif how == "trajectory":
    phi = phi.reshape(len(phi), -1)
  else:
    raise ValueError(f"how must be 'mean' or 'trajectory'; got {how!r}.")
  return np.concatenate([phi.real, phi.imag], axis=1)


def mode_probes(train_z, train_labels: Mapping[str, Any], test_z,
                test_labels: Mapping[str, Any], V, static, *, ridge: float = 1e-2
                ) -> dict[str, dict[str, float]]:
  """Linear-probe accuracy of every factor from every probe input of `INPUTS`.

  Args:
    train_z, test_z: latents (n, T, k) and (m, T, k).
    train_labels, test_labels: factor -> integer labels, (n,) and (m,).
    V: (k, k) eigenvectors of C; static: (k,) bool mask of S.
    ridge: see `ridge_probe_accuracy`.

  Returns:
    {input name: {factor: test accuracy}}, plus ``"chance"``: {factor: 1 / classes}.
  """
  static = np.asarray(static, bool)
  masks = {"static": static, "dynamic": ~static, "all": np.ones_like(static)}
  out = {}
  for name, modes, how in INPUTS:
    if not masks[modes].any():
      continue
    train_x = eigen_features(train_z, V, masks[modes], how)
    test_x = eigen_features(test_z, V, masks[modes], how)
    out[name] = {factor: ridge_probe_accuracy(train_x, train_labels[factor], test_x,
                                              test_labels[factor], ridge=ridge)
                 for factor in test_labels}
  out["chance"] = {factor: 1.0 / (int(max(np.max(train_labels[factor]),
                                          np.max(test_labels[factor]))) + 1)
                   for factor in test_labels}
  return out
