"""Tests of the evaluation: judge metrics, the sampling protocol, swaps and multifactor
attribution, linear probes, and the SKD evaluator end to end."""

import json
import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import koopjax as kj
from koopjax import cli
from koopjax import configs
from koopjax import eval as kev
from koopjax import train
from koopjax.eval import latents
from koopjax.eval import probes
from koopjax.eval import sampling
from koopjax.eval import swaps
from koopjax.models import judge
from koopjax.models import skd
from koopjax.report import tables


# ----------------------------------------------------------------------------- metrics


def reference_metrics(probs, labels, eps=1e-16):
  """Independent computation in the style of the literature's evaluation scripts."""
  acc = np.mean(np.argmax(probs, 1) == labels)
  m = min((labels == c).sum() for c in np.unique(labels))
  index = np.hstack([np.nonzero(labels == c)[0][:m] for c in np.unique(labels)])
  p = probs[index]
  p_y = p.mean(axis=0)
  kl = (p * (np.log(p + eps) - np.log(p_y[None] + eps))).sum(axis=1)
  return {"acc": acc, "IS": np.exp(kl.mean()),
          "H_yx": -np.mean((p * np.log(p + eps)).sum(axis=1)),
          "H_y": -(p_y * np.log(p_y + eps)).sum()}


def test_judge_metrics_match_an_independent_computation():
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.full(5, 0.3), size=300) * (1 - 1e-9) + 1e-9 / 5
  labels = rng.choice(5, size=300, p=[0.4, 0.3, 0.1, 0.1, 0.1]).astype(np.int32)
  got, want = kev.judge_metrics(probs, labels), reference_metrics(probs, labels)
  assert set(got) == {"acc", "IS", "H_yx", "H_y"}
  for key in want:
    np.testing.assert_allclose(got[key], want[key], rtol=1e-9, err_msg=key)
  # the balanced subset matters: IS / H(y) over all rows differ
  assert abs(kev.marginal_entropy(probs) - got["H_y"]) > 1e-3


def test_perfect_classifier_on_a_balanced_set():
  n = 9
  labels = np.tile(np.arange(n), 7)
  probs = np.eye(n)[labels]
  got = kev.judge_metrics(probs, labels)
  assert got["acc"] == 1.0 and got["H_yx"] == 0.0
  np.testing.assert_allclose(got["H_y"], np.log(n), rtol=1e-12)
  np.testing.assert_allclose(got["IS"], n, rtol=1e-12)
  # a constant prediction: IS 1, H(y) 0, accuracy 1/n
  flat = kev.judge_metrics(np.eye(n)[np.zeros_like(labels)], labels)
  np.testing.assert_allclose([flat["IS"], flat["H_y"], flat["acc"]], [1, 0, 1 / n], atol=1e-12)


def test_balanced_subset_takes_the_first_m_of_every_present_class():
  labels = np.array([2, 0, 0, 1, 2, 0, 1, 5])
  np.testing.assert_array_equal(kev.balanced_subset(labels), [1, 3, 0, 7])  # m = 1 (class 5)
  labels = np.array([2, 0, 0, 1, 2, 0, 1])
  np.testing.assert_array_equal(kev.balanced_subset(labels), [1, 2, 3, 6, 0, 4])
  with pytest.raises(ValueError, match="non-empty"):
    kev.balanced_subset(np.array([], np.int32))


def test_judge_metrics_errors():
  labels = np.array([0, 1])
  with pytest.raises(ValueError, match="sum to 1"):
    kev.judge_metrics(np.array([[2.0, 1.0], [0.0, 3.0]]), labels)  # logits, not softmax
  with pytest.raises(ValueError, match="non-negative"):
    kev.judge_metrics(np.array([[2.0, -1.0], [0.0, 1.0]]), labels)
  with pytest.raises(ValueError, match=r"labels must be in \[0, 1\]"):
    kev.judge_metrics(np.eye(2), np.array([0, 2]))
  with pytest.raises(ValueError, match="shape"):
    kev.judge_metrics(np.eye(2), np.array([0, 1, 1]))


# ----------------------------------------------------------------------------- protocol


@pytest.fixture(scope="module")
def tiny_skd(tiny):
  variables = jax.jit(skd.init, static_argnums=1)(jax.random.key(0), tiny)
  video = np.random.default_rng(0).integers(0, 256, (24, tiny.frames, 32, 32, 3), np.uint8)
  return variables, video, jax.jit(latents.analyse, static_argnums=2)(variables, video, tiny)


