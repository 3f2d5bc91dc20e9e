"""The one place that writes the files of a run's report or of an evaluation."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np

from koopjax import eval as evaluation_lib
from koopjax.eval.evaluation import Evaluation
from koopjax.report import figures
from koopjax.report import tables


def _json_ready(value: Any) -> Any:
  """Numpy scalars and arrays as plain numbers and lists."""
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, np.ndarray):
    return value.tolist()
  raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_evaluation(evaluation: Evaluation, out_dir: str | pathlib.Path) -> pathlib.Path:
  """Writes an evaluation's documents (JSON), markdown tables and figures into ``out_dir``.

  Returns:
    ``out_dir`` (created if needed).
  """
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  for name, document in evaluation.documents.items():
    (out_dir / name).write_text(json.dumps(document, indent=2, default=_json_ready) + "\n")
    if (evaluation.model, name) in tables.MARKDOWN:
      markdown_name, render = tables.MARKDOWN[evaluation.model, name]
      (out_dir / markdown_name).write_text(render(document))
  for figure in evaluation.figures:
    getattr(figures, figure.kind)(out_dir / figure.filename, **figure.data)
  return out_dir


def write_run_report(run) -> Evaluation:
  """Writes ``run.workdir/report/``: the model's end-of-training figures and numbers
  (`koopjax.eval.<model>.run_summary`). Returns what was written."""
  evaluation = evaluation_lib.get(run.cfg.model).run_summary(run)
  write_evaluation(evaluation, pathlib.Path(run.workdir) / "report")
  return evaluation
