"""Tests of the forecasting Koopman autoencoder: data generators, model, loss, training with the
shared trainer, evaluation outputs and the forecasting benchmark's helpers."""

import dataclasses
import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import koopjax as kj
from koopjax import cli
from koopjax import configs
from koopjax import parallel
from koopjax import train
from koopjax.data import dynamics
from koopjax.eval import kae as kae_eval
from koopjax.models import kae

REPO = pathlib.Path(__file__).resolve().parents[1]

# Tiny sizes: 300 steps (100 train), 4-step windows, 16-dim observations.
TINY = dataclasses.replace(
    configs.get_config("pendulum"), name="kae_tiny", steps=12, batch_size=16, n_time=300,
    n_train=100, obs_dim=16, hidden=8, k=4, pred_steps=4, eval_steps=50,
    eval_initial_conditions=5, log_every=4, report=False)


def _benchmark():
  spec = importlib.util.spec_from_file_location("forecasting_benchmark",
                                                REPO / "benchmarks" / "forecasting.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# ------------------------------------------------------------------------------- data ------

def test_elliptic_functions_match_scipy():
  special = pytest.importorskip("scipy.special")
  u = np.linspace(-300.0, 300.0, 2001)
  for m in (0.0, 0.1, np.sin(1.2)**2, 0.99):
    for ours, theirs in zip(dynamics.ellipj(u, m), special.ellipj(u, m)[:3]):
      np.testing.assert_allclose(ours, theirs, atol=1e-11)
    assert dynamics.ellipk(m) == pytest.approx(special.ellipk(m), rel=1e-14)
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    dynamics.ellipk(1.0)


@pytest.mark.parametrize("theta0", [2.4, 0.8])
def test_frictionless_pendulum_conserves_energy_and_solves_the_ode(theta0):
  t = np.arange(2200) * 0.1
  states = dynamics.pendulum_states(t, theta0)
  energy = dynamics.pendulum_energy(states)
  np.testing.assert_allclose(energy, dynamics.GRAVITY * (1 - np.cos(theta0)), rtol=1e-12)
  assert states[0, 0] == pytest.approx(theta0) and abs(states[0, 1]) < 1e-12
  # Independent check: RK4 on θ'' = −g sin θ.
  numeric = dynamics.rk4(lambda _, y: np.array([y[1], -dynamics.GRAVITY * np.sin(y[0])]),
                         np.array([theta0, 0.0]), 0.1, 300, substeps=20)
  np.testing.assert_allclose(numeric, states[:300], atol=1e-5)


def test_generated_data_reference_split_scaling_noise_and_determinism():
  clean = dynamics.generate("pendulum")
  assert clean.train.shape == (600, 64) and clean.test.shape == (1600, 64)
  assert clean.train.dtype == np.float32
  full = np.concatenate([clean.train, clean.test])
  assert full.min() == pytest.approx(-1, abs=1e-6) and full.max() == pytest.approx(1, abs=1e-6)
  np.testing.assert_allclose(clean.lift.T @ clean.lift, np.eye(2), atol=1e-12)
  np.testing.assert_array_equal(clean.train, clean.train_clean)
  noisy = dynamics.generate("pendulum", noise=0.03)
  np.testing.assert_array_equal(noisy.train_clean, clean.train_clean)
  assert 0 < np.abs(noisy.train - clean.train).mean() < 0.05
  np.testing.assert_array_equal(noisy.train, dynamics.generate("pendulum", noise=0.03).train)
  assert not np.array_equal(dynamics.generate("pendulum", seed=2).train, clean.train)
  for system, d in (("damped_pendulum", 4), ("lorenz", 3)):
    data = dynamics.generate(system, n_time=400, n_train=100, dt=0.05)
    assert data.states.shape == (400, d) and data.test.shape == (300, 64)
    assert np.all(np.isfinite(data.train))
  with pytest.raises(ValueError, match="system must be one of pendulum, damped_pendulum, lorenz"):
    dynamics.generate("duffing")


def test_damped_pendulum_loses_energy_without_drive():
  t = np.arange(500) * 0.1
  states = dynamics.damped_pendulum_states(t, 2.0, damping=0.3, drive_amplitude=0.0)
  energy = dynamics.pendulum_energy(states[:, :2])
  assert np.all(np.diff(energy) <= 1e-9) and energy[-1] < 0.01 * energy[0]
  np.testing.assert_allclose(states[:, 2:], np.stack([np.cos(2 * t), np.sin(2 * t)], 1))


def test_windows():
  x = np.arange(10.0)[:, None] * np.ones((1, 3))
  w = dynamics.windows(x, 4)
  assert w.shape == (7, 4, 3)
  np.testing.assert_array_equal(w[2, :, 0], [2, 3, 4, 5])
  with pytest.raises(ValueError, match=r"window length must be in \[1, 10\]"):
    dynamics.windows(x, 11)


# ------------------------------------------------------------------------------- model -----

@pytest.mark.parametrize("init, moduli", [("orthogonal", 0.99), ("eigeninit", 1.0),
                                          ("gaussian", None)])
def test_operator_initialisations(init, moduli):
  cfg = dataclasses.replace(TINY, operator_init=init, k=6)
  params = kae.init(jax.random.key(0), cfg)["params"]
  c = np.asarray(params["C"], np.float64)
  assert c.shape == (6, 6) and params["C"].dtype == jnp.float32
  if moduli is not None:
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(c)), moduli, rtol=1e-5)
  else:  # entries N(0, 1/k²)
    assert 0.02 < c.std() < 0.4
  np.testing.assert_allclose(np.asarray(params["D"]) @ c, np.eye(6), atol=1e-4)
  # The operator follows cfg.seed; encoder weights follow the rng.
  again = kae.init(jax.random.key(1), cfg)["params"]
  np.testing.assert_array_equal(again["C"], params["C"])
  other = kae.init(jax.random.key(0), dataclasses.replace(cfg, seed=1))["params"]
  assert not np.array_equal(other["C"], params["C"])
  spike = kae.initial_operator(jax.random.key(3), dataclasses.replace(
      cfg, operator_init="eigeninit", eigeninit_distribution="spike_and_slab",
      eigeninit_params="theta=1"))
  assert np.all(np.abs(np.linalg.eigvals(spike)) < 1.0)