def test_sample_latents_shapes_determinism_and_fixed_parts(tiny_skd):
  _, _, analysis = tiny_skd
  z, (V, U), static = analysis.z, analysis.eig[1:], analysis.static
  key = jax.random.key(3)
  a = sampling.sample_latents(z, V, U, static, key, "motion")
  assert a.shape == z.shape and a.dtype == z.dtype
  np.testing.assert_array_equal(a, sampling.sample_latents(z, V, U, static, key, "motion"))
  assert not np.allclose(a, sampling.sample_latents(z, V, U, static, jax.random.key(4), "motion"))
  # the kept part is unchanged: project onto eigen-coordinates
  phi, phi_a = np.asarray(z @ V), np.asarray(a @ V)
  kept = ~np.asarray(static)
  np.testing.assert_allclose(phi_a[..., kept], phi[..., kept], atol=1e-4)
  assert not np.allclose(phi_a[..., ~kept], phi[..., ~kept], atol=1e-3)
  everything = jnp.ones_like(static)
  np.testing.assert_allclose(sampling.sample_latents(z, V, U, everything, key, "static"), z,
                             atol=1e-4)
  with pytest.raises(ValueError, match="fix must be one of"):
    sampling.sample_latents(z, V, U, static, key, "dynamics")


def test_sample_sequences_end_to_end_on_a_tiny_skd(tiny_skd, tiny):
  variables, video, analysis = tiny_skd
  frames = latents.sample_sequences(variables, tiny, video, analysis, "motion", seed=0,
                                     pool_size=8)
  assert frames.shape == video.shape and frames.dtype == np.float32
  again = latents.sample_sequences(variables, tiny, video, analysis, "motion", seed=0,
                                    pool_size=8)
  np.testing.assert_array_equal(frames, again)
  other = latents.sample_sequences(variables, tiny, video, analysis, "motion", seed=1,
                                    pool_size=8)
  assert not np.allclose(frames, other)
  # fix static, sample dynamics, with every mode static: the input, up to decoding
  all_static = analysis._replace(static=jnp.ones_like(analysis.static))
  same = latents.sample_sequences(variables, tiny, video, all_static, "static", seed=0,
                                   pool_size=8)
  recon = latents.decode_all(variables, latents.encode_all(variables, video, tiny), tiny)
  np.testing.assert_allclose(same, recon, atol=1e-4)


def test_pools_partition_and_donors_differ_in_every_label():
  parts = sampling.pools(10, 4, seed=0)
  assert [len(p) for p in parts] == [4, 3, 3]
  np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(10))
  labels = {"a": np.arange(12) % 3, "b": np.arange(12) % 4}
  donor, strict = swaps.donors(labels, seed=0)
  assert strict.all()
  for name in labels:
    assert np.all(labels[name][donor] != labels[name])
  np.testing.assert_array_equal(donor, swaps.donors(labels, seed=0)[0])
  donor, strict = swaps.donors({"a": np.zeros(3, int)}, seed=0)  # impossible: fallback
  assert not strict.any()


# ----------------------------------------------------------------------------- multifactor


def known_modes_case(n=60, frames=3, seed=0):
  """Latents built from eigen-components with a known factor per component.

  Eigenvalues: 1 (factor "colour"), a pair 0.95 e^{±0.05i} ("shape"), 0.3 and a pair
  0.4 ± 0.6i ("action"), and 0.7 (noise nobody reads). A fake judge reads each factor from
  its own eigen-coordinates (nearest code).
  """
  rng = np.random.default_rng(seed)
  blocks = np.zeros((7, 7))
  blocks[0, 0], blocks[3, 3], blocks[6, 6] = 1.0, 0.3, 0.7
  for i, lam in ((1, 0.95 * np.exp(0.05j)), (4, 0.4 + 0.6j)):
    blocks[i:i + 2, i:i + 2] = [[lam.real, lam.imag], [-lam.imag, lam.real]]
  m = rng.normal(size=(7, 7))
  c = np.linalg.inv(m) @ blocks @ m
  ev, V, U = (np.asarray(x) for x in kj.eig(jnp.asarray(c)))
  find = lambda lam: int(np.argmin(np.abs(ev - lam)))  # noqa: E731
  modes = {"colour": [find(1.0)], "action": sorted([find(0.3), find(0.4 + 0.6j),
                                                     find(0.4 - 0.6j)]),
           "shape": sorted([find(0.95 * np.exp(0.05j)), find(0.95 * np.exp(-0.05j))])}
  codes = {"colour": np.array([-2.0, 0.0, 2.0]), "shape": np.array([1 + 1j, -1 + 0.5j, 2j]),
           "action": np.array([1.0, -1.0])}
  labels = {name: rng.integers(0, len(c), n) for name, c in codes.items()}
  phi = np.zeros((n, frames, 7), complex)
  phi[:, :, find(1.0)] = codes["colour"][labels["colour"]][:, None]
  a, b = find(0.95 * np.exp(0.05j)), find(0.95 * np.exp(-0.05j))
  phi[:, :, a] = codes["shape"][labels["shape"]][:, None]
  phi[:, :, b] = np.conj(phi[:, :, a])
  phi[:, :, find(0.3)] = codes["action"][labels["action"]][:, None]
  p, q = find(0.4 + 0.6j), find(0.4 - 0.6j)
  phi[:, :, p] = 0.5j * codes["action"][labels["action"]][:, None]
  phi[:, :, q] = np.conj(phi[:, :, p])
  phi[:, :, find(0.7)] = rng.normal(size=(n, 1))
  z = np.real(phi @ U).astype(np.float32)

  def fake_judge(latents):
    f = np.asarray(latents, np.float64) @ V  # (m, T, k)
    out = {}
    for name, code in codes.items():
      i = modes[name][0] if name != "action" else find(0.3)
      value = f[:, 0, i] if name != "shape" else f[:, 0, a]
      pred = np.argmin(np.abs(value[:, None] - code[None]), axis=1)
      out[name] = np.eye(len(code))[pred]
    return out

  return z, labels, ev, V, U, modes, fake_judge


