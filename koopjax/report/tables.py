"""Every markdown table koopjax writes: the SKD evaluation's ``results.md`` and its parts, the
recurrent models' ``results.md`` and the KANN analysis' ``analysis.md``.

Each function takes the JSON-ready results of an evaluator (`koopjax.eval`) and returns
markdown; `MARKDOWN` says which documents get a markdown twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from koopjax.eval import probes as probes_lib
from koopjax.eval.sampling import DIRECTIONS
from koopjax.eval.sampling import FIXES

# Published Sprites rows (action head under "fix motion, sample static"), to print beside ours.
PUBLISHED_SPRITES = (
    ("SKD (published; recalled, not re-read)", "100%", "8.999", "1.6e-7", "2.197"),
    ("C-DSVAE (published)", "99.99%", "8.871", "0.014", "2.197"),
    ("S3VAE (published)", "99.49%", "8.637", "0.041", "2.197"),
)

def _pm(stat: Mapping[str, float], scale: float = 1.0, digits: int = 3, pct: bool = False) -> str:
  suffix = "%" if pct else ""
  return (f"{scale * stat['mean']:.{digits}f}{suffix} ± {scale * stat['std']:.{digits}f}"
          f"{suffix}")


def static_set_description(analysis: Mapping[str, Any]) -> str:
  """How S was chosen and its size, from ``results["analysis"]``."""
  size = len(analysis["static_modes"])
  if analysis.get("static_radius", 0.0) > 0:
    rule = f"every mode with |λ − 1| < {analysis['static_radius']:g}"
  else:
    rule = f"κ = {analysis['n_static']} components by `{analysis['static_mode']}`"
  return f"static set S = {rule} ({size} of {analysis['k']} modes)"


def skd_results(results: Mapping[str, Any]) -> str:
  """``results.md`` of `koopjax.eval.skd.evaluate` (mean ± std over seeds)."""
  lines = [
      f"# SKD evaluation: {results['skd_run']} (step {results['skd_step']})",
      "",
      f"Dataset {results['dataset']}, {results['test_sequences']} test sequences, judge "
      f"{results['judge_run']}; mean ± std over {len(results['per_seed'])} seed(s). C fitted on "
      f"{results['analysis']['fitted_on']} test sequences; " + static_set_description(
          results["analysis"]) + ".",
      "",
  ]
  lines += protocol_tables(results, "SKD", published=True)
  lines += ["", "The last two rows say whose label a head reads: a wrong head shows which side "
            "leaked into the swap (or neither).", ""]
  lines += multifactor(results["multifactor"])
  lines += probe_table(results["probes"])
  return "\n".join(lines) + "\n"


def spyl_results(results: Mapping[str, Any]) -> str:
  """``results.md`` of `koopjax.eval.spyl.evaluate`: the same protocol tables as SKD's."""
  lines = [
      f"# SPYL evaluation: {results['spyl_run']} (step {results['spyl_step']})",
      "",
      f"Dataset {results['dataset']}, {results['test_sequences']} test sequences, judge "
      f"{results['judge_run']}; mean ± std over {len(results['per_seed'])} seed(s). Sampling "
      "draws s ~ N(0, I) (fix dynamics) or d from the learned prior (fix static); swaps "
      "exchange s.",
      "",
  ]
  return "\n".join(lines + protocol_tables(results, "SPYL", published=True)) + "\n"


