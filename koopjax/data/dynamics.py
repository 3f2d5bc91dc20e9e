"""Deterministic dynamical-system data for forecasting Koopman autoencoders (no downloads).

Every system produces one trajectory of a low-dimensional physical state ``s_t`` (d values) at
times ``t_n = n·dt``, n = 0..n_time−1, that is made high-dimensional as in the consistent-KAE
reference (docs/forecasting.md)::

    s̃_t = s_t + noise·ε_t,  ε_t ~ N(0, I)           (optional measurement noise)
    x_t = s̃_t Qᵀ,           Q (dim, d) orthonormal   (Q from the QR of a Gaussian matrix)
    x_t ← 2 (x_t − min x) / (max x − min x) − 1      (one scalar affine map onto [−1, 1])

The clean trajectory goes through the same lift and is scaled with its own min and max, as in
the reference (identical to the noisy one when noise = 0). The first ``n_train`` steps are the
training split, the rest the test split. Random numbers come from
``numpy.random.RandomState(seed)``, noise drawn first, as ``(d, n_time)``, then Q, so the
pendulum with seed 1 reproduces the reference data.

Systems (``SYSTEMS``):

- ``pendulum``: frictionless pendulum ``θ'' = −ω0² sin θ`` (ω0² = g/L = 9.81), in closed form
  with Jacobi elliptic functions; state (θ, θ'). θ0 = 2.4 (strongly nonlinear) or 0.8.
- ``damped_pendulum``: damped, driven pendulum ``θ'' = −γ θ' − ω0² sin θ + A cos(Ω t)``,
  integrated with classical 4th-order Runge-Kutta at step dt / substeps; state
  (θ, θ', cos Ωt, sin Ωt): the drive phase is observed, which makes the system autonomous.
- ``lorenz``: Lorenz-63 ``x' = σ(y − x), y' = x(ρ − z) − y, z' = xy − βz`` (σ = 10, ρ = 28,
  β = 8/3; chaotic), RK4 with substeps, started on the attractor after a burn-in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

GRAVITY = 9.81  # ω0² = g / L with L = 1, as in the reference


# ---------------------------------------------------------------------------------------------
# Jacobi elliptic functions (arithmetic-geometric mean; Abramowitz & Stegun 16.4 and 17.6)
# ---------------------------------------------------------------------------------------------

# The AGM converges quadratically: a few iterations reach a relative gap of one rounding error.
_AGM_TOLERANCE = 4 * np.finfo(np.float64).eps
_AGM_MAX_ITERATIONS = 32


def _check_parameter(m: float) -> float:
  m = float(m)
  if not 0.0 <= m < 1.0:
    raise ValueError(f"the elliptic parameter m must be in [0, 1); got {m}.")
  return m


def ellipk(m: float) -> float:
  """Complete elliptic integral of the first kind, ``K(m) = ∫_0^{π/2} dφ / √(1 − m sin²φ)``.

  Computed as ``K(m) = π / (2 AGM(1, √(1 − m)))``; matches `scipy.special.ellipk` to about
  1e-15 relative.

  Args:
    m: parameter, 0 <= m < 1 (m = k², k the modulus).

  Returns:
    K(m) as a Python float.
  """
  a, b = 1.0, np.sqrt(1.0 - _check_parameter(m))
  for _ in range(_AGM_MAX_ITERATIONS):
    if abs(a - b) <= _AGM_TOLERANCE * a:
      break
    a, b = 0.5 * (a + b), np.sqrt(a * b)
  return float(np.pi / (2.0 * a))


def ellipj(u: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Jacobi elliptic functions sn, cn, dn of argument u and parameter m.

  Descending AGM (A&S 16.4): ``a_0 = 1, b_0 = √(1 − m), c_0 = √m``;
  ``a_n = (a_{n−1} + b_{n−1}) / 2, b_n = √(a_{n−1} b_{n−1}), c_n = (a_{n−1} − b_{n−1}) / 2``
  until ``c_N`` is negligible; then ``φ_N = 2^N a_N u`` and
  ``φ_{n−1} = (φ_n + arcsin(c_n sin(φ_n) / a_n)) / 2``; ``sn = sin φ_0``, ``cn = cos φ_0``,
  ``dn = √(1 − m sn²)``. Matches `scipy.special.ellipj` to about 1e-12 for |u| <= 700.

  Args:
    u: argument, any shape (float64).
    m: parameter, 0 <= m < 1.

  Returns:
    (sn, cn, dn), each with the shape of u.
  """
  m = _check_parameter(m)
  u = np.asarray(u, np.float64)
  a, b, c = [1.0], np.sqrt(1.0 - m), [np.sqrt(m)]
  while abs(c[-1]) > _AGM_TOLERANCE * a[-1] and len(a) <= _AGM_MAX_ITERATIONS:
    a_prev = a[-1]
    a.append(0.5 * (a_prev + b))
    c.append(0.5 * (a_prev - b))
    b = np.sqrt(a_prev * b)
  n = len(a) - 1
  phi = 2.0**n * a[n] * u
  for i in range(n, 0, -1):
    phi = 0.5 * (phi + np.arcsin(c[i] * np.sin(phi) / a[i]))
  sn, cn = np.sin(phi), np.cos(phi)
  return sn, cn, np.sqrt(1.0 - m * sn**2)


