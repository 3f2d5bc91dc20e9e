"""The one small interface every evaluator implements, and what it returns.

An evaluator computes; it writes nothing. It returns an `Evaluation`: the numbers (a JSON-ready
record), the documents to save, and the figures to draw described as data (`Figure`), which
`koopjax.report` renders and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable


class EvaluationError(ValueError):
  """The runs or options given to an evaluation cannot be used (the message says why)."""


class Figure(NamedTuple):
  """A figure to draw: ``koopjax.report.figures.<kind>(path, **data)`` into ``filename``."""
  filename: str
  kind: str
  data: Mapping[str, Any]


class Evaluation(NamedTuple):
  """What an evaluator returns.

  Attributes:
    model: the evaluated model's name (selects the markdown tables of `koopjax.report`).
    record: the results, JSON-ready.
    documents: file name -> JSON-ready content to save beside the figures.
    figures: the figures to draw.
  """
  model: str
  record: dict[str, Any]
  documents: dict[str, Any]
  figures: tuple[Figure, ...]


@runtime_checkable
class Evaluator(Protocol):
  """An evaluator module of `koopjax.eval` (one per model)."""

  NEEDS_JUDGE: bool  # whether `evaluate` needs a trained judge run

  def Options(self, **fields: Any) -> Any:  # noqa: N802  (a dataclass of the evaluator's knobs)
    """The evaluator's options; every field has a default."""

  def evaluate(self, run: Any, options: Any, judge: Any = None) -> Evaluation:
    """The full evaluation of a trained run (``koopjax evaluate``)."""

  def run_summary(self, run: Any) -> Evaluation:
    """The figures and numbers written at the end of training (``WORKDIR/report``)."""