def protocol_tables(results: Mapping[str, Any], model: str, published: bool = False
                    ) -> list[str]:
  """Markdown lines of the protocol shared by every disentanglement model: judge accuracies,
  both sampling directions (with leakage) and two-factor swaps."""
  dynamic, static_heads = results["heads"]["dynamic"], results["heads"]["static"]
  summary = results["summary"]
  action = dynamic[0]
  fm = summary["fix_motion"][action]
  lines = [
      "Judge accuracy on real test videos: " + ", ".join(
          f"{k} {100 * v:.2f}%" for k, v in results["judge_test_accuracy"].items()) + ".",
      f"Judge accuracy on {model} reconstructions: " + ", ".join(
          f"{k} {100 * v:.2f}%" for k, v in results["reconstruction_accuracy"].items()) + ".",
      "",
      f"## Fix dynamics, sample static: the {action} head (the main table)",
      "",
      "| model | Acc | IS | H(y|x) | H(y) |",
      "|---|---|---|---|---|",
      f"| koopjax {model}, {results['dataset']} (this run) | {_pm(fm['acc'], 100, 2, True)} | "
      f"{_pm(fm['IS'])} | {_pm(fm['H_yx'], digits=4)} | {_pm(fm['H_y'])} |",
  ]
  if published:
    lines += [f"| {row[0]}, Sprites | {' | '.join(row[1:])} |" for row in PUBLISHED_SPRITES]
  lines += [
      "",
      f"Upper bounds: IS ≤ number of {action} classes, H(y) ≤ ln(classes) (Sprites: 9 and "
      "2.197). Published rows are Sprites; compare like with like.",
      "",
      "## Fix static, sample dynamics: the static heads keep their labels",
      "",
      "| head | Acc | IS | H(y|x) | H(y) |",
      "|---|---|---|---|---|",
  ]
  fs = summary["fix_static"]
  for name in static_heads:
    m = fs[name]
    lines.append(f"| {name} | {_pm(m['acc'], 100, 2, True)} | {_pm(m['IS'])} | "
                 f"{_pm(m['H_yx'], digits=4)} | {_pm(m['H_y'])} |")
  lines += [
      "",
      "Leakage (lower = the sampled part really changed): accuracy of the *other* heads "
      "against the original labels.",
      "",
      "| direction | " + " | ".join(list(dynamic) + list(static_heads)) + " |",
      "|---|" + "---|" * (len(dynamic) + len(static_heads)),
  ]
  for fix in FIXES:
    row = summary[f"fix_{fix}"]
    cells = [_pm(row[n]["acc"], 100, 1, True) for n in list(dynamic) + list(static_heads)]
    lines.append(f"| {DIRECTIONS[fix]} | " + " | ".join(cells) + " |")
  tf = summary["two_factor_swap"]
  pairs = results["per_seed"][0]["two_factor_swap"]["pairs"]
  lines += [
      "",
      "## Two-factor swaps (the donor's static part into the target)",
      "",
      f"Joint success (every static head = donor's label and {action} = target's): "
      f"**{_pm(tf['joint'], 100, 2, True)}** over {pairs} pairs per seed (donors differ from "
      "targets in every label where possible).",
      "",
      "| head | " + " | ".join(tf["per_head"]) + " |",
      "|---|" + "---|" * len(tf["per_head"]),
      "| right | " + " | ".join(_pm(v, 100, 1, True) for v in tf["per_head"].values()) + " |",
  ]
  lines += [f"| shows the {whose}'s label | " + " | ".join(
      _pm(v, 100, 1, True) for v in tf[f"shows_{whose}"].values()) + " |"
      for whose in ("target", "donor")]
  return lines


def multifactor(multi: Mapping[str, Any]) -> list[str]:
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


def probe_table(probes: Mapping[str, Mapping[str, float]]) -> list[str]:
  """Lines of the results.md section for `mode_probes`' output."""
  factors = list(probes["chance"])
  lines = [
      "## Linear probes: where each factor lives",
      "",
      "Test accuracy of a ridge-regression probe trained on train latents' eigen-coordinates "
      "(`koopjax.eval.probes`). A static factor should be read from the S modes' time mean, "
      "not from the D modes'; the motion from the D modes.",
      "",
      "| probe input | " + " | ".join(factors) + " |",
      "|---|" + "---|" * len(factors),
  ]
  for name, _, _ in probes_lib.INPUTS:
    if name in probes:
      lines.append(f"| {probes_lib.DESCRIPTIONS[name]} | " +
                   " | ".join(f"{100 * probes[name][f]:.1f}%" for f in factors) + " |")
  lines.append("| chance | " + " | ".join(f"{100 * probes['chance'][f]:.1f}%"
                                        for f in factors) + " |")
  return lines + [""]


