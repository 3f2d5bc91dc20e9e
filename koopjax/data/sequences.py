"""Sequence datasets by name: the one registry of the recurrent models' data.

Each split is a dict of in-memory arrays with a common leading length N: ``x`` (N, T) int32
tokens or (N, T, F) float32 values, ``length`` int32 (N,) (valid steps; padding at the end),
``label`` int32 (N,), and per dataset extras (``role`` of `phrases`, ``anomaly`` of
`ecg5000`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from koopjax.data import digits
from koopjax.data import ecg5000
from koopjax.data import phrases


@dataclasses.dataclass(frozen=True)
class SequenceDataset:
  """What a run needs to know about a sequence dataset.

  Attributes:
    tokens: inputs are token ids (embedded by the model) rather than real values.
    input_size: vocabulary size (tokens) or features per step (values).
    length: T, the padded length.
    classes: label classes.
    task: "classify" (label from the sequence) or "reconstruct" (anomaly detection: the
      model reproduces normal sequences).
    needs_files: read from prepared files (`data_dir`) rather than generated.
  """
  tokens: bool
  input_size: int
  length: int
  classes: int
  task: str
  needs_files: bool = False


DATASETS = {
    "phrases": SequenceDataset(True, len(phrases.VOCABULARY), phrases.MAX_LENGTH, 2, "classify"),
    "digits": SequenceDataset(False, 1, digits.LENGTH, 10, "classify"),
    "digits_permuted": SequenceDataset(False, 1, digits.LENGTH, 10, "classify"),
    "ecg5000": SequenceDataset(False, 1, ecg5000.LENGTH, ecg5000.CLASSES, "reconstruct",
                               needs_files=True),
}
SPLITS = ("train", "validation", "test")


def spec(name: str) -> SequenceDataset:
  """The registry entry of ``name`` (ValueError listing the names otherwise)."""
  if name not in DATASETS:
    raise ValueError(f"unknown sequence dataset {name!r}; available: {', '.join(DATASETS)}.")
  return DATASETS[name]


def load(name: str, split: str, *, data_dir: str = "") -> dict[str, np.ndarray]:
  """A split of a sequence dataset in memory (module docstring)."""
  spec(name)
  if split not in SPLITS:
    raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}.")
  if name == "phrases":
    return phrases.make_dataset(split)
  if name in ("digits", "digits_permuted"):
    return digits.make_dataset(split, permuted=name == "digits_permuted")
  return ecg5000.load(data_dir, split)
