"""Tests of static-mode selection, SKD's spectral loss, eigeninit, eigenloss, custom penalties.

Reference values come from plain-Python/NumPy re-implementations written from the spec
(skd-spec.md section 1.4), independent of the library code.
"""

import cmath
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads

import koopjax as kj

# --- independent references -------------------------------------------------------------------


def reference_static_set(eigenvalues, n_static, mode):
  """The reference code's walk: from the most static eigenvalue, κ times, step 1 for a real
  eigenvalue and 2 for a complex one (its conjugate partner comes next)."""
  def key(lam):
    if mode in ("norm", "none"):
      return lam.real**2 + lam.imag**2
    if mode == "real":
      return lam.real
    return -abs(lam - 1)

  order = sorted(range(len(eigenvalues)), key=lambda i: -key(eigenvalues[i]))
  position = 0
  for _ in range(n_static):
    if position >= len(order):
      break
    position += 1 if eigenvalues[order[position]].imag == 0 else 2
  return set(order[:position])


def reference_loss(c, n_static, static_mode, dynamic_mode, theta=0.5, beta=0.6, rho=0.5):
  lam = [complex(x) for x in np.linalg.eigvals(np.asarray(c, np.float64))]
  static = reference_static_set(lam, n_static, static_mode)
  dynamic = [i for i in range(len(lam)) if i not in static]

  def mean(values):
    return sum(values) / len(values) if values else 0.0

  static_terms = {
      "norm": [(abs(lam[i])**2 - 1)**2 for i in static],
      "real": [(lam[i].real - 1)**2 for i in static],
      "ball": [abs(lam[i] - 1)**2 for i in static],
      "none": [],
  }[static_mode]
  dynamic_terms = {
      "strict": [(abs(lam[i])**2 - rho**2)**2 for i in dynamic],
      "thresh": [abs(lam[i])**2 if abs(lam[i])**2 > theta else 0.0 for i in dynamic],
      "ball": [(2 - abs(lam[i] - 1)) if abs(lam[i] - 1) < beta else 0.0 for i in dynamic],
      "real": [lam[i].real if lam[i].real > theta else 0.0 for i in dynamic],
      "none": [],
  }[dynamic_mode]
  return mean(static_terms), mean(dynamic_terms)


def random_spectrum(rng, k):
  """k eigenvalues: real ones and exact conjugate pairs, randomly mixed, in float32."""
  values = []
  while len(values) < k:
    if len(values) <= k - 2 and rng.random() < 0.6:
      lam = complex(*rng.uniform(-1.2, 1.2, size=2))
      values += [lam, lam.conjugate()]
    else:
      values.append(complex(rng.uniform(-1.2, 1.2), 0.0))
  return np.asarray(values, np.complex64)


def operator_with_spectrum(eigenvalues, seed):
  """A real matrix with the given (conjugate-closed) spectrum: real Schur blocks, similarity."""
  rng = np.random.default_rng(seed)
  k = len(eigenvalues)
  block = np.zeros((k, k))
  i = 0
  while i < k:
    lam = complex(eigenvalues[i])
    if lam.imag == 0:
      block[i, i] = lam.real
      i += 1
    else:
      block[i:i + 2, i:i + 2] = [[lam.real, lam.imag], [-lam.imag, lam.real]]
      i += 2
  basis = np.eye(k) + 0.3 * rng.normal(size=(k, k))
  return np.linalg.solve(basis, block @ basis)


# A spectrum far from every threshold and with distinct keys in every mode.
SEPARATED = [1.0, 0.93, 0.2, -0.35, cmath.rect(0.97, 0.15), cmath.rect(0.97, -0.15),
             cmath.rect(0.75, 1.1), cmath.rect(0.75, -1.1), cmath.rect(0.3, 2.2),
             cmath.rect(0.3, -2.2)]

