"""Reports: all figures (`koopjax.report.figures`), all markdown tables
(`koopjax.report.tables`) and the one writer of a run's or an evaluation's files."""

from koopjax.report import figures
from koopjax.report import tables
from koopjax.report.write import write_evaluation
from koopjax.report.write import write_run_report

__all__ = ("figures", "tables", "write_evaluation", "write_run_report")