def test_mode_attribution_recovers_known_factors():
  z, labels, ev, V, U, modes, fake_judge = known_modes_case()
  components = kev.mode_components(ev)
  assert sorted(i for c in components for i in c) == list(range(7))
  assert sorted(len(c) for c in components) == [1, 1, 1, 2, 2]
  donor, strict = swaps.donors(labels, seed=0)
  assert strict.all()
  attribution = kev.attribute_modes(z, z[donor], labels, {k: v[donor] for k, v in labels.items()},
                                    V, U, ev, fake_judge)
  assert attribution["modes"]["colour"] == modes["colour"]
  assert attribution["modes"]["shape"] == modes["shape"]
  # the action is read from the real mode 0.3 only; the pair 0.4 ± 0.6i carries nothing read
  find = lambda lam: int(np.argmin(np.abs(ev - lam)))  # noqa: E731
  assert attribution["modes"]["action"] == [find(0.3)]
  noise = [c for c, h in zip(attribution["components"], attribution["component_head"])
           if h is None]
  assert [find(0.7)] in noise
  table = kev.factor_swap_table(z, labels, donor, V, U, attribution["modes"], fake_judge,
                                ["colour", "shape"])
  assert table["colour"]["success"] == 1.0 and table["shape"]["success"] == 1.0
  assert table["colour"]["donor_rate"]["shape"] == 0.0
  static = np.zeros(7, bool)
  static[modes["colour"] + modes["shape"]] = True
  swap = kev.two_factor_swap_accuracy(z, labels, V, U, static, fake_judge, seed=1)
  assert swap["joint"] == 1.0 and swap["pairs"] == len(z)
  assert swap["shows_target"] == {"action": 1.0, "colour": 0.0, "shape": 0.0}
  assert swap["shows_donor"] == {"action": 0.0, "colour": 1.0, "shape": 1.0}
  # with the action's mode in S too, the donor's action leaks into every swap
  static[attribution["modes"]["action"]] = True
  leaky = kev.two_factor_swap_accuracy(z, labels, V, U, static, fake_judge, seed=1)
  assert leaky["joint"] == 0.0 and leaky["shows_donor"]["action"] == 1.0
  assert leaky["shows_target"]["action"] == 0.0
  steps = kev.incremental_swaps(z[0], z[donor[0]], V, U, [modes["colour"], modes["shape"]])
  assert steps.shape == (2,) + z.shape[1:]
  judged = fake_judge(steps)
  assert np.argmax(judged["colour"], 1).tolist() == [labels["colour"][donor[0]]] * 2
  assert np.argmax(judged["shape"], 1)[0] == labels["shape"][0]


def test_mode_components_rejects_unpaired_complex_eigenvalues():
  with pytest.raises(ValueError, match="conjugate"):
    kev.mode_components(np.array([1.0, 0.5 + 0.5j, 0.2]))