# ---------------------------------------------------------------------------------------------
# Physical trajectories, shape (n_time, d)
# ---------------------------------------------------------------------------------------------

def pendulum_states(t: np.ndarray, theta0: float, omega0_sq: float = GRAVITY) -> np.ndarray:
  """Closed-form frictionless pendulum released at rest from angle θ0 (|θ0| < π).

  With ``S = sin(θ0 / 2)``, ``m = S²``, ``K = K(m)`` and ``ω0 = √(g/L)``::

      θ(t)  = 2 arcsin(S sn(K − ω0 t, m))
      θ'(t) = −2 S ω0 cn(K − ω0 t, m)

  (the reference's ``2 S (−ω0 cn dn) / √(1 − S² sn²)`` simplifies to the second line since
  ``dn² = 1 − m sn²``). The energy ``θ'²/2 + ω0² (1 − cos θ) = ω0² (1 − cos θ0)`` is constant.

  Args:
    t: times, shape (n,).
    theta0: initial angle in radians, 0 < |θ0| < π.
    omega0_sq: ω0² = g / L.

  Returns:
    States (θ, θ'), shape (n, 2), float64.
  """
  if not 0.0 < abs(theta0) < np.pi:
    raise ValueError(f"theta0 must satisfy 0 < |theta0| < pi (a swinging, not rotating, "
                     f"pendulum); got {theta0}.")
  s = np.sin(0.5 * theta0)
  omega0 = np.sqrt(omega0_sq)
  sn, cn, _ = ellipj(ellipk(s**2) - omega0 * np.asarray(t, np.float64), s**2)
  return np.stack([2.0 * np.arcsin(s * sn), -2.0 * s * omega0 * cn], axis=1)


def pendulum_energy(states: np.ndarray, omega0_sq: float = GRAVITY) -> np.ndarray:
  """Energy per unit mass and squared length, ``θ'²/2 + ω0² (1 − cos θ)``; states (..., 2)."""
  theta, velocity = states[..., 0], states[..., 1]
  return 0.5 * velocity**2 + omega0_sq * (1.0 - np.cos(theta))


def rk4(f: Callable[[float, np.ndarray], np.ndarray], y0: np.ndarray, dt: float, n_time: int,
        substeps: int = 10, t0: float = 0.0) -> np.ndarray:
  """Classical 4th-order Runge-Kutta, recording every ``dt`` with ``substeps`` steps between.

  Args:
    f: right-hand side ``f(t, y) -> y'``, y of shape (d,).
    y0: initial state, shape (d,).
    dt: sampling interval (the integration step is dt / substeps).
    n_time: number of recorded states (the first is y0).
    substeps: integration steps per recorded step.
    t0: initial time.

  Returns:
    States, shape (n_time, d), float64.
  """
  h = dt / substeps
  y = np.asarray(y0, np.float64).copy()
  out = np.empty((n_time, y.size))
  t = t0
  for n in range(n_time):
    out[n] = y
    for _ in range(substeps):
      k1 = f(t, y)
      k2 = f(t + 0.5 * h, y + 0.5 * h * k1)
      k3 = f(t + 0.5 * h, y + 0.5 * h * k2)
      k4 = f(t + h, y + h * k3)
      y = y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
      t += h
  return out