def test_consistency_penalty_is_zero_for_the_exact_inverse_and_matches_the_formula():
  rng = np.random.default_rng(0)
  c = rng.normal(size=(5, 5)) / np.sqrt(5) + np.eye(5)
  d = np.linalg.inv(c)
  assert float(kae.consistency_penalty(jnp.asarray(c), jnp.asarray(d))) < 1e-8
  d = rng.normal(size=(5, 5))
  expected = sum((np.sum((d[:k, :] @ c[:, :k] - np.eye(k))**2)
                  + np.sum((c[:k, :] @ d[:, :k] - np.eye(k))**2)) / (2 * k)
                 for k in range(1, 6))
  got = float(kae.consistency_penalty(jnp.asarray(c, jnp.float32), jnp.asarray(d, jnp.float32)))
  assert got == pytest.approx(expected, rel=1e-5)


def test_rollout_shapes_and_loss_terms():
  cfg = TINY
  params = kae.init(jax.random.key(0), cfg)["params"]
  window = jnp.asarray(kae.load_data(cfg, "train")["window"][:6])
  assert window.shape == (6, cfg.pred_steps + 1, cfg.obs_dim)
  out = jax.jit(kae.predict, static_argnums=(2, 3))(params, window[:, 0], 30, cfg)
  assert out.shape == (6, 31, cfg.obs_dim) and out.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(out))) <= 1.0
  back = kae.predict(params, window[:, -1], 3, cfg, backward=True)
  assert back.shape == (6, 4, cfg.obs_dim)
  terms = kae.loss_terms(params, window, cfg)
  assert set(terms) == {"fwd", "identity", "bwd", "consist", "eigenloss", "spectral_radius"}
  assert float(terms["consist"]) < 1e-8  # D starts at C⁻¹
  loss, (metrics, state) = kae.loss_fn(params, {}, {"window": window}, None, cfg)
  expected = (terms["fwd"] + cfg.w_id * terms["identity"] + cfg.w_bwd * terms["bwd"]
              + cfg.w_consist * terms["consist"])
  assert float(loss) == pytest.approx(float(expected), rel=1e-6) and state == {}
  errors = kae_eval.rollout_errors(params, cfg)
  assert errors.shape == (cfg.eval_initial_conditions, cfg.eval_steps)
  assert np.all(np.isfinite(errors)) and np.all(errors >= 0)
  np.testing.assert_array_equal(kae_eval.initial_conditions(200, 50, 5), [0, 37, 74, 112, 149])
  with pytest.raises(ValueError, match=r"\(b, 5, 16\)"):
    kae.loss_terms(params, window[:, :3], cfg)
  no_backward = dataclasses.replace(cfg, backward=False)
  assert "D" not in kae.init(jax.random.key(0), no_backward)["params"]
  assert "bwd" not in kae.loss_terms(
      kae.init(jax.random.key(0), no_backward)["params"], window, no_backward)


def test_eigenloss_gradients_pass_check_grads():
  cfg = dataclasses.replace(TINY, w_eigenloss=0.5)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64),
                          kae.init(jax.random.key(0), cfg)["params"])
    window = jnp.asarray(kae.load_data(cfg, "train")["window"][:4], jnp.float64)
    c = jnp.asarray(np.random.default_rng(1).normal(size=(cfg.k, cfg.k)) / 2, jnp.float64)
    def penalty(m):  # what the loss adds for cfg, unweighted
      return kj.eigenloss(m, cfg.eigenloss_kind, radius=cfg.eigenloss_radius)

    check_grads(penalty, (c,), order=1, modes=("fwd", "rev"))
    check_grads(lambda m: kj.eigenloss(m, "stability", radius=0.5), (c,), order=1,
                modes=("fwd", "rev"))

    def total(m):
      return kae.total_loss(kae.loss_terms({**params, "C": m}, window, cfg), cfg)

    check_grads(total, (c,), order=1, modes=("rev",))
    with_penalty = jax.grad(total)(c)
    without = jax.grad(lambda m: kae.total_loss(kae.loss_terms(
        {**params, "C": m}, window, dataclasses.replace(cfg, w_eigenloss=0.0)),
        dataclasses.replace(cfg, w_eigenloss=0.0)))(c)
    np.testing.assert_allclose(with_penalty - without, 0.5 * jax.grad(penalty)(c), atol=1e-10)


