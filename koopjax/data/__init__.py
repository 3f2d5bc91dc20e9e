"""Datasets for koopjax: in-memory numpy arrays of videos with ground-truth factor labels.

`synthetic` is the embedded default: procedurally generated sprite videos, built
deterministically in memory in seconds (no files, no downloads).
"""

from koopjax.data import synthetic

__all__ = ("synthetic",)
