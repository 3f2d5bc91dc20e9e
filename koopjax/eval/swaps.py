"""Swaps of Koopman eigen-components between sequences, scored by a judge; which modes carry
which factor.

SKD's swap (docs/evaluation.md, "Swaps") exchanges a subset J of eigen-coordinates between a
target and a donor sequence, ``Re(φ_t[:, Jᶜ] U[Jᶜ] + φ_d[:, J] U[J])``; J = the static set S
is the two-factor swap (donor identity, target motion). The multifactor analysis finds J per
factor automatically instead of by hand:

1. **Components.** The eigenvalues of the real operator C come as real ones and conjugate
   pairs; a component is one real mode or one pair (kept together, so a swap stays real).
2. **Attribution.** For every component c and judge head h, the *effect*
   ``E[c, h] = mean over pairs with y_h(t) ≠ y_h(d) of p_h(y_h(d) | swap_c(t, d)) −
   p_h(y_h(d) | t)``: how much swapping only c from the donor d into the target t moves head h
   towards the donor's label (both directions of every pair are used). Component c is
   attributed to ``argmax_h E[c, h]`` if that effect is at least a threshold, else to none.
3. **Per-factor swaps.** For each static factor f with modes ``J_f``: swap only ``J_f`` from a
   donor that differs from the target in every label; success when head f takes the donor's
   value while every other head (the other static factors and the action) keeps the
   target's. No published work reports these numbers.

A *latent judge* maps latents (N, T, k) to the judge's probabilities of their decodings,
``{factor: (N, classes)}`` (`koopjax.eval.skd.make_latent_judge`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import koopjax as kj

LatentJudge = Callable[[np.ndarray], dict[str, np.ndarray]]


def mode_components(eigenvalues) -> list[np.ndarray]:
  """Groups mode indices into components: a real eigenvalue alone, a conjugate pair together.

  Relies on LAPACK's order (`koopjax.eig`): the two members of a conjugate pair are adjacent,
  the one with positive imaginary part first; real eigenvalues have imaginary part exactly 0.

  Args:
    eigenvalues: (k,) complex.

  Returns:
    List of int64 index arrays (length 1 or 2) covering 0..k-1 in order.
  """
  ev = np.asarray(eigenvalues)
  if ev.ndim != 1:
    raise ValueError(f"eigenvalues must be 1-D (k,); got shape {ev.shape}.")
  out, i = [], 0
  while i < len(ev):
    if ev[i].imag == 0:
      out.append(np.array([i], np.int64))
      i += 1
      continue
    if i + 1 >= len(ev) or not np.isclose(ev[i + 1], np.conj(ev[i]), rtol=1e-5, atol=1e-6):
      raise ValueError(f"eigenvalue {i} ({ev[i]}) is complex but its conjugate is not next to "
                       "it; expected LAPACK's order (use koopjax.eig).")
    out.append(np.array([i, i + 1], np.int64))
    i += 2
  return out


def donors(labels: Mapping[str, np.ndarray], seed: int, candidates=None, targets=None
           ) -> tuple[np.ndarray, np.ndarray]:
  """A random donor for every target that differs from it in every label.

  Args:
    labels: factor -> int labels (N,).
    seed: seed of the random choice.
    candidates: indices allowed as donors (default all N).
    targets: indices of the targets (default all N).

  Returns:
    (donor, strict), each of the length of ``targets``: ``strict`` is False where no candidate
    differs in every label; then the donor is a random one differing in the most labels.
  """
  names = sorted(labels)
  table = np.stack([np.asarray(labels[n]) for n in names], axis=1)  # (N, F)
  pool = np.arange(len(table)) if candidates is None else np.asarray(candidates, np.int64)
  targets = np.arange(len(table)) if targets is None else np.asarray(targets, np.int64)
  if len(pool) == 0:
    raise ValueError("donors needs at least one candidate.")
  rng = np.random.default_rng([seed, 3])
  donor = np.empty(len(targets), np.int64)
  strict = np.empty(len(targets), bool)
  pool_table = table[pool]
  for start in range(0, len(targets), 256):
    rows = table[targets[start:start + 256]]
    differing = np.sum(rows[:, None, :] != pool_table[None, :, :], axis=2)  # (r, P)
    for i, counts in enumerate(differing):
      best = counts.max()
      choices = np.flatnonzero(counts == best)
      donor[start + i] = pool[choices[rng.integers(len(choices))]]
      strict[start + i] = best == len(names)
  return donor, strict


_swap_jit = jax.jit(kj.swap)


def swap_latents(z_target: np.ndarray, z_donor: np.ndarray, V, U, modes) -> np.ndarray:
  """`koopjax.swap` (the donor's ``modes``, the target's rest) of (N, T, k) latents."""
  z_target = np.asarray(z_target)
  mask = kj.modes_to_mask(jnp.asarray(modes), z_target.shape[-1])
  return np.asarray(_swap_jit(jnp.asarray(z_target), jnp.asarray(z_donor), V, U, mask))


def attribute_modes(z_target: np.ndarray, z_donor: np.ndarray,
                    labels_target: Mapping[str, np.ndarray],
                    labels_donor: Mapping[str, np.ndarray], V, U, eigenvalues,
                    latent_judge: LatentJudge, *, heads: Sequence[str] | None = None,
                    threshold: float = 0.05) -> dict[str, Any]:
  """Attributes every mode component to the judge head it changes (see the module doc).

  Args:
    z_target, z_donor: latents of n pairs, (n, T, k) each.
    labels_target, labels_donor: factor -> int labels (n,) of the targets and donors.
    V, U: eigenbasis of C; eigenvalues: (k,) complex (LAPACK order, from `koopjax.eig`).
    latent_judge: latents (m, T, k) -> {factor: probabilities (m, classes)}.
    heads: heads to attribute to (default: every head of the judge that has labels).
    threshold: minimal effect for an attribution (a probability gain, in [0, 1]).

  Returns:
    {"heads": [h], "components": [[mode indices]], "effect": [[E[c, h]]] (NaN where no pair
    differs in h), "component_head": [head or None], "modes": {head: sorted mode indices}}.
  """
  z_a = np.concatenate([z_target, z_donor])   # both directions of every pair
  z_b = np.concatenate([z_donor, z_target])
  base = latent_judge(z_a)
  heads = [h for h in (heads or base) if h in labels_target]
  y_b = {h: np.concatenate([labels_donor[h], labels_target[h]]) for h in heads}
  y_a = {h: np.concatenate([labels_target[h], labels_donor[h]]) for h in heads}
  rows = np.arange(len(z_a))
  components = mode_components(eigenvalues)
  effect = np.full((len(components), len(heads)), np.nan)
  for c, modes in enumerate(components):
    probs = latent_judge(swap_latents(z_a, z_b, V, U, modes))
    for j, h in enumerate(heads):
      differ = y_a[h] != y_b[h]
      if differ.any():
        gain = probs[h][rows, y_b[h]] - base[h][rows, y_b[h]]
        effect[c, j] = float(gain[differ].mean())
  component_head = []
  modes_of = {h: [] for h in heads}
  for c, modes in enumerate(components):
    row = np.where(np.isnan(effect[c]), -np.inf, effect[c])
    best = int(np.argmax(row))
    if row[best] >= threshold:
      component_head.append(heads[best])
      modes_of[heads[best]] += [int(i) for i in modes]
    else:
      component_head.append(None)
  return {"heads": list(heads), "components": [[int(i) for i in m] for m in components],
          "effect": effect.tolist(), "component_head": component_head,
          "modes": {h: sorted(m) for h, m in modes_of.items()}, "threshold": float(threshold)}


def factor_swap_table(z: np.ndarray, labels: Mapping[str, np.ndarray], donor: np.ndarray, V, U,
                      modes: Mapping[str, Sequence[int]], latent_judge: LatentJudge,
                      factors: Sequence[str]) -> dict[str, Any]:
  """Swaps only factor f's modes from ``donor`` rows into every row, for each factor f.

  Args:
    z: latents (N, T, k); labels: factor -> int labels (N,) for every judge head.
    donor: donor row of every target row (N,).
    V, U: eigenbasis; modes: factor -> mode indices (`attribute_modes`'s "modes").
    latent_judge: latents -> {factor: probabilities}.
    factors: the factors to swap (the static ones); factors without modes are skipped.

  Returns:
    factor -> {"modes": [...], "success": fraction where head f = donor's label and every
    other head = target's label, "donor_rate": {head: fraction = donor's label},
    "pairs": N} (only factors with modes).
  """
  out = {}
  for f in factors:
    if not modes.get(f):
      continue
    probs = latent_judge(swap_latents(z, z[donor], V, U, np.asarray(modes[f], np.int64)))
    pred = {h: np.argmax(p, axis=1) for h, p in probs.items()}
    success = pred[f] == np.asarray(labels[f])[donor]
    for h in pred:
      if h != f:
        success &= pred[h] == np.asarray(labels[h])
    out[f] = {"modes": [int(i) for i in modes[f]], "success": float(success.mean()),
              "donor_rate": {h: float(np.mean(pred[h] == np.asarray(labels[h])[donor]))
                             for h in pred},
              "pairs": int(len(z))}
  return out


def incremental_swaps(z_target: np.ndarray, z_donor: np.ndarray, V, U,
                      groups: Sequence[Sequence[int]]) -> np.ndarray:
  """Target latents with the donor's modes swapped in group by group (cumulatively).

  Args:
    z_target, z_donor: latents (T, k) of one pair.
    groups: mode indices per step, e.g. [J_skin, J_pants, ...].

  Returns:
    (len(groups), T, k): row i has the donor's modes of groups 0..i.
  """
  k = np.asarray(z_target).shape[-1]
  mask = np.zeros(k, bool)
  rows = []
  for group in groups:
    mask[np.asarray(group, np.int64)] = True
    rows.append(swap_latents(z_target[None], z_donor[None], V, U, mask.copy())[0])
  return np.stack(rows) if rows else np.zeros((0,) + np.asarray(z_target).shape, np.float32)


def two_factor_swap_accuracy(z: np.ndarray, labels: Mapping[str, np.ndarray], V, U, static,
                             latent_judge: LatentJudge, *, dynamic: Sequence[str] = ("action",),
                             seed: int = 0) -> dict[str, Any]:
  """Fraction of two-factor swaps in which the judge sees the donor's static labels and the
  target's dynamic label(s).

  Every sequence is a target once; its donor differs from it in every label where possible
  (`donors`). The swap ``Re(φ_t[:, D] U[D] + φ_d[:, S] U[S])`` (`koopjax.swap`) is decoded
  and judged.

  Args:
    z: latents (N, T, k) of the sequences.
    labels: factor -> int labels (N,), one entry per judge head.
    V, U: eigenbasis of C; static: (k,) bool mask of S.
    latent_judge: latents -> {factor: probabilities (N, classes)}
      (`koopjax.eval.skd.make_latent_judge`).
    dynamic: the heads that must keep the target's label (the others take the donor's).
    seed: seed of the donor choice.

  Returns:
    {"joint": fraction with every head right, "per_head": {factor: fraction right},
     "shows_target" / "shows_donor": {factor: fraction of swaps in which the head reads the
     target's / the donor's label} (a failed head shows whose factor leaked into the swap),
     "pairs": N, "strict_pairs": pairs differing in every label}.
  """
  donor, strict = donors(labels, seed)
  swapped = swap_latents(z, z[donor], V, U, static)
  return score_swaps(latent_judge(swapped), labels, donor, strict, dynamic)


def score_swaps(probs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                donor: np.ndarray, strict: np.ndarray, dynamic: Sequence[str]) -> dict[str, Any]:
  """Scores judged swaps: sequence i kept its own dynamic factors and took ``donor[i]``'s static
  ones; ``probs`` are the judge's outputs on the swapped sequences (the record of
  `two_factor_swap_accuracy`; any model's swaps can be scored by it)."""
  right, shows_target, shows_donor = {}, {}, {}
  for name, p in probs.items():
    predicted, target = np.argmax(p, axis=1), np.asarray(labels[name])
    shows_target[name] = float(np.mean(predicted == target))
    shows_donor[name] = float(np.mean(predicted == target[donor]))
    right[name] = predicted == (target if name in dynamic else target[donor])
  joint = np.all(np.stack(list(right.values())), axis=0)
  return {"joint": float(joint.mean()), "per_head": {n: float(r.mean()) for n, r in right.items()},
          "shows_target": shows_target, "shows_donor": shows_donor,
          "pairs": int(len(donor)), "strict_pairs": int(strict.sum())}
