"""Eigenvalues on every backend: the host path (NumPy through a callback, with its own
derivative) equals XLA's in value and gradient, under jit, vmap, shard_map and a sharded train
step; "auto" takes the host path on a TPU; bfloat16 runs keep the fit and eig in float32."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

import koopjax as kj
from koopjax import configs
from koopjax import parallel
from koopjax import train
from koopjax._src import eigvals as eigvals_lib
from koopjax.data import loader as loader_lib
from koopjax.models import kae
from koopjax.models import skd

K = 40


def random_operator(seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.normal(size=(K, K)) / np.sqrt(K), jnp.float32)


def near_defective_operator(seed=1):
  """A near-Jordan block (eigenvalues 0.95 ± 0.01) among random real eigenvalues."""
  rng = np.random.default_rng(seed)
  j = np.diag(rng.uniform(-0.9, 0.9, K))
  j[0, 0] = j[1, 1] = 0.95
  j[0, 1], j[1, 0] = 1.0, 1e-4
  m = rng.normal(size=(K, K))
  return jnp.asarray(m @ j @ np.linalg.inv(m), jnp.float32)


# Eigenvalue derivatives scale with the eigenvectors' condition number; for the near-defective
# operator (about 1e2) float32 rounding in two LAPACK builds (XLA's and NumPy's) differs by
# ~1e-4 relative, for a random one by ~1e-6.
OPERATORS = {"random": (random_operator(), 5e-5), "near_defective": (near_defective_operator(),
                                                                     3e-3)}
MODES = [(s, d) for s in kj.STATIC_MODES for d in kj.DYNAMIC_MODES]  # every mode of the loss


def losses(backend):
  """Scalar losses of C that differentiate eigenvalues, on one backend."""
  out = {f"skd_{s}_{d}": (lambda c, s=s, d=d: kj.skd_spectral_loss(
      c, n_static=7, static_mode=s, dynamic_mode=d, eig_backend=backend)[0]) for s, d in MODES}
  out["eigenloss_unit_circle"] = lambda c: kj.eigenloss(c, eig_backend=backend)
  out["eigenloss_stability"] = lambda c: kj.eigenloss(c, "stability", radius=0.9,
                                                       eig_backend=backend)
  out["user_penalty"] = kj.spectral_penalty(
      lambda lam: jnp.sum(jnp.maximum(jnp.abs(lam) - 0.5, 0) ** 2) + jnp.sum(jnp.angle(lam) ** 2),
      eig_backend=backend)
  return out


def assert_close_relative(a, b, rtol, what):
  a, b = np.asarray(a), np.asarray(b)
  scale = max(float(np.max(np.abs(b))), 1e-6)
  assert float(np.max(np.abs(a - b))) <= rtol * scale, what


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_host_equals_device_in_value_and_gradient_under_jit(operator):
  c, rtol = OPERATORS[operator]
  np.testing.assert_allclose(np.sort_complex(kj.eigvals(c, backend="host")),
                             np.sort_complex(kj.eigvals(c, backend="device")), atol=rtol)

  def all_values_and_gradients(backend):  # one compilation for every loss
    return jax.jit(lambda c: {name: jax.value_and_grad(f)(c)
                              for name, f in losses(backend).items()})(c)

  device, host = all_values_and_gradients("device"), all_values_and_gradients("host")
  assert len(device) == len(MODES) + 3
  for name, (vd, gd) in device.items():
    vh, gh = host[name]
    assert_close_relative(vh, vd, rtol, f"{name} value")
    assert_close_relative(gh, gd, rtol, f"{name} gradient")
    assert np.all(np.isfinite(gh)), name


def test_host_derivative_is_the_eigenvalue_derivative():
  """check_grads on the host path (float64): finite differences agree with dλ = diag(U dC V)."""
  with jax.enable_x64(True):
    c = jnp.asarray(np.random.default_rng(3).normal(size=(6, 6)) / 3, jnp.float64)
    check_grads(lambda x: kj.eigenloss(x, eig_backend="host"), (c,), order=1,
                              modes=("fwd", "rev"))
    check_grads(
        lambda x: kj.skd_spectral_loss(x, n_static=2, eig_backend="host")[0], (c,), order=1,
        modes=("fwd", "rev"))
    assert kj.eigvals(c, backend="host").dtype == jnp.complex128


def test_vmap_over_batched_operators_makes_one_host_call(monkeypatch):
  calls = []
  numpy_eig = eigvals_lib._numpy_eig
  monkeypatch.setattr(eigvals_lib, "_numpy_eig",
                      lambda c: (calls.append(np.shape(c)), numpy_eig(c))[1])
  batch = jnp.stack([random_operator(4), near_defective_operator(5), 0.5 * random_operator(6)])
  grad = jax.jit(jax.vmap(jax.grad(lambda c: kj.eigenloss(c, eig_backend="host"))))
  reference = jax.jit(jax.vmap(jax.grad(lambda c: kj.eigenloss(c, eig_backend="device"))))
  for got, want in zip(grad(batch), reference(batch)):
    assert_close_relative(got, want, 3e-3, "vmap gradient")
  assert calls == [(3, K, K)]  # one batched round trip, not one per matrix
  values = jax.vmap(lambda c: kj.eigvals(c, backend="host"))(batch)
  assert values.shape == (3, K)

  def skd_loss(backend):
    return jax.jit(jax.vmap(jax.value_and_grad(lambda c: kj.skd_spectral_loss(
        c, n_static=7, eig_backend=backend)[0])))

  (vh, gh), (vd, gd) = skd_loss("host")(batch), skd_loss("device")(batch)
  assert_close_relative(vh, vd, 3e-3, "vmap SKD loss")
  for got, want in zip(gh, gd):
    assert_close_relative(got, want, 3e-3, "vmap SKD gradient")


def test_host_path_inside_shard_map_equals_one_device():
  """Each device fits C from psum-med Gram matrices, then differentiates its eigenvalues on
  the host: the same C and the same gradient as one device."""
  mesh = parallel.make_mesh(8)
  z = jnp.asarray(np.random.default_rng(7).normal(size=(16, 6, 8)), jnp.float32)

  def loss(z, axis_name, backend):
    c = kj.fit_koopman(z, axis_name=axis_name)
    return kj.skd_spectral_loss(c, n_static=2, eig_backend=backend)[0]

  sharded = jax.jit(jax.shard_map(lambda z: jax.grad(loss)(z, "data", "host"), mesh=mesh,
                                  in_specs=P("data"), out_specs=P("data")))
  single = jax.jit(jax.grad(lambda z: loss(z, None, "device")))
  assert_close_relative(sharded(z), single(z), 1e-4, "shard_map gradient")


def _two_steps(cfg, mesh, data):
  built = train.build(cfg, mesh)
  state, out = built.state, []
  for i in range(2):
    state, metrics = built.step(state, parallel.to_global(data.batch(i), mesh),
                                jax.random.fold_in(built.step_key, i))
    out.append(float(metrics["loss"]))
  return np.asarray(out), built, state


def test_sharded_train_step_on_the_host_path_trains_like_the_device_path(tiny, random_videos,
                                                                          monkeypatch):
  calls = []
  numpy_eig = eigvals_lib._numpy_eig
  monkeypatch.setattr(eigvals_lib, "_numpy_eig",
                      lambda c: (calls.append(np.shape(c)), numpy_eig(c))[1])
  mesh = parallel.make_mesh(8)
  data = loader_lib.ArrayLoader(random_videos(tiny, 48), tiny.batch_size, seed=0)
  device, _, _ = _two_steps(dataclasses.replace(tiny, eig_backend="device"), mesh, data)
  assert calls == []
  host, _, _ = _two_steps(dataclasses.replace(tiny, eig_backend="host"), mesh, data)
  np.testing.assert_allclose(host, device, rtol=1e-5)
  # At most one host round trip per step for the eigenvalues, whatever the device count.
  assert calls == [(tiny.k, tiny.k)] * 2  # two steps, one call each


@pytest.mark.parametrize("w_eigenloss", [0.0, 0.5])
def test_a_forecasting_step_makes_one_host_call(w_eigenloss, monkeypatch):
  calls = []
  numpy_eig = eigvals_lib._numpy_eig
  monkeypatch.setattr(eigvals_lib, "_numpy_eig",
                      lambda c: (calls.append(np.shape(c)), numpy_eig(c))[1])
  cfg = dataclasses.replace(configs.get_config("pendulum"), n_time=300, n_train=100, obs_dim=16,
                            hidden=8, k=4, pred_steps=4, batch_size=16, eval_steps=50,
                            w_eigenloss=w_eigenloss, num_devices=1)
  windows = {"window": kae.load_data(cfg, "train")["window"]}
  data = loader_lib.ArrayLoader(windows, cfg.batch_size, seed=0)
  mesh = parallel.make_mesh(1)
  host, _, _ = _two_steps(dataclasses.replace(cfg, eig_backend="host"), mesh, data)
  device, _, _ = _two_steps(dataclasses.replace(cfg, eig_backend="device"), mesh, data)
  np.testing.assert_allclose(host, device, rtol=1e-5)
  assert calls == [(cfg.k, cfg.k)] * 2  # two steps, one call each


def test_auto_takes_the_host_path_on_a_tpu_and_trains_the_same(tiny, random_videos,
                                                               monkeypatch):
  mesh = parallel.make_mesh(1)
  data = loader_lib.ArrayLoader(random_videos(tiny, 48), tiny.batch_size, seed=0)
  on_cpu, built_cpu, state = _two_steps(tiny, mesh, data)
  batch = parallel.to_global(data.batch(0), mesh)
  cpu_hlo = built_cpu.step.lower(state, batch, jax.random.key(0)).as_text()
  assert re.search(r"geev", cpu_hlo) and not re.search(r"callback", cpu_hlo)

  monkeypatch.setattr(eigvals_lib, "_platform", lambda: "tpu")
  assert eigvals_lib.resolve_backend("auto") == "host"
  on_tpu, built_tpu, state = _two_steps(tiny, mesh, data)  # eig_backend="auto"
  tpu_hlo = built_tpu.step.lower(state, batch, jax.random.key(0)).as_text()
  assert not re.search(r"geev", tpu_hlo) and re.search(r"callback", tpu_hlo)
  np.testing.assert_allclose(on_tpu, on_cpu, rtol=1e-5)
  eigenvalues, v, u = kj.eig(random_operator())  # analysis takes the host path too
  np.testing.assert_allclose(np.asarray(v @ u), np.eye(K), atol=1e-3)


def test_non_finite_operators_give_nan_on_both_backends_not_an_error():
  """A NaN in C must reach the train step's non-finite guard, not crash it (NumPy's eig
  raises on non-finite input; XLA's returns NaN)."""
  c = random_operator().at[3, 5].set(jnp.nan)
  batch = jnp.stack([random_operator(), c])
  for backend in ("device", "host"):
    values = jax.jit(jax.vmap(lambda m, b=backend: kj.eigvals(m, backend=b)))(batch)
    assert np.all(np.isfinite(values[0])) and np.all(np.isnan(values[1])), backend
    grad = jax.grad(lambda m, b=backend: kj.skd_spectral_loss(m, n_static=2, eig_backend=b)[0])(c)
    assert not np.all(np.isfinite(grad)), backend
  np.testing.assert_allclose(np.sort_complex(np.asarray(kj.eigvals(batch, backend="host")[0])),
                             np.sort_complex(np.asarray(kj.eigvals(random_operator(),
                                                                   backend="device"))),
                             atol=1e-5)


