"""The recurrent models, their configs and evaluators, and the KANN analysis of trained runs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from sklearn import metrics as sk_metrics

import koopjax as kj
from koopjax import cli
from koopjax import configs
from koopjax import train
from koopjax.data import ecg5000
from koopjax.data import phrases
from koopjax.eval import curvature
from koopjax.eval import kann
from koopjax.eval import rnn as rnn_eval
from koopjax.eval import rnn_ae as rnn_ae_eval
from koopjax.models import rnn
from koopjax.models import rnn_ae
from koopjax.models import sequence


def small(name, **fields):
  """A preset shrunk to seconds on one device."""
  base = dict(num_devices=1, report=False, checkpoint_every=0, log_every=10,
              analysis_size=32, hessian_iterations=3, hutchinson_samples=4)
  return dataclasses.replace(configs.get_config(name), **{**base, **fields})


@pytest.mark.parametrize("field, value, message", [
    ("beta", 1.5, "'beta': must be in [0, 1]; got 1.5"),
    ("gamma", -0.1, "'gamma': must be >= 0"),
    ("eps", 0.0, "'eps': must be > 0"),
    ("cell", "elman",
     "'cell': must be one of lipschitz, simple, residual, antisymmetric, lstm, gru"),
    ("integrator", "rk4", "'integrator': must be one of euler, midpoint"),
    ("dataset", "ecg5000", "'dataset': must be one of phrases, digits, digits_permuted"),
    ("noise_levels", "0,a", "'noise_levels': noise_levels must be comma-separated numbers"),
])
def test_bad_recurrent_configs_stop_at_start(field, value, message):
  cfg = dataclasses.replace(configs.get_config("digits_lipschitz"), **{field: value})
  with pytest.raises(configs.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
    configs.validate(cfg)


def test_every_recurrent_preset_is_valid():
  for name in ("digits_lipschitz", "digits_lstm", "digits_permuted_lipschitz", "phrases_gru",
               "ecg_lstm_ae"):
    configs.validate(configs.get_config(name))
  with pytest.raises(configs.ConfigError, match="'dataset': must be one of ecg5000"):
    configs.validate(dataclasses.replace(configs.get_config("ecg_lstm_ae"), dataset="digits"))


def test_classifier_reads_the_last_valid_step_and_ignores_padding(key):
  cfg = small("phrases_gru", hidden=8, embed_dim=4)
  variables = rnn.init(key(0), cfg)
  data = phrases.make_dataset("test", size=8)
  x, length = jnp.asarray(data["x"]), jnp.asarray(data["length"])
  states = rnn.hidden_states(variables, x, cfg)
  np.testing.assert_allclose(rnn.logits(variables, x, length, cfg),
                             rnn.readout(variables, states[jnp.arange(8), length - 1], cfg),
                             rtol=1e-5, atol=1e-6)
  padded_differently = jnp.where(jnp.arange(x.shape[1])[None] < length[:, None], x, 7)
  np.testing.assert_allclose(rnn.logits(variables, padded_differently, length, cfg),
                             rnn.logits(variables, x, length, cfg), rtol=1e-6)


def test_lipschitz_loss_logs_the_spectra_of_a_and_w(key):
  cfg = small("digits_lipschitz", hidden=6)
  params = rnn.init(key(1), cfg)["params"]
  data = sequence.load_data(cfg, "test")
  batch = {k: jnp.asarray(data[k][:4]) for k in rnn.batch_keys(cfg)}
  _, (metrics, _) = rnn.loss_fn(params, {}, batch, key(0), cfg)
  cell = jax.tree.map(lambda v: np.asarray(v, np.float64), rnn.cell_params(params))
  for name, m in (("A", cell["M_A"]), ("W", cell["M_W"])):
    a = 0.25 * (m + m.T) + 0.75 * (m - m.T) - 0.001 * np.eye(6)
    np.testing.assert_allclose(metrics[f"max_re_eig_{name}"], np.linalg.eigvals(a).real.max(),
                               rtol=1e-4, atol=1e-7)
  lstm = small("digits_lstm", hidden=6)
  _, (metrics, _) = rnn.loss_fn(rnn.init(key(1), lstm)["params"], {}, batch, key(0), lstm)
  assert not any(k.startswith("max_re_eig") for k in metrics)


def test_loss_curvature_agrees_with_the_dense_hessian(key):
  cfg = small("digits_simple", hidden=3, hessian_iterations=300, hutchinson_samples=600)
  params = rnn.init(key(2), cfg)["params"]
  data = sequence.load_data(cfg, "test")
  batch = {k: jnp.asarray(data[k][:16]) for k in rnn.batch_keys(cfg)}
  flat, unravel = ravel_pytree(params)
  dense = np.asarray(jax.hessian(
      lambda v: rnn.loss_fn(unravel(v), {}, batch, key(0), cfg)[0])(flat), np.float64)
  found = curvature.loss_curvature(rnn, params, {}, batch, cfg, iterations=300, samples=600)
  np.testing.assert_allclose(found["lambda_max"], np.linalg.eigvalsh(dense).max(), rtol=1e-3)
  assert abs(found["trace"] - np.trace(dense)) < 3 * found["trace_stderr"]
  assert found["parameters"] == flat.size


def _linear_states(b=5, t=12, h=6, seed=0):
  """Hidden states of an autonomous linear recurrence: a Koopman fit is exact."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(h, h))
  a = 0.95 * a / np.max(np.abs(np.linalg.eigvals(a)))
  z = np.zeros((b, t, h))
  z[:, 0] = rng.normal(size=(b, h))
  for i in range(1, t):
    z[:, i] = z[:, i - 1] @ a
  return z.astype(np.float32)