# ------------------------------------------------------------- training and evaluation -----

def test_cli_training_is_reproducible_and_evaluation_writes_outputs(tmp_path, capsys):
  overrides = ["n_time=300", "n_train=100", "obs_dim=16", "hidden=8", "k=4", "pred_steps=4",
               "batch_size=16", "eval_steps=50", "eval_initial_conditions=5", "log_every=4",
               "w_eigenloss=0.1"]
  argv = ["train", "--config", "pendulum", "--steps", "12", "--no-progress",
          "--workdir", str(tmp_path / "cli")]
  for item in overrides:
    argv += ["--set", item]
  assert cli.main(argv) == 0
  report = tmp_path / "cli" / "report"
  for name in ("loss.png", "relative_error.png", "eigenvalues.png", "evaluation.json"):
    assert (report / name).stat().st_size > 0
  saved = json.loads((report / "evaluation.json").read_text())
  assert len(saved["relative_error"]["mean"]) == 50 and len(saved["eigenvalues_C"]) == 4
  assert saved["summary"]["step"] == 12 and saved["initial_conditions"][-1] == 149
  assert "mean relative error after 50 steps" in capsys.readouterr().out

  # Same config and seed through the library: identical parameters and history.
  cfg = configs.apply_overrides(configs.get_config("pendulum"),
                                overrides + ["steps=12", "report=false"])
  again = train.run(cfg, tmp_path / "again", progress=False)
  restored = train.restore(tmp_path / "cli")
  for a, b in zip(jax.tree.leaves(jax.device_get(again.state.params)),
                  jax.tree.leaves(jax.device_get(restored.state.params))):
    np.testing.assert_array_equal(a, b)
  assert [r["loss"] for r in again.history] == [r["loss"] for r in restored.history]
  assert again.history[-1]["loss"] < again.history[0]["loss"]

  # `koopjax evaluate` gives the same numbers as the report written after training.
  assert cli.main(["evaluate", "--workdir", str(tmp_path / "cli")]) == 0
  evaluated = json.loads((tmp_path / "cli" / "evaluation" / "evaluation.json").read_text())
  assert evaluated == saved and kae_eval.evaluate(restored).record["summary"] == saved["summary"]

  # The benchmark's epoch loop trains exactly like the trainer (one device vs eight here).
  bench = _benchmark()
  spe = (cfg.n_train - cfg.pred_steps) // cfg.batch_size
  assert cfg.steps % spe == 0
  windows = kae.load_data(cfg, "train")["window"]
  mesh = parallel.make_mesh(1)
  epoch_fn = bench.make_epoch_fn(train.build(cfg, mesh, jit_init=False).update, spe)
  val_fn = jax.jit(lambda p: kae.prediction_mse(p, jnp.asarray(windows), cfg))
  params, curve = bench.train_curve(cfg, cfg.steps // spe, epoch_fn, windows,
                                    jnp.asarray(windows), val_fn, mesh)
  assert curve.shape == (cfg.steps // spe,)
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(jax.device_get(again.state.params))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_benchmark_summary_and_table():
  bench = _benchmark()
  inf = float("inf")

  def record(init, eigenloss, seed, curve, error):
    return {"system": "s", "init": init, "eigenloss": eigenloss, "seed": seed,
            "val_curve": curve, "final_val": curve[-1], "cumulative_error": error,
            "spectral_radius": 1.0}

  records = [record("gaussian", False, 0, [4.0, 2.0, 1.0, 1.0], 100.0),
             record("gaussian", False, 1, [4.0, 3.0, 2.0, 1.5], 120.0),
             record("orthogonal", True, 0, [1.0, 0.5, 0.5, 0.5], 30.0),
             record("orthogonal", True, 1, [3.0, 1.5, 0.5, 0.5], 50.0),
             record("eig:disk", False, 0, [9.0, 9.0, 9.0, 9.0], inf)]
  rows = {(r["init"], r["eigenloss"]): r for r in bench.summarise(records)}
  base = rows[("gaussian", False)]
  assert base["threshold"] == 1.5 and base["epochs_to_threshold"] == 3
  assert rows[("orthogonal", True)]["epochs_to_threshold"] == 1
  assert rows[("orthogonal", True)]["speedup"] == 3.0
  assert rows[("orthogonal", True)]["error_ratio"] == pytest.approx(40 / 110)
  assert rows[("eig:disk", False)]["speedup"] == 0.0
  assert rows[("eig:disk", False)]["error_ratio"] == inf
  table = bench.markdown(list(rows.values()))
  assert "| s | orthogonal | on | 1 | 3.00x |" in table and "> 4" in table
  assert json.loads(bench._json_dumps({"x": [inf, 1.0]})) == {"x": [None, 1.0]}
