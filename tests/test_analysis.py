"""Koopman analysis of hidden states (KANN's method) and its pieces, against an independent
NumPy implementation of the reference's steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import koopjax as kj


def reference(states, rank, lengths=None):
  """NumPy: SVD of the stacked valid rows (no centring), projection, lstsq on valid pairs, eig."""
  b, t, h = states.shape
  lengths = np.full(b, t) if lengths is None else np.asarray(lengths)
  rows = np.concatenate([states[i, :lengths[i]] for i in range(b)])
  basis = np.linalg.svd(rows, full_matrices=False)[2][:rank].T
  past = np.concatenate([states[i, :lengths[i] - 1] @ basis for i in range(b)])
  future = np.concatenate([states[i, 1:lengths[i]] @ basis for i in range(b)])
  operator = np.linalg.lstsq(past, future, rcond=None)[0]
  return basis, operator, np.linalg.eigvals(operator)


def hidden_states(b=6, t=9, h=12, seed=0):
  """States of a stable linear recurrence seen through a random map (rank 5 < H)."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(5, 5))
  a = 0.9 * a / np.max(np.abs(np.linalg.eigvals(a)))
  x = np.zeros((b, t, 5))
  x[:, 0] = rng.normal(size=(b, 5))
  for step in range(1, t):
    x[:, step] = x[:, step - 1] @ a.T + 0.01 * rng.normal(size=(b, 5))
  return (x @ rng.normal(size=(5, h)) + 0.001 * rng.normal(size=(b, t, h))).astype(np.float32)


def same_operator(basis, operator, ref_basis, ref_operator, rtol):
  """C is defined up to the basis' orthogonal freedom: compare P C Pᵀ."""
  np.testing.assert_allclose(basis @ operator @ basis.T, ref_basis @ ref_operator @ ref_basis.T,
                             rtol=rtol, atol=rtol * np.abs(ref_operator).max())


@pytest.mark.parametrize("with_lengths", [False, True])
def test_koopman_analysis_matches_an_independent_computation(with_lengths):
  states = hidden_states()
  lengths = np.array([9, 7, 4, 9, 2, 6]) if with_lengths else None
  analyse = jax.jit(lambda s, n: kj.koopman_analysis(s, rank=5, lengths=n))
  out = analyse(jnp.asarray(states), None if lengths is None else jnp.asarray(lengths))
  if with_lengths:  # padding must not matter: fill it with garbage
    garbage = states.copy()
    for i, n in enumerate(lengths):
      garbage[i, n:] = 1e3
    again = analyse(jnp.asarray(garbage), jnp.asarray(lengths))
    np.testing.assert_allclose(again.operator, out.operator, rtol=1e-5, atol=1e-6)
  basis, operator, eigenvalues = reference(states.astype(np.float64), 5, lengths)
  np.testing.assert_allclose(np.asarray(out.basis).T @ np.asarray(out.basis), np.eye(5),
                             atol=1e-5)
  same_operator(np.asarray(out.basis), np.asarray(out.operator), basis, operator, 1e-3)
  np.testing.assert_allclose(np.sort_complex(np.asarray(out.eigenvalues)),
                             np.sort_complex(eigenvalues), atol=1e-3)
  # coordinates: Φ = Zp V, evolving by Λ on the valid steps
  phi = np.asarray(out.coordinates)
  lam = np.asarray(out.eigenvalues)
  valid = np.ones(states.shape[:2], bool) if lengths is None else (
      np.arange(9)[None] < lengths[:, None])
  assert np.all(phi[~valid] == 0)
  pairs = valid[:, 1:] & valid[:, :-1]
  pred = phi[:, :-1] * lam
  err = np.linalg.norm((pred - phi[:, 1:])[pairs]) / np.linalg.norm(phi[:, 1:][pairs])
  assert err < 0.05, err


def test_masked_fit_equals_lstsq_on_the_valid_pairs_only():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(5, 7, 4)).astype(np.float32)
  lengths = np.array([7, 3, 5, 2, 7])
  c = kj.fit_koopman(jnp.asarray(z), lengths=jnp.asarray(lengths))
  past = np.concatenate([z[i, :n - 1] for i, n in enumerate(lengths)])
  future = np.concatenate([z[i, 1:n] for i, n in enumerate(lengths)])
  np.testing.assert_allclose(c, np.linalg.lstsq(past, future, rcond=None)[0], rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(kj.fit_koopman(jnp.asarray(z), lengths=jnp.full(5, 7)),
                             kj.fit_koopman(jnp.asarray(z)), rtol=1e-6)
  assert kj.pair_mask(jnp.asarray([3, 1]), 4).tolist() == [[True, True, False],
                                                            [False, False, False]]


def test_default_rank_amplitudes_continuous_eigenvalues_and_modal_states():
  states = jnp.asarray(hidden_states(b=2, t=4, h=12))
  out = kj.koopman_analysis(states)
  assert out.basis.shape == (12, 5)  # min(2 * 3, 12) - 1, the reference's default
  amplitudes = kj.mode_amplitudes(out.coordinates)
  np.testing.assert_allclose(amplitudes, np.abs(np.asarray(out.coordinates)).sum(1).mean(0),
                             rtol=1e-6)
  lam = jnp.asarray([1.0, 0.5j, -0.25, 0.9 * np.exp(0.3j)])
  ct = kj.continuous_eigenvalues(lam, 0.1)
  np.testing.assert_allclose(np.exp(np.asarray(ct) * 0.1), lam, atol=1e-6)
  np.testing.assert_allclose(ct[0], 0.0, atol=1e-7)
  np.testing.assert_allclose(ct[3], (np.log(0.9) + 0.3j) / 0.1, rtol=1e-5)
  everything = kj.modal_states(out, jnp.ones(5, bool))
  projection = np.asarray(states) @ np.asarray(out.basis) @ np.asarray(out.basis).T
  np.testing.assert_allclose(everything, projection, atol=1e-3)
  order = np.argsort(-np.abs(np.asarray(out.eigenvalues)))
  total = sum(np.asarray(kj.modal_states(out, jnp.asarray([i]))) for i in order)
  np.testing.assert_allclose(total, projection, atol=1e-3)  # modes add up


def test_rank_deficient_states_give_finite_results():
  states = jnp.zeros((3, 5, 6)).at[:, :, 0].set(1.0)  # rank 1, constant in time
  out = kj.koopman_analysis(states, rank=4)
  assert all(np.all(np.isfinite(np.asarray(x))) for x in out)


def test_bad_input_gives_clear_errors():
  states = jnp.ones((2, 5, 4))
  with pytest.raises(ValueError, match=r"rank must be in \[1, 4\]"):
    kj.koopman_analysis(states, rank=5)
  with pytest.raises(ValueError, match="lengths >= 2"):
    kj.koopman_analysis(states, lengths=jnp.asarray([5, 1]))
  with pytest.raises(ValueError, match=r"lengths must be integers of shape \(2,\)"):
    kj.koopman_analysis(states, lengths=jnp.asarray([5, 5, 5]))
  with pytest.raises(ValueError, match=r"\(batch, steps, hidden\)"):
    kj.koopman_analysis(jnp.ones((5, 4)))
  with pytest.raises(ValueError, match="at least 2 steps"):
    kj.koopman_analysis(jnp.ones((2, 1, 4)))
  with pytest.raises(ValueError, match="dt must be a finite number > 0"):
    kj.continuous_eigenvalues(jnp.ones(2), 0.0)