def rnn_results(results: Mapping[str, Any]) -> str:
  """``results.md`` of `koopjax.eval.rnn.evaluate`."""
  curvature = results["curvature"]
  lines = [f"# {results['config']}: {results['cell']} cell on {results['dataset']}", "",
           "| what | value |", "|---|---|",
           f"| test accuracy | {100 * results['accuracy']['test']:.2f}% |",
           f"| validation accuracy | {100 * results['accuracy']['validation']:.2f}% |",
           f"| parameters | {curvature['parameters']} |",
           f"| Hessian λ_max ({curvature['examples']} test sequences) | "
           f"{curvature['lambda_max']:.4g} |",
           f"| Hessian trace (Hutchinson) | {curvature['trace']:.4g} ± "
           f"{curvature['trace_stderr']:.2g} |"]
  for name, spectrum in results.get("spectra", {}).items():
    lines.append(f"| max Re λ({name}) | {spectrum['max_real']:.4g} |")
  if "noise" in results:
    lines += ["", "| noise σ | " + " | ".join(f"{p['sigma']:g}" for p in results["noise"]) + " |",
              "|---|" + "---|" * len(results["noise"]),
              "| test accuracy | " + " | ".join(f"{100 * p['accuracy']:.1f}%"
                                                for p in results["noise"]) + " |"]
  return "\n".join(lines) + "\n"


def rnn_ae_results(results: Mapping[str, Any]) -> str:
  """``results.md`` of `koopjax.eval.rnn_ae.evaluate`."""
  d, k = results["detection"], results["koopman"]
  return "\n".join([
      f"# {results['config']}: anomaly detection on {results['dataset']}", "",
      "| what | value |", "|---|---|",
      f"| ROC-AUC | {d['roc_auc']:.4f} |",
      f"| accuracy / precision / recall at the threshold | {100 * d['accuracy']:.1f}% / "
      f"{100 * d['precision']:.1f}% / {100 * d['recall']:.1f}% |",
      f"| threshold (train quantile) | {d['threshold']:.4g} |",
      f"| mean L1: train / test normal / test anomaly | {results['train_l1']:.4g} / "
      f"{results['test_normal_l1']:.4g} / {results['test_anomaly_l1']:.4g} |",
      f"| Koopman one-step error (r = {k['rank']}, {k['sequences']} normal beats) | "
      f"{k['one_step']:.4f} |"]) + "\n"


def kann_analysis(analysis: Mapping[str, Any]) -> str:
  """``analysis.md`` of `koopjax.eval.kann.analyse`."""
  fit = analysis["fit"]
  lines = [f"# KANN: {analysis['config']} ({analysis['cell']} on {analysis['dataset']})", "",
           f"{analysis['sequences']} test sequences, H = {analysis['hidden']}, rank r = "
           f"{analysis['rank']}; spectral radius {analysis['spectral_radius']:.4f}.", "",
           "| fit | value |", "|---|---|",
           f"| projection error ‖Z − ZPPᵀ‖/‖Z‖ | {fit['projection']:.4f} |"]
  lines += [f"| {k}-step relative error | {e:.4f} |" for k, e in enumerate(fit["multi_step"], 1)]
  lines += ["", "| decisions on true vs Koopman-predicted last state | value |", "|---|---|"]
  lines += [f"| {name.replace('_', ' ')} | {value:.4f} |"
            for name, value in analysis["decisions"].items()]
  ranking = analysis.get("token_ranking")
  if ranking:
    lines += ["", f"Token ranking (chance precision {ranking['chance_precision']:.3f}):", "",
              "| mode | λ | ROC-AUC (innovation) | P@k (innovation) | ROC-AUC (magnitude) | "
              "P@k (magnitude) |", "|---|---|---|---|---|---|"]
    for m in ranking["modes"]:
      re, im = m["eigenvalue"]
      lines.append(f"| {m['mode']} | {re:.3f}{im:+.3f}i | {m['innovation']['roc_auc']:.3f} | "
                   f"{m['innovation']['precision_at_k']:.3f} | {m['magnitude']['roc_auc']:.3f} | "
                   f"{m['magnitude']['precision_at_k']:.3f} |")
    pair = ranking["dominant_pair"]
    lines.append(f"| dominant pair | | {pair['innovation']['roc_auc']:.3f} | "
                 f"{pair['innovation']['precision_at_k']:.3f} | {pair['magnitude']['roc_auc']:.3f}"
                 f" | {pair['magnitude']['precision_at_k']:.3f} |")
  if "mode_pairs" in analysis:
    lines += ["", "Mode pairs decoded (mode_pairs.png): " + ", ".join(
        f"({a}, {b})" for a, b in analysis["mode_pairs"])]
  return "\n".join(lines) + "\n"