def test_ridge_probe_matches_an_independent_least_squares_fit():
  rng = np.random.default_rng(0)
  train_x, test_x = rng.normal(size=(200, 6)), rng.normal(size=(80, 6))
  w_true = rng.normal(size=(6, 3))
  train_y, test_y = np.argmax(train_x @ w_true, 1), np.argmax(test_x @ w_true, 1)
  ridge = 0.05
  # Independent: ridge as ordinary least squares on rows augmented by sqrt(ridge * n) * I.
  mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
  a = np.c_[(train_x - mean) / scale, np.ones(200)]
  a_aug = np.r_[a, np.sqrt(ridge * 200) * np.eye(7)]
  y_aug = np.r_[np.eye(3)[train_y], np.zeros((7, 3))]
  w = np.linalg.lstsq(a_aug, y_aug, rcond=None)[0]
  expected = np.mean(np.argmax(np.c_[(test_x - mean) / scale, np.ones(80)] @ w, 1) == test_y)
  got = kev.ridge_probe_accuracy(train_x, train_y, test_x, test_y, ridge=ridge)
  assert got == pytest.approx(expected) and got > 0.8
  shuffled = kev.ridge_probe_accuracy(train_x, rng.permutation(train_y), test_x, test_y)
  assert shuffled < 0.6


def test_mode_probes_read_each_factor_where_it_lives():
  """Identity constant on a static mode, each action an oscillation on its own dynamic mode:
  each factor is read from its own probe input and not (beyond chance) from the other."""
  rng = np.random.default_rng(1)
  k, t = 6, 8
  V = np.linalg.qr(rng.normal(size=(k, k)) + 1j * rng.normal(size=(k, k)))[0]
  U = np.linalg.inv(V)
  static = np.array([True, True, False, False, False, False])

  def latents(n):
    colour, action = rng.integers(0, 4, n), rng.integers(0, 3, n)
    phi = 0.1 * (rng.normal(size=(n, t, k)) + 1j * rng.normal(size=(n, t, k)))
    phi[:, :, 0] += np.exp(0.5j * np.pi * colour)[:, None]      # constant: λ = 1
    phi[:, :, 1] += rng.normal(size=(n, 1))                     # constant nuisance
    # λ = i on mode 2 + action: a full period twice, so a time mean of zero
    phi[np.arange(n), :, 2 + action] += np.exp(0.5j * np.pi * np.arange(t))
    return phi @ U, {"colour": colour, "action": action}

  (z_train, y_train), (z_test, y_test) = latents(400), latents(200)
  table = kev.mode_probes(z_train, y_train, z_test, y_test, V, static)
  assert table["static_mean"]["colour"] > 0.95 and table["dynamic_trajectory"]["action"] > 0.95
  assert table["dynamic_mean"]["colour"] < 0.4 and table["static_mean"]["action"] < 0.5
  assert table["dynamic_mean"]["action"] < 0.5 and table["all_trajectory"]["colour"] > 0.9
  assert table["chance"] == {"colour": 0.25, "action": pytest.approx(1 / 3)}
  lines = tables.probe_table(table)
  assert lines[0].startswith("## Linear probes") and "| chance | 25.0% | 33.3% |" in lines


def test_probe_errors():
  x, y = np.zeros((4, 2)), np.zeros(4, np.int64)
  with pytest.raises(TypeError, match="real"):
    kev.ridge_probe_accuracy(x + 1j, y, x, y)
  with pytest.raises(ValueError, match="same features"):
    kev.ridge_probe_accuracy(x, y, np.zeros((4, 3)), y)
  with pytest.raises(ValueError, match="integer labels"):
    kev.ridge_probe_accuracy(x, y.astype(float), x, y)
  with pytest.raises(ValueError, match="ridge"):
    kev.ridge_probe_accuracy(x, y, x, y, ridge=0.0)
  with pytest.raises(ValueError, match="'mean' or 'trajectory'"):
    probes.eigen_features(np.zeros((2, 3, 2)), np.eye(2), np.ones(2, bool), "median")


def test_eval_options_name_the_bad_field():
  assert kev.EvalOptions(analysis_size=0).analysis_size == 0  # 0 = every sequence
  for field in ("analysis_size", "batch_size", "attribution_pairs", "probe_train_size"):
    with pytest.raises(kev.EvaluationError, match=f"EvalOptions.{field} must be"):
      kev.EvalOptions(**{field: -1})
  with pytest.raises(kev.EvaluationError, match="batch_size must be >= 1; got 0"):
    kev.EvalOptions(batch_size=0)
  rows = latents.analysis_indices(10, 4)
  assert len(set(rows)) == 4 and list(rows) == sorted(rows) and max(rows) < 10
  assert list(latents.analysis_indices(10, 10)) == list(range(10))


