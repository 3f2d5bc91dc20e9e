"""Tests of the SKD model: shapes, the loss and its parts, the optional invariance term; and
that every registered model and evaluator has the interface the trainer and the CLI use."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import make_random_videos as random_videos
from koopjax import configs
from koopjax import eval as kev
from koopjax import models
from koopjax.models import skd
from koopjax.models.video import to_frames

TINY = configs.get_config("tiny")


def test_model_shapes_and_dtypes():
  cfg = TINY
  variables = skd.init(jax.random.key(0), cfg)
  video = jnp.asarray(random_videos(cfg, 4)["video"])
  z = jax.jit(skd.encode, static_argnums=2)(variables, video, cfg)
  assert z.shape == (4, cfg.frames, cfg.k) and z.dtype == jnp.float32
  x = jax.jit(skd.decode, static_argnums=2)(variables, z, cfg)
  assert x.shape == video.shape and x.dtype == jnp.float32
  assert float(x.min()) >= 0 and float(x.max()) <= 1
  forward = jax.jit(skd.forward, static_argnums=4)
  loss, parts, outputs, _ = forward(variables["params"], {"batch_stats":
                                                          variables["batch_stats"]},
                                    {"video": video}, jax.random.key(1), cfg)
  assert outputs["C"].shape == (cfg.k, cfg.k) and loss.shape == ()
  expected = (cfg.w_rec * parts["rec"] + cfg.w_pred * (parts["pred_x"] + parts["pred_z"])
              + cfg.w_eigs * parts["eig"])
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  # 64x64 reference architecture: 4 stride-2 stages, k-dimensional frames into the fit
  big = dataclasses.replace(configs.get_config("sprites"), data_dir="x")
  shapes = jax.eval_shape(lambda: skd.init(jax.random.key(0), big))
  n_params = sum(np.prod(x.shape) for x in jax.tree.leaves(shapes["params"]))
  assert 1.5e6 < n_params < 2.5e6, n_params


@pytest.mark.parametrize("part,distortion", [("dynamic_modes", "channels"),
                                             ("deviations", "affine")])
def test_motion_invariance_term_adds_to_the_reference_loss(part, distortion):
  cfg = dataclasses.replace(TINY, w_motion_invariance=0.5, motion_invariance_part=part,
                            motion_invariance_distortion=distortion)
  variables = skd.init(jax.random.key(0), cfg)
  params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
  batch = {"video": jnp.asarray(random_videos(cfg, 8)["video"])}
  forward = jax.jit(skd.forward, static_argnums=(4, 5))
  loss, parts, _, new_state = forward(params, state, batch, jax.random.key(1), cfg, True)
  loss_ref, parts_ref, _, state_ref = forward(params, state, batch, jax.random.key(1), TINY,
                                              True)
  assert "motion_invariance" not in parts_ref and float(parts["motion_invariance"]) > 0
  np.testing.assert_allclose(loss, loss_ref + 0.5 * parts["motion_invariance"], rtol=1e-6)
  for name in parts_ref:  # the reference terms and the running statistics are untouched
    np.testing.assert_allclose(parts[name], parts_ref[name], rtol=1e-6)
  jax.tree.map(np.testing.assert_array_equal, new_state, state_ref)
  _, parts_eval, _, _ = forward(params, state, batch, jax.random.key(1), cfg, False)
  assert "motion_invariance" not in parts_eval


def test_uint8_required():
  with pytest.raises(TypeError, match="uint8"):
    to_frames(jnp.zeros((1, 2, 8, 8, 3), jnp.float32))


def test_every_model_and_evaluator_has_the_interface():
  assert set(models.MODELS) == set(kev.EVALUATORS)
  for name, model in models.MODELS.items():
    assert isinstance(model, models.Model), name
    assert models.get(name) is model
    assert isinstance(kev.get(name), kev.Evaluator), name
  with pytest.raises(ValueError, match="unknown model 'gan'; available: judge, kae, rnn, rnn_ae, skd"):
    models.get("gan")
  with pytest.raises(kev.EvaluationError, match="model 'gan' has no evaluation"):
    kev.get("gan")


def test_analysis_static_set_follows_the_configured_rule():
  eigenvalues = jnp.asarray([1.0, 0.97 + 0.05j, 0.97 - 0.05j, 0.5, -0.9])
  kappa = skd.analysis_static_set(eigenvalues, dataclasses.replace(TINY, n_static=1))
  assert kappa.tolist() == [True, False, False, False, False]
  near = skd.analysis_static_set(eigenvalues, dataclasses.replace(TINY,
                                                                  analysis_static_radius=0.1))
  assert near.tolist() == [True, True, True, False, False]