def damped_pendulum_states(t: np.ndarray, theta0: float, *, damping: float = 0.2,
                           drive_amplitude: float = 3.0, drive_frequency: float = 2.0,
                           omega0_sq: float = GRAVITY, substeps: int = 10) -> np.ndarray:
  """Damped, driven pendulum ``θ'' = −γ θ' − ω0² sin θ + A cos(Ω t)`` from rest at θ0.

  Integrated with `rk4` (step dt / substeps, dt = t[1] − t[0]). After the damped transient
  (time constant 2/γ) the motion locks onto the drive.

  Args:
    t: equally spaced times starting at 0, shape (n,).
    theta0: initial angle (radians); the initial velocity is 0.
    damping: γ. drive_amplitude: A. drive_frequency: Ω. omega0_sq: ω0² = g / L.
    substeps: RK4 steps per sample.

  Returns:
    States (θ, θ', cos Ωt, sin Ωt), shape (n, 4), float64.
  """
  t = np.asarray(t, np.float64)

  def rhs(time, y):
    return np.array([y[1], -damping * y[1] - omega0_sq * np.sin(y[0])
                     + drive_amplitude * np.cos(drive_frequency * time)])

  dt = float(t[1] - t[0]) if t.size > 1 else 1.0
  path = rk4(rhs, np.array([theta0, 0.0]), dt, t.size, substeps)
  phase = drive_frequency * t
  return np.concatenate([path, np.cos(phase)[:, None], np.sin(phase)[:, None]], axis=1)


def lorenz_states(t: np.ndarray, *, sigma: float = 10.0, rho: float = 28.0,
                  beta: float = 8.0 / 3.0, initial=(1.0, 1.0, 1.0), burn_in: float = 20.0,
                  substeps: int = 10) -> np.ndarray:
  """Lorenz-63 on its attractor: RK4 from ``initial`` for ``burn_in`` time units, then recorded.

  Args:
    t: equally spaced times starting at 0, shape (n,).
    sigma, rho, beta: the system's parameters (defaults: the chaotic regime).
    initial: state at time −burn_in.
    burn_in: time integrated before recording starts.
    substeps: RK4 steps per sample.

  Returns:
    States (x, y, z), shape (n, 3), float64.
  """
  t = np.asarray(t, np.float64)

  def rhs(_, y):
    return np.array([sigma * (y[1] - y[0]), y[0] * (rho - y[2]) - y[1],
                     y[0] * y[1] - beta * y[2]])

  dt = float(t[1] - t[0]) if t.size > 1 else 1.0
  warm = int(round(burn_in / dt))
  start = rk4(rhs, np.asarray(initial, np.float64), dt, warm + 1, substeps)[-1]
  return rk4(rhs, start, dt, t.size, substeps)


# ---------------------------------------------------------------------------------------------
# Lifted, scaled, split data
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Trajectory:
  """One lifted trajectory and its split.

  Attributes:
    train, test: observed (noisy) data, shapes (n_train, dim) and (n_time − n_train, dim),
      float32 in [−1, 1].
    train_clean, test_clean: the same without noise.
    states: clean physical states, shape (n_time, d), float64.
    t: times, shape (n_time,).
    lift: Q, shape (dim, d), orthonormal columns (x = s Qᵀ before scaling).
    info: the system's name and parameters.
  """
  train: np.ndarray
  test: np.ndarray
  train_clean: np.ndarray
  test_clean: np.ndarray
  states: np.ndarray
  t: np.ndarray
  lift: np.ndarray
  info: dict[str, Any]


def _scale(x: np.ndarray) -> np.ndarray:
  """One scalar affine map of all entries onto [−1, 1]."""
  low, span = float(np.min(x)), float(np.ptp(x))
  if span == 0:
    raise ValueError("cannot scale a constant trajectory to [-1, 1].")
  return 2.0 * (x - low) / span - 1.0