# --- static_mask ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["norm", "real", "ball"])
def test_static_mask_matches_reference_walk(mode):
  rng = np.random.default_rng({"norm": 0, "real": 1, "ball": 2}[mode])
  mask_fn = jax.jit(kj.static_mask, static_argnums=(1, 2))
  for trial in range(200):
    k = int(rng.integers(2, 16))
    if trial % 2:  # exact conjugate pairs, shuffled: input order must not matter
      eigenvalues = rng.permutation(random_spectrum(rng, k))
    else:  # spectra of random real matrices, as LAPACK returns them
      eigenvalues = np.asarray(np.linalg.eigvals(rng.normal(size=(k, k))), np.complex64)
    n_static = int(rng.integers(0, k + 1))
    mask = np.asarray(mask_fn(jnp.asarray(eigenvalues), n_static, mode))
    expected = reference_static_set([complex(x) for x in eigenvalues], n_static, mode)
    assert set(np.flatnonzero(mask)) == expected, (trial, eigenvalues, n_static)
    total_components = sum(1 if x.imag == 0 else 0.5 for x in eigenvalues)
    chosen_components = sum(1 if eigenvalues[i].imag == 0 else 0.5 for i in expected)
    assert chosen_components == min(n_static, total_components)


def test_static_mask_counts_pairs_as_one_component():
  eigenvalues = jnp.asarray([0.5, cmath.rect(0.99, 0.3), cmath.rect(0.99, -0.3), 0.98],
                            jnp.complex64)
  np.testing.assert_array_equal(kj.static_mask(eigenvalues, 1, "norm"),
                                [False, True, True, False])
  np.testing.assert_array_equal(kj.static_mask(eigenvalues, 2, "norm"),
                                [False, True, True, True])
  np.testing.assert_array_equal(kj.static_mask(eigenvalues, 0, "norm"), [False] * 4)


def test_near_one_mask_is_the_disk_around_one():
  rng = np.random.default_rng(5)
  mask_fn = jax.jit(kj.near_one_mask, static_argnums=1)
  for trial in range(50):
    eigenvalues = np.asarray(np.linalg.eigvals(rng.normal(size=(12, 12)) / 3.5), np.complex64)
    radius = float(rng.uniform(0.05, 1.5))
    mask = np.asarray(mask_fn(jnp.asarray(eigenvalues), radius))
    expected = [abs(complex(x) - 1) < radius for x in eigenvalues]
    np.testing.assert_array_equal(mask, expected)
    for i in np.flatnonzero(eigenvalues.imag):  # a conjugate pair is kept or dropped whole
      partner = np.argmin(np.abs(eigenvalues - np.conj(eigenvalues[i])))
      assert mask[i] == mask[partner]
  # The case that motivated it: ten modes at 1 ± 0.05, the next at 0.8; κ = 8 real
  # components leave two of the ten in D, the radius keeps all ten.
  spectrum = jnp.asarray([1.0, 0.999, 0.998, 0.99, 0.985, 0.98, 0.975, 0.97, 0.96, 0.95,
                          0.8, 0.3, -0.9, 0.05 + 0.8j, 0.05 - 0.8j], jnp.complex64)
  assert int(kj.static_mask(spectrum, 8, "ball").sum()) == 8
  np.testing.assert_array_equal(kj.near_one_mask(spectrum, 0.1), [True] * 10 + [False] * 5)


@pytest.mark.parametrize("radius, error", [(0.0, ValueError), (-0.1, ValueError),
                                           (float("nan"), ValueError), (True, TypeError),
                                           (jnp.float32(0.1), TypeError)])
def test_near_one_mask_rejects_bad_radius(radius, error):
  with pytest.raises(error, match="radius must be a finite number > 0"):
    kj.near_one_mask(jnp.ones((3,), jnp.complex64), radius)


# --- skd_spectral_loss ------------------------------------------------------------------------


