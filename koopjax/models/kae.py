"""Koopman autoencoder for forecasting (consistent KAE of Azencot et al., ICML 2020), with the
eigenvalue initialisation and penalty of Miller et al. (2022). See docs/forecasting.md.

Latent codes are rows and operators act from the right (``z_{t+1} = z_t C``), as everywhere
in koopjax. Sizes (spec 2.1 defaults): encoder ``n → h → h → k`` (tanh, tanh, linear),
decoder ``k → h → h → n`` (tanh after every layer), n = 64, h = 16, k = 6; dense weights
Glorot-normal, biases 0 (the reference's ``xavier_normal_``).

Loss on a window ``x_0..x_s`` (b windows, MSE = mean over batch and features)::

    L = Σ_{j=1..s} MSE(dec(enc(x_0) C^j), x_j)                       forward prediction
      + λ · s · MSE(dec(enc(x_0)), x_0)                              identity
      + ν · Σ_{j=1..s} MSE(dec(enc(x_s) D^j), x_{s−j})               backward prediction
      + η · Σ_{κ=1..k} (‖(DC)[:κ,:κ] − I_κ‖² + ‖(CD)[:κ,:κ] − I_κ‖²) / (2κ)   consistency
      + w_eig · kj.eigenloss(C)                                      eigenvalue penalty

(``D[:κ,:] C[:,:κ] = (DC)[:κ,:κ]``.) Operator initialisations of C: ``gaussian`` (entries
N(0, 1/k²), the reference's ``gaussian_init_``; spectral radius about 1/√k), ``orthogonal``
(``orthogonal_scale`` · U Vᵀ from the SVD of that Gaussian, as the reference) and
``eigeninit`` (`koopjax.eigeninit` with any of its distributions). D starts at C⁻¹, so the
consistency penalty starts at 0. (The reference sets the backward weight to
``pinv(Wᵀ)`` of the forward weight W in PyTorch's ``y = x Wᵀ`` convention, which is the inverse
transposed — for an orthogonal W that is ≈ W itself, not its inverse.)

Implements `koopjax.models.Model`; long-rollout evaluation is in `koopjax.eval.kae`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import koopjax as kj
from koopjax._src import checks
from koopjax._src.spectral import eigenloss_of_eigenvalues
from koopjax.configs import KAEConfig
from koopjax.configs import parse_eigeninit_params
from koopjax.data import dynamics

_HIGHEST = jax.lax.Precision.HIGHEST
# The operator's initial value is drawn from this stream of cfg.seed (see `init`).
_OPERATOR_STREAM = 0x4B4145


class MLP(nn.Module):
  """Dense layers with tanh between them (and after the last one if ``final_tanh``).

  Maps (..., d_in) -> (..., features[-1]).
  """
  features: Sequence[int]
  final_tanh: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    for i, width in enumerate(self.features):
      x = nn.Dense(width, kernel_init=nn.initializers.glorot_normal(),
                   bias_init=nn.initializers.zeros)(x)
      if self.final_tanh or i < len(self.features) - 1:
        x = jnp.tanh(x)
    return x


def encoder(cfg: KAEConfig) -> MLP:
  """Observations (..., obs_dim) -> latents (..., k)."""
  return MLP((cfg.hidden, cfg.hidden, cfg.k), final_tanh=False)


def decoder(cfg: KAEConfig) -> MLP:
  """Latents (..., k) -> observations (..., obs_dim) in (−1, 1)."""
  return MLP((cfg.hidden, cfg.hidden, cfg.obs_dim), final_tanh=True)


def encode(params: dict[str, Any], x: jax.Array, cfg: KAEConfig) -> jax.Array:
  """Latent codes of observations: (..., obs_dim) -> (..., k)."""
  return encoder(cfg).apply({"params": params["encoder"]}, x)


def decode(params: dict[str, Any], z: jax.Array, cfg: KAEConfig) -> jax.Array:
  """Observations of latent codes: (..., k) -> (..., obs_dim)."""
  return decoder(cfg).apply({"params": params["decoder"]}, z)


# ---------------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------------

def initial_operator(key: jax.Array, cfg: KAEConfig) -> np.ndarray:
  """The forward operator's initial value, C0 (k, k) float32, by ``cfg.operator_init``.

  - ``gaussian``: entries N(0, 1/k²) (eigenvalues fill a disk of radius about 1/√k).
  - ``orthogonal``: ``orthogonal_scale · U Vᵀ`` with ``U S Vᵀ`` the SVD of that Gaussian
    (every eigenvalue has modulus ``orthogonal_scale``).
  - ``eigeninit``: ``kj.eigeninit(key, k, eigeninit_distribution, **eigeninit_params)``.

  Runs eagerly (``kj.eigeninit`` uses NumPy); ``key`` must be a concrete PRNG key.
  """
  k = cfg.k
  if cfg.operator_init == "eigeninit":
    c = kj.eigeninit(key, k, cfg.eigeninit_distribution,
                     **parse_eigeninit_params(cfg.eigeninit_params))
    return np.asarray(c, np.float32)
  gaussian = np.asarray(jax.random.normal(key, (k, k)), np.float64) / k
  if cfg.operator_init == "gaussian":
    return gaussian.astype(np.float32)
  if cfg.operator_init == "orthogonal":
    u, _, vt = np.linalg.svd(gaussian)
    return (cfg.orthogonal_scale * (u @ vt)).astype(np.float32)
  raise ValueError(f"operator_init must be one of gaussian, orthogonal, eigeninit; got "
                   f"{cfg.operator_init!r}.")


def consistency_penalty(c: jax.Array, d: jax.Array) -> jax.Array:
  """``Σ_{κ=1..k} (‖(DC)[:κ,:κ] − I_κ‖_F² + ‖(CD)[:κ,:κ] − I_κ‖_F²) / (2κ)``.

  Zero iff every leading principal block of DC and CD is the identity (in particular when
  D = C⁻¹). The block sums come from a 2-D cumulative sum of the squared residuals.

  Args:
    c: forward operator (k, k). d: backward operator (k, k).

  Returns:
    Scalar.
  """
  k = checks.square_operator("C", c)
  if checks.square_operator("D", d) != k:
    raise ValueError(f"C and D must have the same shape; got {tuple(c.shape)} and "
                     f"{tuple(d.shape)}.")
  eye = jnp.eye(k, dtype=c.dtype)
  residual = (jnp.square(jnp.matmul(d, c, precision=_HIGHEST) - eye)
              + jnp.square(jnp.matmul(c, d, precision=_HIGHEST) - eye))
  block_sums = jnp.diagonal(jnp.cumsum(jnp.cumsum(residual, axis=0), axis=1))
  return jnp.sum(block_sums / (2.0 * jnp.arange(1, k + 1, dtype=c.dtype)))


# ---------------------------------------------------------------------------------------------
# Model interface
# ---------------------------------------------------------------------------------------------

def batch_keys(cfg: KAEConfig) -> tuple[str, ...]:
  """Dataset arrays a training batch holds: windows x_0..x_s, (b, s + 1, obs_dim)."""
  del cfg
  return ("window",)


@functools.lru_cache(maxsize=16)
def _trajectory(system: str, theta0: float, n_time: int, n_train: int, dt: float, dim: int,
                noise: float, seed: int):
  params = {"theta0": theta0} if system in ("pendulum", "damped_pendulum") else {}
  data = dynamics.generate(system, n_time=n_time, n_train=n_train, dt=dt, dim=dim, noise=noise,
                           seed=seed, **params)
  for array in (data.train, data.test, data.train_clean, data.test_clean, data.states):
    array.setflags(write=False)  # shared by every caller of the cache
  return data


def trajectory(cfg: KAEConfig):
  """The config's `koopjax.data.dynamics.Trajectory` (generated once per process, cached)."""
  return _trajectory(cfg.system, float(cfg.theta0), cfg.n_time, cfg.n_train, float(cfg.dt),
                     cfg.obs_dim, float(cfg.noise), cfg.data_seed)