def test_fit_errors_of_exactly_linear_states_are_zero_and_grow_with_noise():
  z = _linear_states()
  lengths = np.full(5, 12)
  analysis = kj.koopman_analysis(jnp.asarray(z), rank=6, lengths=jnp.asarray(lengths))
  exact = kann.fit_errors(z, lengths, analysis.basis, analysis.operator, horizon=4)
  assert exact["projection"] < 1e-5 and max(exact["multi_step"]) < 1e-3
  noisy = z + 0.05 * np.random.default_rng(1).normal(size=z.shape).astype(np.float32)
  analysis = kj.koopman_analysis(jnp.asarray(noisy), rank=6)
  errors = kann.fit_errors(noisy, lengths, analysis.basis, analysis.operator, horizon=4)
  # Independent one-step error: lstsq on the projected pairs, the residual's relative norm.
  zp = noisy.astype(np.float64) @ np.asarray(analysis.basis, np.float64)
  past, future = zp[:, :-1].reshape(-1, 6), zp[:, 1:].reshape(-1, 6)
  c = np.linalg.lstsq(past, future, rcond=None)[0]
  np.testing.assert_allclose(errors["one_step"], np.linalg.norm(past @ c - future)
                             / np.linalg.norm(future), rtol=1e-3)
  assert errors["multi_step"][3] > errors["one_step"] > 1e-3
  predicted = kann.predicted_last_states(noisy, lengths, analysis.basis, analysis.operator)
  np.testing.assert_allclose(predicted, (zp[:, -2] @ c) @ np.asarray(analysis.basis).T,
                             rtol=1e-3, atol=1e-4)


def test_token_scores_and_ranking_quality():
  z = _linear_states()
  analysis = kj.koopman_analysis(jnp.asarray(z), rank=6)
  scores = kann.token_scores(np.asarray(analysis.coordinates), np.asarray(analysis.eigenvalues))
  # Autonomous dynamics: no innovation after the first step.
  assert np.max(scores["innovation"][:, 1:]) < 1e-3 * np.max(scores["innovation"][:, 0])
  np.testing.assert_allclose(scores["magnitude"], np.abs(np.asarray(analysis.coordinates)))
  rng = np.random.default_rng(0)
  s, relevant = rng.normal(size=(4, 10)), rng.random((4, 10)) < 0.3
  valid = np.ones((4, 10), bool)
  valid[:, 8:] = False
  quality = kann.ranking_quality(s, relevant, valid)
  pos, neg = s[valid & relevant], s[valid & ~relevant]
  pairs = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
  np.testing.assert_allclose(quality["roc_auc"], pairs)
  k = quality["k"]
  assert k == len(pos)
  top = np.sort(s[valid])[::-1][:k]
  np.testing.assert_allclose(quality["precision_at_k"], np.mean(np.isin(top, pos)))