def write_run_config(path, cfg):
  path.mkdir(parents=True, exist_ok=True)
  (path / "config.json").write_text(configs.dumps(cfg))


def test_skd_evaluation_end_to_end_on_tiny_untrained_runs(tmp_path, monkeypatch, capsys, tiny,
                                                        tiny_judge, labelled_videos):
  """The whole SKD evaluation through the CLI on tiny random models and fake labelled videos
  (no training): the weak judge is refused, then accepted with --allow-weak-judge; outputs are
  written."""
  skd_variables = jax.jit(skd.init, static_argnums=1)(jax.random.key(0), tiny)
  judge_variables = judge.init(jax.random.key(1), tiny_judge)
  state = lambda variables: types.SimpleNamespace(  # noqa: E731
      params=variables["params"], step=np.int32(0),
      model_state={k: v for k, v in variables.items() if k != "params"})
  runs = {"skd": train.RunResult(state(skd_variables), tiny, tmp_path / "skd", []),
          "judge": train.RunResult(state(judge_variables), tiny_judge, tmp_path / "judge", [])}
  monkeypatch.setattr(train, "restore", lambda workdir: runs[pathlib.Path(workdir).name])
  monkeypatch.setattr(skd, "load_data", lambda cfg, split: labelled_videos(tiny_judge, 24,
                                                                         int(split == "test")))
  write_run_config(tmp_path / "skd", tiny)
  argv = ["evaluate", "--workdir", str(tmp_path / "skd"), "--judge", str(tmp_path / "judge"),
          "--seeds", "0", "1", "--batch-size", "8", "--attribution-pairs", "6"]
  assert cli.main(argv) == 2
  assert "below 99%" in capsys.readouterr().err
  assert cli.main(argv + ["--allow-weak-judge"]) == 0
  out = tmp_path / "skd" / "evaluation"
  results = json.loads((out / "results.json").read_text())
  heads = list(judge.factor_classes(tiny_judge))
  assert len(results["per_seed"]) == 2 and results["test_sequences"] == 24
  assert list(results["summary"]["fix_motion"]) == heads
  assert set(results["summary"]["fix_static"]["hair"]) == {"acc", "IS", "H_yx", "H_y"}
  assert set(results["summary"]["fix_motion"]["action"]["IS"]) == {"mean", "std"}
  assert 0 <= results["summary"]["two_factor_swap"]["joint"]["mean"] <= 1
  assert results["multifactor"]["attribution"]["pairs"] == 6
  assert json.loads((out / "multifactor.json").read_text()) == results["multifactor"]
  for name in ("results.md", "samples.png", "eigenvalues_by_factor.png", "incremental_swap.png"):
    assert (out / name).is_file(), name
  assert "| koopjax SKD, synthetic (this run) |" in (out / "results.md").read_text()
  assert set(results["probes"]) == {name for name, _, _ in kev.probes.INPUTS} | {"chance"}
  assert set(results["probes"]["static_mean"]) == set(heads)
  assert "| S modes, time mean |" in (out / "results.md").read_text()
  analysis = results["analysis"]
  assert analysis["fitted_on"] == 24  # C is fitted on every test sequence by default
  assert analysis["static_radius"] == 0.0
  assert f"static set S = κ = {tiny.n_static} components by `{tiny.static_mode}`" in (
      out / "results.md").read_text()

  # --static-radius R: S is every mode with |λ − 1| < R (R picked between two eigenvalues)
  distance = np.unique(np.abs(np.asarray([complex(*v) for v in analysis["eigenvalues"]]) - 1))
  radius = float((distance[2] + distance[3]) / 2)  # a conjugate pair shares one distance
  other = tmp_path / "radius"
  assert cli.main(argv + ["--allow-weak-judge", "--static-radius", str(radius), "--seeds", "0",
                          "--out", str(other)]) == 0
  near = json.loads((other / "results.json").read_text())["analysis"]
  assert near["static_radius"] == radius and near["eigenvalues"] == analysis["eigenvalues"]
  eigenvalues = np.asarray([complex(*v) for v in near["eigenvalues"]])
  assert near["static_modes"] == np.flatnonzero(np.abs(eigenvalues - 1) < radius).tolist()
  size = len(near["static_modes"])
  assert size >= 3
  assert f"every mode with |λ − 1| < {radius:g} ({size} of {tiny.k} modes)" in (
      other / "results.md").read_text()
  capsys.readouterr()
  assert cli.main(argv + ["--allow-weak-judge", "--static-radius", "-1"]) == 2
  assert "analysis_static_radius" in capsys.readouterr().err