def lift(states: np.ndarray, *, dim: int = 64, noise: float = 0.0, n_train: int = 600,
         seed: int = 1, t: np.ndarray | None = None, info: dict[str, Any] | None = None
         ) -> Trajectory:
  """Lifts physical states to ``dim`` dimensions, scales to [−1, 1] and splits (see module).

  Args:
    states: clean states, shape (n_time, d), d <= dim.
    dim: observation dimension.
    noise: standard deviation of Gaussian noise added to the states before lifting.
    n_train: number of leading steps in the training split, 0 < n_train < n_time.
    seed: seed of ``numpy.random.RandomState`` (noise first, then Q).
    t: sample times, shape (n_time,) (default 0, 1, 2, ...).
    info: metadata stored on the result.

  Returns:
    `Trajectory`.
  """
  states = np.asarray(states, np.float64)
  if states.ndim != 2:
    raise ValueError(f"states must have shape (n_time, d); got {states.shape}.")
  n_time, d = states.shape
  if not 1 <= d <= dim:
    raise ValueError(f"dim must be >= the state dimension {d}; got dim={dim}.")
  if not 0 < n_train < n_time:
    raise ValueError(f"n_train must be in (0, n_time) = (0, {n_time}); got {n_train}.")
  if noise < 0:
    raise ValueError(f"noise must be >= 0; got {noise}.")
  rng = np.random.RandomState(seed)
  noisy = states + noise * rng.standard_normal((d, n_time)).T
  q, _ = np.linalg.qr(rng.standard_normal((dim, d)))
  x, x_clean = _scale(noisy @ q.T), _scale(states @ q.T)
  return Trajectory(
      train=x[:n_train].astype(np.float32), test=x[n_train:].astype(np.float32),
      train_clean=x_clean[:n_train].astype(np.float32),
      test_clean=x_clean[n_train:].astype(np.float32), states=states,
      t=np.arange(n_time, dtype=np.float64) if t is None else np.asarray(t, np.float64),
      lift=q, info=dict(info or {}))


SYSTEMS = ("pendulum", "damped_pendulum", "lorenz")


def generate(system: str, *, n_time: int = 2200, n_train: int = 600, dt: float = 0.1,
             dim: int = 64, noise: float = 0.0, seed: int = 1, **params: float) -> Trajectory:
  """Generates, lifts, scales and splits one trajectory of a named system.

  Args:
    system: one of `SYSTEMS`.
    n_time: number of samples (reference: 2200).
    n_train: leading samples in the training split (reference: 600).
    dt: sampling interval (reference pendulum: 0.1).
    dim: observation dimension (reference: 64).
    noise: state-noise standard deviation (reference: 0 or e.g. 0.03).
    seed: data seed (reference: 1).
    **params: the system's parameters: ``theta0`` for the pendulums (defaults 2.4 and 2.0);
      ``damping``, ``drive_amplitude``, ``drive_frequency``, ``substeps`` for
      damped_pendulum; ``sigma``, ``rho``, ``beta``, ``burn_in``, ``substeps`` for lorenz.

  Returns:
    `Trajectory` with ``info = {"system", "dt", **params}``.
  """
  if system not in SYSTEMS:
    raise ValueError(f"system must be one of {', '.join(SYSTEMS)}; got {system!r}.")
  if n_time < 2 or dt <= 0:
    raise ValueError(f"need n_time >= 2 and dt > 0; got n_time={n_time}, dt={dt}.")
  t = np.arange(n_time) * dt
  if system == "pendulum":
    params.setdefault("theta0", 2.4)
    states = pendulum_states(t, **params)
  elif system == "damped_pendulum":
    params.setdefault("theta0", 2.0)
    states = damped_pendulum_states(t, **params)
  else:
    states = lorenz_states(t, **params)
  info = {"system": system, "dt": dt, **params}
  return lift(states, dim=dim, noise=noise, n_train=n_train, seed=seed, t=t, info=info)


def windows(x: np.ndarray, length: int) -> np.ndarray:
  """All overlapping windows of ``length`` consecutive steps of a trajectory.

  ``out[i] = x[i : i + length]`` for i = 0..n − length (the reference's training examples
  x_0..x_s with length = s + 1).

  Args:
    x: trajectory, shape (n, dim).
    length: window length, 1 <= length <= n.

  Returns:
    Array of shape (n − length + 1, length, dim) (a copy).
  """
  n = x.shape[0]
  if not 1 <= length <= n:
    raise ValueError(f"window length must be in [1, {n}] (the trajectory length); got "
                     f"{length}.")
  index = np.arange(n - length + 1)[:, None] + np.arange(length)[None, :]
  return x[index]