def test_mode_pairs_rebuild_the_projected_states():
  z = _linear_states(h=6)
  analysis = jax.device_get(kj.koopman_analysis(jnp.asarray(z), rank=6))
  pairs = kann.mode_pairs(analysis, 3)
  assert sorted(j for p in pairs for j in p) == list(range(6))
  rebuilt = sum(kann.pair_states(analysis, p) for p in pairs)
  np.testing.assert_allclose(rebuilt, z, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_phrases_run_evaluation_and_analysis_end_to_end(tmp_path, capsys):
  cfg = small("phrases_gru", hidden=32, embed_dim=16, steps=300)
  run = train.run(cfg, tmp_path / "run", progress=False)
  evaluation = rnn_eval.evaluate(run)
  assert evaluation.record["accuracy"]["test"] > 0.9
  assert "noise" not in evaluation.record  # token inputs get no input noise
  assert evaluation.record["curvature"]["lambda_max"] > 0
  analysis = kann.analyse(run, kann.Options(size=64, modes=3, examples=2))
  record = analysis.record
  assert record["rank"] == 31 and record["sequences"] == 64
  assert record["token_ranking"]["best_innovation_roc_auc"] > 0.7
  assert 0 <= record["decisions"]["agreement"] <= 1
  assert {f.filename for f in analysis.figures} == {"spectrum.png", "errors.png", "tokens.png"}
  # The command line writes the same analysis beside the run.
  assert cli.main(["analyse", "--workdir", str(run.workdir), "--size", "64"]) == 0
  out = run.workdir / "analysis"
  assert {p.name for p in out.iterdir()} >= {"analysis.json", "analysis.md", "tokens.png",
                                             "spectrum.png", "errors.png"}
  assert "token ROC-AUC of the dominant pair" in capsys.readouterr().out
  assert cli.main(["analyse", "--workdir", str(run.workdir), "--rank", "999"]) == 2
  assert "rank" in capsys.readouterr().err


@pytest.mark.slow
def test_digits_run_reports_noise_curvature_and_spectra(tmp_path):
  cfg = small("digits_lipschitz", hidden=16, steps=20, noise_levels="0,0.5")
  run = train.run(cfg, tmp_path / "run", progress=False)
  assert "max_re_eig_A" in run.history[-1]
  evaluation = rnn_eval.run_summary(run)
  record = evaluation.record
  assert [p["sigma"] for p in record["noise"]] == [0.0, 0.5]
  assert record["noise"][0]["accuracy"] == record["accuracy"]["test"]
  assert set(record["spectra"]) == {"A", "W"}
  assert {f.filename for f in evaluation.figures} == {"loss.png", "spectra.png",
                                                      "max_re_eig.png", "noise.png"}


@pytest.fixture
def fake_ecg(tmp_path):
  """A prepared ECG5000-format dataset of random beats (the real files are an extra)."""
  rng = np.random.default_rng(0)
  manual = tmp_path / "ucr"
  manual.mkdir()
  for name, n in zip(ecg5000.FILES, (90, 60)):
    labels = np.where(rng.random(n) < 0.6, 1, rng.integers(2, 6, n))
    beats = np.sin(np.linspace(0, 6, 140))[None] * (1 + (labels[:, None] != 1))
    np.savetxt(manual / name, np.column_stack([labels, beats + 0.1 * rng.normal(size=beats.shape)]),
               delimiter="\t", fmt="%.6g")
  ecg5000.prepare(tmp_path / "tfds", manual)
  return tmp_path / "tfds"


@pytest.mark.slow
def test_autoencoder_detects_anomalies_and_is_analysed(tmp_path, fake_ecg):
  cfg = small("ecg_lstm_ae", data_dir=str(fake_ecg), hidden=8, decoder_hidden=8, steps=30,
              batch_size=16, learning_rate=1e-2, analysis_size=8)
  run = train.run(cfg, tmp_path / "run", progress=False)
  evaluation = rnn_ae_eval.evaluate(run)
  detection = evaluation.record["detection"]
  test = sequence.load_data(cfg, "test")
  scores = rnn_ae_eval.anomaly_scores(run.state.params, test, cfg)
  np.testing.assert_allclose(detection["roc_auc"],
                             sk_metrics.roc_auc_score(test["anomaly"], scores), rtol=1e-6)
  assert detection["roc_auc"] > 0.9  # anomalies are twice as large: an easy case
  analysis = kann.analyse(run, kann.Options(pairs=2))
  assert len(analysis.record["mode_pairs"]) == 2
  assert "mode_pairs.png" in {f.filename for f in analysis.figures}
  # The Koopman-predicted last state decodes close to the true one on this smooth data.
  assert analysis.record["decisions"]["decoding_relative_difference"] < 1.0
  errors = np.asarray(rnn_ae.sequence_errors(jnp.ones((2, 140, 1)), jnp.zeros((2, 140, 1)),
                                             jnp.array([140, 70])))
  np.testing.assert_allclose(errors, [140, 70])


def test_analyse_refuses_other_models(tmp_path, capsys, tiny):
  run = dataclasses.replace(train.RunResult(None, tiny, tmp_path, []))
  with pytest.raises(kann.EvaluationError, match="KANN analyses recurrent runs"):
    kann.analyse(run)
