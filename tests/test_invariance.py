"""Tests of the motion-invariance loss and the colour distortion it is trained with.

References are NumPy re-implementations of the documented formulas.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import koopjax as kj
from koopjax.data.augment import distort_colours


def reference_loss(d, d_other):
  return np.sum((d - d_other)**2) / (0.5 * (np.sum(d**2) + np.sum(d_other**2)) + 1e-8)


def test_loss_matches_reference_and_is_scale_free():
  rng = np.random.default_rng(0)
  d, d_other = rng.normal(size=(2, 5, 7, 6))
  value = kj.motion_invariance_loss(jnp.asarray(d), jnp.asarray(d_other))
  np.testing.assert_allclose(value, reference_loss(d, d_other), rtol=1e-5)
  # shrinking both motions does not lower it
  np.testing.assert_allclose(kj.motion_invariance_loss(jnp.asarray(1e-3 * d),
                                                       jnp.asarray(1e-3 * d_other)),
                             value, rtol=1e-4)
  # Bounds of the docstring: 2 for orthogonal equal-size parts, 4 for opposite ones.
  np.testing.assert_allclose(kj.motion_invariance_loss(jnp.asarray(d), jnp.asarray(-d)), 4.0,
                             rtol=1e-6)
  e, e_other = np.zeros((2, 1, 2, 2))
  e[0, :, 0] = [1, -1]
  e_other[0, :, 1] = [1, -1]
  np.testing.assert_allclose(kj.motion_invariance_loss(jnp.asarray(e), jnp.asarray(e_other)),
                             2.0, rtol=1e-6)


def test_temporal_deviations_drop_the_time_constant_part():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(5, 7, 6))
  np.testing.assert_allclose(kj.temporal_deviations(jnp.asarray(z)),
                             z - z.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
  static = rng.normal(size=(5, 1, 6))  # a different static part per sequence costs nothing
  loss = kj.motion_invariance_loss(kj.temporal_deviations(jnp.asarray(z)),
                                   kj.temporal_deviations(jnp.asarray(z + static)))
  assert float(loss) < 1e-10


def test_dynamic_part_is_the_component_on_the_dynamic_modes():
  # C = W⁻¹ M W with M = diag(I_3, D): rows z = [y_s, y_d] W evolve as y M, so the dynamic
  # part of z is [0, y_d] W, whatever W is (built here without any eigendecomposition).
  rng = np.random.default_rng(2)
  w = rng.normal(size=(7, 7))
  dyn = np.array([[0.3, -0.6, 0, 0], [0.6, 0.3, 0, 0], [0, 0, -0.5, 0.2], [0, 0, 0, 0.1]])
  m = np.zeros((7, 7))
  m[:3, :3] = np.eye(3)
  m[3:, 3:] = dyn
  c = np.linalg.solve(w, m @ w)
  decomposition = kj.eig(jnp.asarray(c))
  static = kj.near_one_mask(decomposition.eigenvalues, 0.1)
  assert int(static.sum()) == 3
  y = rng.normal(size=(4, 5, 7))
  expected = np.concatenate([np.zeros((4, 5, 3)), y[..., 3:]], axis=-1) @ w
  out = kj.dynamic_part(jnp.asarray(y @ w, jnp.float32), decomposition.V, decomposition.U,
                        static)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, expected, rtol=1e-3, atol=1e-3)
  check_grads(lambda z: kj.dynamic_part(z, decomposition.V, decomposition.U, static),
              (jnp.asarray(y @ w, jnp.float32),), order=1, modes=("rev",), atol=1e-2,
              rtol=1e-2)


def test_loss_gradients():
  rng = np.random.default_rng(1)
  d, d_other = (jnp.asarray(a) for a in rng.normal(size=(2, 3, 4, 5)))
  check_grads(kj.motion_invariance_loss, (d, d_other), order=2, modes=("rev",), atol=1e-2,
              rtol=1e-2)


def test_loss_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match=r"same shape.*\(2, 4, 3\) and \(2, 4, 5\)"):
    kj.motion_invariance_loss(jnp.zeros((2, 4, 3)), jnp.zeros((2, 4, 5)))
  with pytest.raises(ValueError, match=r"z must have shape \(batch, frames, k\)"):
    kj.temporal_deviations(jnp.zeros((4, 3)))


def test_distort_colours_permutes_and_inverts_channels_per_video():
  frames = jax.random.uniform(jax.random.key(0), (64, 3, 5, 5, 3))
  out = np.asarray(distort_colours(jax.random.key(1), frames))
  frames = np.asarray(frames)
  seen = set()
  for video, distorted in zip(frames, out):
    found = []
    for c, d in itertools.product(range(3), range(3)):
      if np.allclose(distorted[..., c], video[..., d]):
        found.append((c, d, False))
      elif np.allclose(distorted[..., c], 1 - video[..., d]):
        found.append((c, d, True))
    assert sorted(c for c, _, _ in found) == [0, 1, 2]       # every channel one source ...
    assert sorted(d for _, d, _ in found) == [0, 1, 2]       # ... a permutation of them
    seen.add(tuple(found))
  assert len(seen) > 20  # 64 videos drawn from 48 distortions, independently per video
  assert out.dtype == frames.dtype


def test_distort_colours_affine_maps_each_video_by_a_scaled_rotation_and_offset():
  frames = jax.random.uniform(jax.random.key(0), (64, 3, 5, 5, 3), minval=0.3, maxval=0.7)
  out = np.asarray(distort_colours(jax.random.key(1), frames, "affine"), np.float64)
  frames = np.asarray(frames, np.float64)
  assert out.min() >= 0 and out.max() <= 1
  linears = []
  for video, distorted in zip(frames, out):
    x, y = video.reshape(-1, 3) - 0.5, distorted.reshape(-1, 3)
    inside = np.all((y > 0) & (y < 1), axis=1)  # clipped pixels are not affine
    assert inside.sum() > 20
    design = np.concatenate([x[inside], np.ones((inside.sum(), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, y[inside], rcond=None)
    np.testing.assert_allclose(design @ coef, y[inside], atol=1e-5)
    linear, offset = coef[:3].T, coef[3] - 0.5
    gram = linear @ linear.T                      # s² I for s Q with Q orthogonal
    scale = np.sqrt(gram[0, 0])
    np.testing.assert_allclose(gram, scale**2 * np.eye(3), atol=1e-4)
    assert 0.5 - 1e-4 <= scale <= 1 + 1e-4 and np.all(np.abs(offset) <= 0.25 + 1e-4)
    linears.append(linear / scale)
  # rotations and reflections alike
  signs = np.sign([np.linalg.det(q) for q in linears])
  assert 10 < np.sum(signs > 0) < 54
  # The inputs' mean colours are all near mid-grey; the outputs' spread over colour space.
  assert np.all(np.std(frames.reshape(64, -1, 3).mean(axis=1), axis=0) < 0.05)
  assert np.all(np.std(out.reshape(64, -1, 3).mean(axis=1), axis=0) > 0.1)
  assert distort_colours(jax.random.key(1), jnp.asarray(frames, jnp.float32),
                         "affine").dtype == jnp.float32


def test_distort_colours_rejects_bad_input():
  with pytest.raises(ValueError, match=r"\(batch, frames, H, W, C\)"):
    distort_colours(jax.random.key(0), jnp.zeros((2, 8, 8, 3)))
  with pytest.raises(ValueError, match="kind must be one of channels, affine; got 'hue'"):
    distort_colours(jax.random.key(0), jnp.zeros((2, 1, 8, 8, 3)), "hue")