def load_data(cfg: KAEConfig, split: str) -> dict[str, np.ndarray]:
  """Windows of s + 1 consecutive steps of the observed split.

  Args:
    cfg: the run's config.
    split: "train" (first n_train steps) or "test" (the rest).

  Returns:
    ``{"window": float32 array (n_split − s, s + 1, obs_dim)}``.
  """
  if split not in ("train", "test"):
    raise ValueError(f"split must be 'train' or 'test'; got {split!r}.")
  x = getattr(trajectory(cfg), split)
  return {"window": dynamics.windows(x, cfg.pred_steps + 1)}


def init(rng: jax.Array, cfg: KAEConfig) -> dict[str, Any]:
  """Variables ``{"params": {"encoder", "decoder", "C"[, "D"]}}``.

  The encoder and decoder weights come from ``rng``. The operator is drawn eagerly on the
  host (``kj.eigeninit`` is not traceable, and the trainer traces ``init``) from a key
  derived from ``cfg.seed``, so it is the same for every ``rng`` of one config; D = C⁻¹.
  """
  encoder_key, decoder_key = jax.random.split(rng)
  with jax.ensure_compile_time_eval():
    key = jax.random.fold_in(jax.random.key(cfg.seed), _OPERATOR_STREAM)
    c0 = initial_operator(key, cfg)
  params = {
      "encoder": encoder(cfg).init(encoder_key, jnp.zeros((1, cfg.obs_dim)))["params"],
      "decoder": decoder(cfg).init(decoder_key, jnp.zeros((1, cfg.k)))["params"],
      "C": jnp.asarray(c0),
  }
  if cfg.backward:
    params["D"] = jnp.asarray(np.linalg.inv(c0.astype(np.float64)).astype(np.float32))
  return {"params": params}


