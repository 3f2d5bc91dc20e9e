"""The PyTorch SKD step of the benchmark (benchmarks/torch_skd.py) is the same model and loss.

koopjax's initialised variables are copied into the PyTorch module and both compute the
training loss (train-mode BatchNorm, dropout 0) and its gradients on the same uint8 batch.
Skipped when PyTorch (the optional ``torch`` extra) is not installed.
"""

import dataclasses

import jax
import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (optional: pip install 'koopjax[torch]'); the "
    "PyTorch parity test of the benchmark's reference step is skipped.")

from benchmarks import torch_skd  # noqa: E402  (needs torch)
from koopjax import configs  # noqa: E402
from koopjax.models import skd  # noqa: E402

BATCH = 8


def _config(**changes):
  base = dataclasses.replace(configs.get_config("sprites"), image_size=32, conv_dim=8, k=8,
                             n_static=2, dropout=0.0, batch_size=BATCH)
  return dataclasses.replace(base, **changes)


def _koopjax(cfg, video):
  variables = skd.init(jax.random.key(0), cfg)
  state = {"batch_stats": variables["batch_stats"]}

  def loss(params):
    return skd.loss_fn(params, state, {"video": video}, jax.random.key(1), cfg)

  with jax.default_matmul_precision("highest"):
    (value, (parts, _)), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        variables["params"])
  return jax.device_get(variables), float(value), jax.device_get(parts), jax.device_get(grads)


def _compare(cfg, dtype):
  """(koopjax loss, parts, grads mapped to torch names), (torch loss, parts, model)."""
  video = np.random.default_rng(2).integers(0, 256, (BATCH, cfg.frames, 32, 32, 3), np.uint8)
  with jax.enable_x64(dtype == torch.float64):
    variables, loss, parts, grads = _koopjax(cfg, video)
  flipped = torch_skd.upconv_kernel_is_flipped()
  model = torch_skd.TorchSKD(cfg).to(dtype)
  torch_skd.load_koopjax_variables(model, variables, flipped)
  model.train()
  t_loss, t_parts = torch_skd.loss_fn(model, torch.from_numpy(video), cfg)
  t_loss.backward()
  mapped = torch_skd.koopjax_state_dict(
      {"params": grads, "batch_stats": variables["batch_stats"]}, cfg, flipped)
  return (loss, parts, mapped), (t_loss.detach(), t_parts, model)


def _gradient_errors(mapped, model):
  errors = {}
  for name, param in model.named_parameters():
    # koopjax has one LSTM bias; torch's two biases are added and get the same gradient.
    ref = mapped[name.replace("bias_hh_l0", "bias_ih_l0")]
    got = param.grad.numpy()
    errors[name] = float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))
  return errors


@pytest.fixture(scope="module")
def float32_pair():
  return _compare(_config(), torch.float32)


def test_same_loss_and_parts_float32(float32_pair):
  (loss, parts, _), (t_loss, t_parts, _) = float32_pair
  np.testing.assert_allclose(t_loss.item(), loss, rtol=1e-4)
  for name, value in parts.items():
    np.testing.assert_allclose(t_parts[name].detach().item(), float(value), rtol=1e-4,
                               atol=1e-7, err_msg=name)


def test_same_gradients_float32(float32_pair):
  (_, _, mapped), (_, _, model) = float32_pair
  errors = _gradient_errors(mapped, model)
  # The first convolution's weight and the first BatchNorm's bias get gradients that are
  # sums with heavy cancellation (inputs with mean ~0.5 and a BatchNorm that removes any
  # per-channel shift), so float32 rounding alone moves them by up to ~1e-2 relative; every
  # other gradient agrees to ~1e-5. The float64 test below checks them tightly.
  loose = {"enc_cnn.0.weight", "enc_cnn.1.bias"}
  for name, error in errors.items():
    assert error < (5e-2 if name in loose else 1e-3), f"{name}: relative error {error:.2e}"


def test_same_loss_and_gradients_float64():
  cfg = _config(precision="float64", static_mode="real", dynamic_mode="ball", n_static=3,
                decoder_hidden=12)
  (loss, parts, mapped), (t_loss, t_parts, model) = _compare(cfg, torch.float64)
  np.testing.assert_allclose(t_loss.item(), loss, rtol=1e-10)
  for name, value in parts.items():
    np.testing.assert_allclose(t_parts[name].detach().item(), float(value), rtol=1e-9,
                               atol=1e-14, err_msg=name)
  for name, error in _gradient_errors(mapped, model).items():
    assert error < 1e-7, f"{name}: relative gradient error {error:.2e}"


def test_every_parameter_is_mapped():
  cfg = _config()
  variables = jax.device_get(skd.init(jax.random.key(0), cfg))
  mapped = torch_skd.koopjax_state_dict(variables, cfg, upconv_flipped=False)
  model = torch_skd.TorchSKD(cfg)
  expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
  assert set(mapped) == expected
  n_koopjax = sum(x.size for x in jax.tree.leaves(variables["params"]))
  n_torch = sum(p.numel() for p in model.parameters())
  lstm_extra = sum(p.numel() for n, p in model.named_parameters() if n.endswith("bias_hh_l0"))
  assert n_torch - lstm_extra == n_koopjax


@pytest.mark.parametrize("autocast", [None, torch.bfloat16], ids=["float32", "bfloat16"])
def test_train_step_updates_and_stays_finite(autocast):
  cfg = _config(dropout=0.2)
  torch.manual_seed(0)
  model = torch_skd.TorchSKD(cfg)
  step = torch_skd.make_train_step(model, cfg, autocast_dtype=autocast)
  video = torch.from_numpy(
      np.random.default_rng(3).integers(0, 256, (BATCH, cfg.frames, 32, 32, 3), np.uint8))
  before = [p.detach().clone() for p in model.parameters()]
  losses = [step(video).item() for _ in range(2)]
  assert all(np.isfinite(losses))
  assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