# (model, JSON document of its evaluation) -> (markdown document, its renderer)
MARKDOWN = {("skd", "results.json"): ("results.md", skd_results),
            ("rnn", "results.json"): ("results.md", rnn_results),
            ("rnn_ae", "results.json"): ("results.md", rnn_ae_results),
            ("kann", "analysis.json"): ("analysis.md", kann_analysis),
            ("spyl", "results.json"): ("results.md", spyl_results)}


def _spyl_headline(evaluation) -> str:
  joint = evaluation.record["summary"]["two_factor_swap"]["joint"]["mean"]
  return _skd_headline(evaluation) + f", two-factor swaps {100 * joint:.2f}%"


def _skd_headline(evaluation) -> str:
  action = evaluation.record["summary"]["fix_motion"]["action"]
  return (f"fix dynamics, sample static: action acc {100 * action['acc']['mean']:.2f}% ± "
          f"{100 * action['acc']['std']:.2f}%, IS {action['IS']['mean']:.3f}")


def _kae_headline(evaluation) -> str:
  summary = evaluation.record["summary"]
  steps = len(evaluation.record["relative_error"]["mean"])
  return (f"{summary['config']}: mean relative error after {steps} steps "
          f"{summary['final_mean_error']:.4g} (cumulative {summary['cumulative_mean_error']:.4g})")


def _judge_headline(evaluation) -> str:
  return "test accuracy per head: " + ", ".join(
      f"{name} {100 * acc:.2f}%" for name, acc in evaluation.record["accuracy"].items())


def _rnn_headline(evaluation) -> str:
  record = evaluation.record
  return (f"test accuracy {100 * record['accuracy']['test']:.2f}%, Hessian λ_max "
          f"{record['curvature']['lambda_max']:.4g}")


def _rnn_ae_headline(evaluation) -> str:
  return f"anomaly ROC-AUC {evaluation.record['detection']['roc_auc']:.4f}"


def _kann_headline(evaluation) -> str:
  record = evaluation.record
  line = f"Koopman one-step error {record['fit']['one_step']:.4f} (r = {record['rank']})"
  if "token_ranking" in record:
    pair = record["token_ranking"]["dominant_pair"]["innovation"]
    line += f", token ROC-AUC of the dominant pair {pair['roc_auc']:.3f}"
  return line


def headline(evaluation) -> str:
  """One line with an evaluation's main numbers (empty for a training summary without one)."""
  render = {("skd", "results.json"): _skd_headline, ("kae", "evaluation.json"): _kae_headline,
            ("judge", "accuracy.json"): _judge_headline, ("rnn", "results.json"): _rnn_headline,
            ("rnn_ae", "results.json"): _rnn_ae_headline,
            ("kann", "analysis.json"): _kann_headline, ("spyl", "results.json"): _spyl_headline}
  for (model, document), line in render.items():
    if evaluation.model == model and document in evaluation.documents:
      return line(evaluation)
  return ""