def test_eigenvector_penalties_need_the_device_backend():
  penalty = kj.spectral_penalty(lambda lam, v: jnp.sum(jnp.abs(v) ** 4), with_eigenvectors=True,
                                eig_backend="host")
  with pytest.raises(ValueError, match="only available on the 'device' eig backend"):
    jax.grad(penalty)(random_operator())
  with pytest.raises(ValueError, match="eig backend must be one of 'auto', 'device', 'host'"):
    kj.eigvals(random_operator(), backend="tpu")
  with pytest.raises(ValueError, match="square matrix"):
    kj.eigvals(jnp.zeros((3, 4)))
  with pytest.raises(configs.ConfigError, match="eig_backend"):
    configs.validate(dataclasses.replace(configs.get_config("tiny"), eig_backend="gpu"))


def test_bfloat16_keeps_the_koopman_fit_and_the_eigenvalues_in_float32(tiny, random_videos):
  cfg = dataclasses.replace(tiny, precision="bfloat16")
  variables = skd.init(jax.random.key(0), cfg)
  params, state = variables["params"], {"batch_stats": variables["batch_stats"]}
  batch = {"video": jnp.asarray(random_videos(cfg, 8)["video"])}
  forward = jax.jit(skd.forward, static_argnums=(4, 5))
  _, parts, outputs, _ = forward(params, state, batch, jax.random.key(1), cfg, True)
  assert outputs["z"].dtype == jnp.float32 and outputs["C"].dtype == jnp.float32
  expected, _ = kj.skd_spectral_loss(outputs["C"], n_static=cfg.n_static,
                                     static_mode=cfg.static_mode, dynamic_mode=cfg.dynamic_mode)
  np.testing.assert_allclose(parts["eig"], expected, rtol=1e-6)
  hlo = forward.lower(params, state, batch, jax.random.key(1), cfg, True).compile().as_text()
  assert "sgeev" in hlo  # LAPACK's single-precision (float32) real eig; no bfloat16 eig exists
  gram = jax.make_jaxpr(kj.koopman_gram)(outputs["z"])
  assert all(v.aval.dtype == jnp.float32 for v in gram.jaxpr.outvars)
