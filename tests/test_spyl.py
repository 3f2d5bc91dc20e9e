"""SPYL: its variational and contrastive pieces against independent computations, the model's
warm-up switch, and a trained run through the same judge and protocol as SKD."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import koopjax as kj
from koopjax import configs
from koopjax import train
from koopjax.eval import spyl as spyl_eval
from koopjax.models import spyl


def test_gaussian_kl_closed_form_against_monte_carlo(key):
  mq, lq = jnp.array([0.3, -1.0]), jnp.array([-0.5, 0.2])
  mp, lp = jnp.array([-0.2, 0.4]), jnp.array([0.3, -0.1])
  x = mq[None] + jnp.exp(0.5 * lq)[None] * jax.random.normal(key(0), (400_000, 2))

  def log_normal(x, m, lv):
    return -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + lv[None] + (x - m[None]) ** 2
                          / jnp.exp(lv)[None], axis=-1)

  monte_carlo = float(jnp.mean(log_normal(x, mq, lq) - log_normal(x, mp, lp)))
  assert float(kj.gaussian_kl(mq, lq, mp, lp)) == pytest.approx(monte_carlo, abs=5e-3)
  assert float(kj.gaussian_kl(mq, lq)) == pytest.approx(
      0.5 * float(jnp.sum(jnp.exp(lq) + mq ** 2 - 1 - lq)), rel=1e-6)


def test_info_nce_equals_numpy(key):
  a, p = jax.random.normal(key(1), (5, 4)), jax.random.normal(key(2), (5, 4))
  n = jax.random.normal(key(3), (5, 7, 4))
  an, pn, nn_ = (np.asarray(v, np.float64) for v in (a, p, n))

  def cos(u, v):
    return np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)

  pos = np.exp(cos(an, pn) / 0.5)
  neg = np.exp(cos(an[:, None, :], nn_) / 0.5).sum(1)
  expected = np.mean(-np.log(pos / (pos + neg)))
  np.testing.assert_allclose(kj.info_nce(a, p, n, 0.5), expected, rtol=1e-5)


def test_negatives_are_the_farthest_by_kl(key):
  mean_a, logvar_a = jax.random.normal(key(4), (3, 2)), 0.1 * jax.random.normal(key(5), (3, 2))
  mean_b, logvar_b = jax.random.normal(key(6), (9, 2)), 0.1 * jax.random.normal(key(7), (9, 2))
  chosen = np.asarray(kj.farthest_by_kl(mean_a, logvar_a, mean_b, logvar_b, 4))
  for i in range(3):
    kl = [float(kj.gaussian_kl(mean_a[i], logvar_a[i], mean_b[j], logvar_b[j])) for j in range(9)]
    assert list(chosen[i]) == list(np.argsort(kl)[::-1][:4])
  with pytest.raises(ValueError, match=r"count must be in \[1, 9\]"):
    kj.farthest_by_kl(mean_a, logvar_a, mean_b, logvar_b, 10)


def _numpy_mws(s, sm, sl, d, dm, dl, n):
  def log_q(x, m, lv):  # (B, D), (B, D) -> (B, B)
    return -0.5 * np.sum(np.log(2 * np.pi) + lv[None] + (x[:, None] - m[None]) ** 2
                         / np.exp(lv[None]), -1)
  b, t = d.shape[:2]
  terms = []
  for f in range(t):
    ls, ld = log_q(s, sm, sl), log_q(d[:, f], dm[:, f], dl[:, f])
    terms.append(np.maximum(special.logsumexp(ls + ld, 1) - special.logsumexp(ls, 1)
                            - special.logsumexp(ld, 1) + np.log(b * n), 0))
  return np.mean(terms)


def test_mws_mutual_information_against_numpy_and_its_known_values(key):
  b, t = 6, 3
  ks = jax.random.split(key(8), 6)
  s, sm, sl = (jax.random.normal(k, (b, 4)) for k in ks[:3])
  d, dm, dl = (jax.random.normal(k, (b, t, 2)) for k in ks[3:])
  expected = _numpy_mws(*(np.asarray(v, np.float64) for v in (s, sm, sl, d, dm, dl)), 100)
  np.testing.assert_allclose(kj.mws_mutual_information(s, sm, sl, d, dm, dl, 100), expected,
                             rtol=1e-5)
  # Every posterior the same: each logsumexp is log B + the density, the estimate log N.
  same = kj.mws_mutual_information(s, jnp.zeros_like(sm), jnp.zeros_like(sl), d,
                                   jnp.zeros_like(dm), jnp.zeros_like(dl), 100)
  np.testing.assert_allclose(same, np.log(100), rtol=1e-5)
  # d a copy of s (narrow, distinct posteriors) carries more information than d unrelated
  # to s (its posteriors shuffled across the batch).
  narrow = jnp.full((b, 2), -6.0)
  centres = 3 * jax.random.normal(key(9), (b, 2))
  copy = kj.mws_mutual_information(centres, centres, narrow, centres[:, None], centres[:, None],
                                   narrow[:, None], 100)
  wide_s = jnp.full((b, 2), 2.0)
  unrelated = kj.mws_mutual_information(centres, centres, wide_s, centres[::-1, None],
                                        centres[::-1, None], wide_s[:, None], 100)
  assert float(copy) > float(unrelated)


@pytest.fixture(scope="module")
def small_spyl():
  return dataclasses.replace(configs.get_config("spyl_synthetic"), conv_dim=4, g_dim=8,
                             rnn_size=8, s_dim=4, d_dim=2, batch_size=8, negatives=8,
                             warmup_steps=2, steps=4, log_every=1, checkpoint_every=0,
                             report=False, num_devices=1)


@pytest.fixture(scope="module")
def trained_spyl(small_spyl, tmp_path_factory):
  """A 4-step SPYL run (warm-up 2), trained once for the tests below."""
  configs.validate(small_spyl)
  return train.run(small_spyl, tmp_path_factory.mktemp("spyl"), progress=False)


def test_contrastive_terms_switch_on_after_the_warm_up(small_spyl, trained_spyl, tmp_path):
  run = trained_spyl
  on = [r["contrastive_on"] for r in run.history]
  assert on == [0.0, 0.0, 1.0, 1.0]
  cfg = small_spyl
  for r in run.history:
    rest = r["loss"] - (cfg.w_rec * r["rec"] + cfg.w_s * r["kl_s"] + cfg.w_d * r["kl_d"]
                        + cfg.w_mi * r["mi"])
    expected = r["contrastive_on"] * cfg.w_contrastive * (r["con_s"] + r["con_d"])
    assert r["con_s"] > 0 and r["con_d"] > 0
    assert rest == pytest.approx(expected, rel=1e-3, abs=1e-3 * abs(r["loss"]))
  assert int(run.state.model_state["counter"]["step"]) == 4
  # w_contrastive = 0 is the ablation: the terms are not computed at all.
  ablation = dataclasses.replace(small_spyl, w_contrastive=0.0, steps=1)
  history = train.run(ablation, tmp_path / "ablation", progress=False).history
  assert "con_s" not in history[0]


def test_bad_spyl_configs(small_spyl):
  with pytest.raises(configs.ConfigError, match=r"'negatives': must be in \[1, bank_factor x"):
    configs.validate(dataclasses.replace(small_spyl, negatives=33))
  with pytest.raises(configs.ConfigError, match="'temperature': must be > 0"):
    configs.validate(dataclasses.replace(small_spyl, temperature=0.0))


@pytest.mark.slow
def test_spyl_is_judged_like_skd(trained_spyl, tiny_judge, tmp_path):
  run = trained_spyl
  judge = train.run(tiny_judge, tmp_path / "judge", progress=False)
  with pytest.raises(spyl_eval.EvaluationError, match="below 99%"):
    spyl_eval.evaluate(run, spyl_eval.Options(seeds=(0,)), judge, log=lambda *_: None)
  evaluation = spyl_eval.evaluate(run, spyl_eval.Options(seeds=(0, 1), allow_weak_judge=True),
                                  judge, log=lambda *_: None)
  record = evaluation.record
  assert set(record["summary"]) == {"fix_motion", "fix_static", "two_factor_swap"}
  assert record["summary"]["fix_motion"]["action"]["acc"]["std"] >= 0
  assert record["per_seed"][0]["two_factor_swap"]["pairs"] == record["test_sequences"]
  summary = spyl_eval.run_summary(run)
  assert {f.filename for f in summary.figures} == {"loss_curves.png", "reconstructions.png",
                                                   "swap_grid.png"}