def _mse(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.mean(jnp.square(a - b))


def _check_window(window: jax.Array, cfg: KAEConfig) -> None:
  expected = (cfg.pred_steps + 1, cfg.obs_dim)
  if window.ndim != 3 or tuple(window.shape[1:]) != expected:
    raise ValueError(f"batch['window'] must have shape (batch, pred_steps + 1, obs_dim) = "
                     f"(b, {expected[0]}, {expected[1]}); got {tuple(window.shape)}.")


def predict(params: dict[str, Any], x0: jax.Array, steps: int, cfg: KAEConfig,
            backward: bool = False) -> jax.Array:
  """Decoded latent rollout ``dec(enc(x0) C^j)``, j = 0..steps (D^j with ``backward``).

  Args:
    params: model parameters.
    x0: initial observations, shape (b, obs_dim).
    steps: number of operator applications (a Python int).
    cfg: the config.
    backward: roll out with D (needs ``cfg.backward``).

  Returns:
    Predictions, shape (b, steps + 1, obs_dim); ``[:, 0]`` is the reconstruction of x0.
  """
  operator = params["D"] if backward else params["C"]
  return decode(params, kj.rollout(encode(params, x0, cfg), operator, steps), cfg)


def loss_terms(params: dict[str, Any], window: jax.Array, cfg: KAEConfig
               ) -> dict[str, jax.Array]:
  """The unweighted loss terms of the module docstring on windows (b, s + 1, obs_dim).

  Returns:
    Scalars "fwd", "identity" (already × s), "bwd", "consist", "eigenloss" (0 when not used),
    "spectral_radius" (max |λ(C)|, not differentiated).
  """
  _check_window(window, cfg)
  s = cfg.pred_steps
  forward = predict(params, window[:, 0], s, cfg)
  terms = {
      "fwd": s * _mse(forward[:, 1:], window[:, 1:]),
      "identity": s * _mse(forward[:, 0], window[:, 0]),
  }
  if cfg.backward:
    backward = predict(params, window[:, -1], s, cfg, backward=True)
    terms["bwd"] = s * _mse(backward[:, 1:], window[:, ::-1][:, 1:])
    terms["consist"] = consistency_penalty(params["C"], params["D"])
  c = params["C"]
  if cfg.w_eigenloss <= 0:  # logged for comparison, no gradient
    c = jax.lax.stop_gradient(c)
  # One eigendecomposition per step for both terms (one host round trip on the host path).
  eigenvalues = kj.eigvals(c, backend=cfg.eig_backend)
  terms["eigenloss"] = eigenloss_of_eigenvalues(eigenvalues, cfg.eigenloss_kind,
                                                radius=cfg.eigenloss_radius)
  terms["spectral_radius"] = jnp.max(jnp.abs(jax.lax.stop_gradient(eigenvalues)))
  return terms


def total_loss(terms: dict[str, jax.Array], cfg: KAEConfig) -> jax.Array:
  """Weighted sum of `loss_terms` (module docstring)."""
  loss = terms["fwd"] + cfg.w_id * terms["identity"]
  if cfg.backward:
    loss = loss + cfg.w_bwd * terms["bwd"] + cfg.w_consist * terms["consist"]
  if cfg.w_eigenloss > 0:
    loss = loss + cfg.w_eigenloss * terms["eigenloss"]
  return loss


def loss_fn(params, model_state, batch, rng, cfg: KAEConfig):
  """Training loss for `koopjax.train`: ``(loss, (terms, model_state))``."""
  del rng
  terms = loss_terms(params, batch["window"], cfg)
  return total_loss(terms, cfg), (terms, model_state)


def prediction_mse(params: dict[str, Any], window: jax.Array, cfg: KAEConfig) -> jax.Array:
  """Validation metric: mean over j = 1..s of MSE(dec(enc(x_0) C^j), x_j) on (b, s + 1, n)."""
  _check_window(window, cfg)
  forward = predict(params, window[:, 0], cfg.pred_steps, cfg)
  return _mse(forward[:, 1:], window[:, 1:])


def variables_of(state) -> dict[str, Any]:
  """Model variables from a `TrainState` (the KAE has parameters only)."""
  return {"params": state.params}
