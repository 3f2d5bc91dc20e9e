"""Multifactor swaps, quantitatively: which Koopman modes carry which factor.

SKD's multifactor swap (skd-spec.md 1.5) exchanges a subset J of eigen-coordinates between a
target and a donor sequence, ``Re(φ_t[:, Jᶜ] U[Jᶜ] + φ_d[:, J] U[J])``; the reference picks J
by hand. Here J is found automatically and scored with the judge:

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

Attribution uses pairs of *training* sequences; the table is scored on test pairs.
"""

from __future__ import annotations

import json
import pathlib
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


def factor_eigenvalue_plot(eigenvalues, static, attribution: Mapping[str, Any],
                           path: pathlib.Path) -> None:
  """Eigenvalues of C coloured by the factor their component carries (`attribute_modes`).

  Left: the complex plane with the unit circle; right: a zoom on the static modes (near 1),
  where the factors crowd. Squares are static modes, circles dynamic ones; grey: no factor.
  """
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  eigenvalues, static = np.asarray(eigenvalues), np.asarray(static, bool)
  head_of = np.full(len(eigenvalues), None, object)
  for modes, head in zip(attribution["components"], attribution["component_head"]):
    head_of[modes] = head
  colours = {h: plt.get_cmap("tab10")(i % 10) for i, h in enumerate(attribution["heads"])}
  fig, axes = plt.subplots(1, 2, figsize=(10, 5))
  for ax, zoom in zip(axes, (False, True)):
    angle = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(angle), np.sin(angle), color="0.7", lw=1)
    labelled = set()
    for head in [None, *attribution["heads"]]:
      name = head or "no factor"
      for is_static, marker in ((True, "s"), (False, "o")):
        pick = np.asarray([h == head for h in head_of]) & (static == is_static)
        if pick.any():
          ax.scatter(eigenvalues.real[pick], eigenvalues.imag[pick], marker=marker, s=40,
                     color=colours.get(head, "0.6"), edgecolors="k", linewidths=0.4,
                     label=None if name in labelled else name)
          labelled.add(name)
    if zoom and static.any():
      points = eigenvalues[static]
      pad = max(0.02, 0.15 * float(np.ptp(points.real) + np.ptp(points.imag)))
      ax.set_xlim(points.real.min() - pad, points.real.max() + pad)
      ax.set_ylim(points.imag.min() - pad, points.imag.max() + pad)
      ax.set_title("zoom on the static modes", fontsize=9)
    else:
      limit = max(1.1, float(np.max(np.abs(eigenvalues))) * 1.05)
      ax.set_xlim(-limit, limit)
      ax.set_ylim(-limit, limit)
      ax.set_aspect("equal")
      ax.set_title("eigenvalues of C by attributed factor (■ static, ● dynamic)", fontsize=9)
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.grid(alpha=0.3)
  axes[0].legend(loc="lower left", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def evaluate(*, skd_variables, skd_cfg, train: Mapping[str, np.ndarray], test_z: np.ndarray,
             test_labels: Mapping[str, np.ndarray], test_video: np.ndarray, analysis,
             latent_judge: LatentJudge, heads: Sequence[str], static_heads: Sequence[str],
             seeds: Sequence[int], pairs: int, threshold: float,
             out_dir: pathlib.Path, encode, decode) -> dict[str, Any]:
  """Attribution on train pairs, per-factor swap table on test pairs per seed, figures.

  Writes ``out_dir/eigenvalues_by_factor.png`` and ``out_dir/incremental_swap.png``.
  ``encode(variables, video, cfg)`` and ``decode(variables, z, cfg)`` batch the SKD.
  """
  from koopjax import report

  V, U = analysis.eig.V, analysis.eig.U
  eigenvalues = np.asarray(analysis.eig.eigenvalues)
  train_labels = {h: np.asarray(train[h]) for h in heads}
  rng = np.random.default_rng([0, 4])
  targets = np.sort(rng.choice(len(train["video"]), min(pairs, len(train["video"])),
                               replace=False))
  donor, _ = donors(train_labels, seed=0, targets=targets)
  z_t = encode(skd_variables, train["video"][targets], skd_cfg)
  z_d = encode(skd_variables, train["video"][donor], skd_cfg)
  attribution = attribute_modes(
      z_t, z_d, {h: v[targets] for h, v in train_labels.items()},
      {h: v[donor] for h, v in train_labels.items()}, V, U, eigenvalues, latent_judge,
      heads=heads, threshold=threshold)
  attribution["pairs"] = int(len(targets))

  per_seed = []
  for seed in seeds:
    test_donor, _ = donors(test_labels, seed)
    per_seed.append(factor_swap_table(test_z, test_labels, test_donor, V, U,
                                      attribution["modes"], latent_judge, static_heads))
  table = {}
  for f in per_seed[0]:
    success = np.asarray([s[f]["success"] for s in per_seed])
    table[f] = {"modes": per_seed[0][f]["modes"],
                "success": {"mean": float(success.mean()),
                            "std": float(success.std(ddof=1)) if len(success) > 1 else 0.0},
                "donor_rate": {h: float(np.mean([s[f]["donor_rate"][h] for s in per_seed]))
                               for h in per_seed[0][f]["donor_rate"]},
                "pairs": per_seed[0][f]["pairs"]}

  factor_eigenvalue_plot(eigenvalues, np.asarray(analysis.static), attribution,
                         out_dir / "eigenvalues_by_factor.png")

  test_donor, strict = donors(test_labels, seeds[0])
  target = int(np.flatnonzero(strict)[0]) if strict.any() else 0
  steps = [f for f in static_heads if attribution["modes"].get(f)]
  frames = incremental_swaps(test_z[target], test_z[test_donor[target]], V, U,
                             [attribution["modes"][f] for f in steps])
  zs = np.concatenate([test_z[[target]], frames, test_z[[test_donor[target]]]])
  decoded = decode(skd_variables, zs, skd_cfg)
  rows = [test_video[target]] + list(decoded) + [test_video[test_donor[target]]]
  names = ["target", "target (recon)"] + ["+ " + f for f in steps] + ["donor (recon)", "donor"]
  report.video_grid(rows, names, out_dir / "incremental_swap.png",
                    "incremental multifactor swap: the donor's modes of one more factor per row")
  result = {"factors": list(static_heads), "attribution": attribution, "table": table,
            "per_seed": per_seed,
            "incremental_swap": {"target": target, "donor": int(test_donor[target]),
                                 "order": steps}}
  (out_dir / "multifactor.json").write_text(json.dumps(result, indent=2) + "\n")
  return result


def markdown(multi: Mapping[str, Any]) -> list[str]:
  """Markdown lines of the multifactor results."""
  attribution, table = multi["attribution"], multi["table"]
  heads = attribution["heads"]
  lines = [
      "## Multifactor swaps (no published numbers exist)",
      "",
      f"Modes attributed on {attribution['pairs']} train pairs (effect = gain in the judge's "
      f"probability of the donor's label when only that component is swapped; threshold "
      f"{attribution['threshold']}).",
      "",
      "| component (modes) | " + " | ".join(heads) + " | attributed to |",
      "|---|" + "---|" * (len(heads) + 1),
  ]
  for modes, effects, head in zip(attribution["components"], attribution["effect"],
                                  attribution["component_head"]):
    cells = ["—" if e != e else f"{e:+.2f}" for e in effects]  # e != e: NaN
    lines.append(f"| {modes} | " + " | ".join(cells) + f" | {head or '—'} |")
  lines += [
      "",
      "Swap only factor f's modes from a donor differing in every label: success = head f "
      "takes the donor's value while every other head keeps the target's (mean ± std over "
      "seeds); then the rate at which each head shows the donor's value.",
      "",
      "| factor | modes | success | " + " | ".join(f"donor {h}" for h in heads) + " |",
      "|---|---|---|" + "---|" * len(heads),
  ]
  for f in multi["factors"]:
    if f not in table:
      lines.append(f"| {f} | none found | — |" + " — |" * len(heads))
      continue
    row = table[f]
    cells = [f"{100 * row['donor_rate'][h]:.1f}%" for h in heads]
    lines.append(f"| {f} | {row['modes']} | {100 * row['success']['mean']:.1f}% ± "
                 f"{100 * row['success']['std']:.1f}% | " + " | ".join(cells) + " |")
  lines += ["", "Figures: `eigenvalues_by_factor.png`, `incremental_swap.png`.", ""]
  return lines
