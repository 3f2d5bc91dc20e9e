"""Variational and contrastive pieces of sequential VAEs (SPYL; Naiman, Berman & Azencot,
ICML 2023): Gaussian KL divergences, InfoNCE with cosine similarity, the choice of negatives
farthest by KL, and the minibatch-weighted-sampling estimate of the mutual information between
a static and a dynamic code.

Gaussians are diagonal, given by means μ and log-variances ℓ = log σ² on the last axis.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mean_q: jax.Array, logvar_q: jax.Array, mean_p: jax.Array | float = 0.0,
                logvar_p: jax.Array | float = 0.0) -> jax.Array:
  """KL(q ‖ p) of diagonal Gaussians, summed over the last axis.

  KL = ½ Σ [ℓ_p − ℓ_q + (σ_q² + (μ_q − μ_p)²) / σ_p² − 1]; p defaults to N(0, I).

  Returns:
    Shape of the broadcast inputs without the last axis.
  """
  mean_p, logvar_p = jnp.asarray(mean_p), jnp.asarray(logvar_p)
  terms = (logvar_p - logvar_q + (jnp.exp(logvar_q) + jnp.square(mean_q - mean_p))
           * jnp.exp(-logvar_p) - 1.0)
  return 0.5 * jnp.sum(terms, axis=-1)


def pairwise_gaussian_kl(mean_a: jax.Array, logvar_a: jax.Array, mean_b: jax.Array,
                         logvar_b: jax.Array) -> jax.Array:
  """KL(q_a,i ‖ q_b,j) for every pair: (n, D) and (m, D) -> (n, m)."""
  return gaussian_kl(mean_a[:, None, :], logvar_a[:, None, :], mean_b[None, :, :],
                     logvar_b[None, :, :])


def farthest_by_kl(mean_a: jax.Array, logvar_a: jax.Array, mean_b: jax.Array,
                   logvar_b: jax.Array, count: int) -> jax.Array:
  """For every anchor i, the indices of the ``count`` bank members j with the largest
  KL(q_a,i ‖ q_b,j) (SPYL's "soft" negatives), farthest first. Shape (n, count)."""
  if not 1 <= count <= mean_b.shape[0]:
    raise ValueError(f"count must be in [1, {mean_b.shape[0]}] (the bank's size); got {count}.")
  return jax.lax.top_k(pairwise_gaussian_kl(mean_a, logvar_a, mean_b, logvar_b), count)[1]


def info_nce(anchor: jax.Array, positive: jax.Array, negatives: jax.Array,
             temperature: float = 0.5) -> jax.Array:
  """InfoNCE with cosine similarity, averaged over anchors.

  L = mean_i −log( e^{cos(a_i, p_i)/τ} / (e^{cos(a_i, p_i)/τ} + Σ_n e^{cos(a_i, n_in)/τ}) ).

  Args:
    anchor: (B, D). positive: (B, D). negatives: (B, K, D), each anchor's own.
    temperature: τ > 0.
  """
  def unit(x):
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-8)

  a, p, n = unit(anchor), unit(positive), unit(negatives)
  positive_logit = jnp.sum(a * p, axis=-1) / temperature                  # (B,)
  negative_logits = jnp.einsum("bd,bkd->bk", a, n) / temperature          # (B, K)
  logits = jnp.concatenate([positive_logit[:, None], negative_logits], axis=-1)
  return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - positive_logit)


def _log_density(sample: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """log N(sample_i; mean_m, exp(logvar_m)) for every i, m: (B, D) x (B, D) -> (B, B)."""
  x, mu, lv = sample[:, None, :], mean[None, :, :], logvar[None, :, :]
  return -0.5 * jnp.sum(_LOG_2PI + lv + jnp.square(x - mu) * jnp.exp(-lv), axis=-1)


def mws_mutual_information(s: jax.Array, s_mean: jax.Array, s_logvar: jax.Array,
                           d: jax.Array, d_mean: jax.Array, d_logvar: jax.Array,
                           dataset_size: int) -> jax.Array:
  """Minibatch-weighted-sampling estimate of I(s; d), each term clamped at 0 (as SPYL's code).

  With B posterior samples per frame t and aggregate posteriors estimated from the batch,
  ``log q(z_i) ≈ logsumexp_m log q(z_i | x_m) − log(B N)`` (Chen et al., 2018), the estimate is
  ``mean_{i,t} max(0, log q(s_i, d_it) − log q(s_i) − log q(d_it))``. Note the estimator's
  bias: when every posterior in the batch is the same it returns log N, not 0.

  Args:
    s: samples (B, S); s_mean, s_logvar: posteriors (B, S).
    d: samples (B, T, D); d_mean, d_logvar: posteriors (B, T, D).
    dataset_size: N, the number of training sequences.
  """
  log_bn = math.log(s.shape[0] * dataset_size)
  log_qs = _log_density(s, s_mean, s_logvar)                              # (B, B)

  def frame(d_t, mean_t, logvar_t):
    log_qd = _log_density(d_t, mean_t, logvar_t)
    joint = jax.nn.logsumexp(log_qs + log_qd, axis=1)
    terms = (joint - jax.nn.logsumexp(log_qs, axis=1) - jax.nn.logsumexp(log_qd, axis=1)
             + log_bn)
    return jnp.mean(jnp.maximum(terms, 0.0))

  return jnp.mean(jax.vmap(frame, in_axes=1)(d, d_mean, d_logvar))