@pytest.mark.parametrize("static_mode", kj.STATIC_MODES)
@pytest.mark.parametrize("dynamic_mode", kj.DYNAMIC_MODES)
def test_spectral_loss_matches_numpy(static_mode, dynamic_mode):
  c = operator_with_spectrum(np.asarray(SEPARATED, np.complex128), seed=3)
  for n_static in (0, 2, 3, 7):
    loss, parts = jax.jit(kj.skd_spectral_loss, static_argnames=(
        "n_static", "static_mode", "dynamic_mode"))(
            jnp.asarray(c, jnp.float32), n_static=n_static, static_mode=static_mode,
            dynamic_mode=dynamic_mode)
    static, dynamic = reference_loss(c, n_static, static_mode, dynamic_mode)
    np.testing.assert_allclose(parts["static"], static, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(parts["dynamic"], dynamic, atol=2e-5, rtol=1e-4)
    np.testing.assert_allclose(loss, static + dynamic, atol=3e-5, rtol=1e-4)


@pytest.mark.parametrize("static_mode, dynamic_mode", [
    ("norm", "strict"), ("real", "thresh"), ("ball", "ball"), ("ball", "real"),
    ("none", "strict"), ("norm", "none")])
def test_spectral_loss_gradients(static_mode, dynamic_mode):
  with jax.enable_x64(True):
    c = jnp.asarray(operator_with_spectrum(np.asarray(SEPARATED), seed=4), jnp.float64)

    def loss(c):
      return kj.skd_spectral_loss(c, n_static=3, static_mode=static_mode,
                                  dynamic_mode=dynamic_mode)[0]

    grad = jax.jit(jax.grad(loss))(c)
    assert np.isfinite(np.asarray(grad)).all()
    assert float(jnp.abs(grad).sum()) > 0 or dynamic_mode == "none" and static_mode == "none"
    check_grads(loss, (c,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-5, eps=1e-6)


def test_spectral_loss_gradient_is_finite_in_float32_training_case():
  c = jnp.asarray(np.random.default_rng(5).normal(size=(40, 40)) / 6, jnp.float32)
  grad = jax.grad(lambda c: kj.skd_spectral_loss(c, n_static=7)[0])(c)
  assert np.isfinite(np.asarray(grad)).all()


# --- eigenloss and user penalties -------------------------------------------------------------


def test_eigenloss_values_and_gradients():
  c = operator_with_spectrum(np.asarray(SEPARATED), seed=6)
  moduli = np.abs(np.linalg.eigvals(c))
  with jax.enable_x64(True):
    c64 = jnp.asarray(c, jnp.float64)
    np.testing.assert_allclose(kj.eigenloss(c64), np.sum((moduli - 1)**2), rtol=1e-10)
    np.testing.assert_allclose(kj.eigenloss(c64, "stability", radius=0.8),
                               np.sum(np.maximum(moduli - 0.8, 0)**2), rtol=1e-10)
    for kind in kj.EIGENLOSS_KINDS:
      check_grads(lambda c: kj.eigenloss(c, kind, radius=0.8), (c64,), order=1,
                  modes=("fwd", "rev"), atol=1e-6, rtol=1e-5, eps=1e-6)
  # float32, the training dtype: close to the float64 value
  np.testing.assert_allclose(kj.eigenloss(jnp.asarray(c, jnp.float32)),
                             np.sum((moduli - 1)**2), rtol=5e-3)
  assert np.isfinite(np.asarray(jax.grad(kj.eigenloss)(jnp.zeros((3, 3))))).all()


def test_user_penalty_of_eigenvalues_and_eigenvectors_under_jit():
  with jax.enable_x64(True):
    c = jnp.asarray(operator_with_spectrum(np.asarray(SEPARATED), seed=7), jnp.float64)

    radius_penalty = kj.spectral_penalty(
        lambda lam: jnp.sum(jnp.maximum(jnp.abs(lam) - 0.9, 0.0)**2))
    np.testing.assert_allclose(
        radius_penalty(c), np.sum(np.maximum(np.abs(np.linalg.eigvals(c)) - 0.9, 0)**2))
    grad = jax.jit(jax.grad(radius_penalty))(c)
    assert np.isfinite(np.asarray(grad)).all()
    check_grads(radius_penalty, (c,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6,
                eps=1e-6)

    def localisation(lam, v):
      # scale-invariant: each eigenvector's normalised energy per coordinate
      energy = jnp.abs(v)**2
      energy = energy / jnp.sum(energy, axis=0, keepdims=True)
      return jnp.sum(energy**2 * jnp.abs(lam)[None, :])

    vector_penalty = kj.spectral_penalty(localisation, with_eigenvectors=True)
    w, v = np.linalg.eig(np.asarray(c))
    e = np.abs(v)**2 / np.sum(np.abs(v)**2, axis=0)
    np.testing.assert_allclose(vector_penalty(c), np.sum(e**2 * np.abs(w)[None]), rtol=1e-10)
    assert np.isfinite(np.asarray(jax.jit(jax.grad(vector_penalty))(c))).all()
    check_grads(vector_penalty, (c,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6, eps=1e-6)


# --- eigeninit --------------------------------------------------------------------------------


def _component_moduli(c):
  """Moduli of one eigenvalue per component (real ones and the Im > 0 member of each pair)."""
  lam = np.linalg.eigvals(np.asarray(c, np.float64))
  return np.abs(lam[lam.imag >= 0])


def test_eigeninit_unit_circle_is_real_with_unit_moduli():
  for seed in range(3):
    c = kj.eigeninit(jax.random.key(seed), 24, "unit_circle")
    assert c.shape == (24, 24) and c.dtype == jnp.float32
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(np.asarray(c, np.float64))), 1.0,
                               atol=1e-5)
  a = kj.eigeninit(jax.random.key(1), 8, "disk")
  b = kj.eigeninit(jax.random.key(1), 8, "disk")
  np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("distribution, params, cdf", [
    ("disk", {"radius": 1.0}, lambda r: np.clip(r, 0, 1)**2),
    ("ring", {"inner": 0.5, "outer": 1.0}, lambda r: np.clip((r**2 - 0.25) / 0.75, 0, 1)),
    ("gaussian", {"mean": 1.0, "std": 0.1}, scipy.stats.norm(1.0, 0.1).cdf),
])
def test_eigeninit_moduli_follow_the_law(distribution, params, cdf):
  moduli = np.concatenate([
      _component_moduli(kj.eigeninit(jax.random.key(s), 120, distribution, **params))
      for s in range(4)])
  assert scipy.stats.kstest(moduli, cdf).pvalue > 1e-3


def test_eigeninit_spike_and_slab_fraction():
  theta = 0.3
  moduli = np.concatenate([
      _component_moduli(kj.eigeninit(jax.random.key(s), 120, "spike_and_slab", theta=theta))
      for s in range(4)])
  at_one = np.abs(moduli - 1) < 1e-4
  n = len(moduli)
  assert abs(at_one.mean() - (1 - theta)) < 4 * math.sqrt(theta * (1 - theta) / n)
  assert scipy.stats.kstest(moduli[~at_one], "uniform").pvalue > 1e-3


# --- gradient clipping on one path -----------------------------------------------------------


def test_clip_gradient_norm_bounds_only_its_path():
  x = jnp.asarray([3.0, -4.0])

  def loss(x, max_norm):
    # the clipped path gets gradient 10 * (1, 1); the unclipped path adds (2 x)
    return jnp.sum(10.0 * kj.clip_gradient_norm(x, max_norm)) + jnp.sum(x**2)

  np.testing.assert_allclose(kj.clip_gradient_norm(x, 1.0), x)
  grad = jax.jit(jax.grad(loss), static_argnums=1)(x, 1.0)
  np.testing.assert_allclose(grad, np.full(2, 1 / math.sqrt(2)) + 2 * np.asarray(x), rtol=1e-6)
  np.testing.assert_allclose(jax.grad(loss)(x, 100.0), 10.0 + 2 * np.asarray(x), rtol=1e-6)
  assert np.isfinite(np.asarray(jax.grad(lambda x: jnp.sum(kj.clip_gradient_norm(x, 1.0) * 0))(
      x))).all()


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("call, error, words", [
    (lambda: kj.static_mask(jnp.ones(4, jnp.complex64), 5, "norm"), ValueError,
     "n_static must be in [0, 4]"),
    (lambda: kj.static_mask(jnp.ones(4, jnp.complex64), 2, "max"), ValueError, "'ball'"),
    (lambda: kj.static_mask(jnp.ones(4, jnp.complex64), 1.5, "norm"), TypeError, "integer"),
    (lambda: kj.skd_spectral_loss(jnp.eye(3), n_static=1, dynamic_mode="soft"), ValueError,
     "dynamic_mode must be one of"),
    (lambda: kj.skd_spectral_loss(jnp.eye(3, dtype=jnp.int32), n_static=1), TypeError,
     "floating-point"),
    (lambda: kj.skd_spectral_loss(jnp.eye(3), n_static=4), ValueError, "n_static"),
    (lambda: kj.eigenloss(jnp.eye(3), "circle"), ValueError, "'unit_circle'"),
    (lambda: kj.eigeninit(jax.random.key(0), 4, "beta"), ValueError, "'spike_and_slab'"),
    (lambda: kj.eigeninit(jax.random.key(0), 4, "disk", radious=2.0), TypeError, "radious"),
])
def test_bad_input_gives_clear_errors(call, error, words):
  with pytest.raises(error) as info:
    call()
  assert words in str(info.value)
