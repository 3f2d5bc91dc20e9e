"""Tests of the Sprites TFDS builder and `load`, checked against the published recipe.

The dataset is built once per session from the checkout's ``../shared/data/lpc-sprites``.
Expected pixels are recomputed here straight from the PNG sheets with PIL's
`Image.alpha_composite` on whole sheets (and a per-pixel float formula), never through the
package's own compositing helpers.
"""

import tracemalloc

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from conftest import SPRITE_SHEETS
from koopjax.data import sprites
from koopjax.data.sprites import recipe

SHEETS = SPRITE_SHEETS
NEEDS_SHEETS = pytest.mark.skipif(
    not SHEETS.is_dir(),
    reason=f"LPC sprite sheets not found at {SHEETS} (the repository's "
    "../shared/data/lpc-sprites); the Sprites build tests need them.")

# The README's recipe, written out again independently of koopjax.data.sprites.recipe.
LAYER_FOLDERS = ("body", "bottomwear", "topwear", "hair")  # skin, pants, top, hair
ANIMATION_ROWS = {  # animation -> {direction: sheet row}
    "walk": {"left": 9, "front": 10, "right": 11},
    "spellcast": {"left": 1, "front": 2, "right": 3},
    "slash": {"left": 13, "front": 14, "right": 15},
}
ANIMATION_COLUMNS = {
    "walk": [8, 1, 2, 3, 4, 5, 6, 7],
    "spellcast": [0, 1, 2, 3, 4, 5, 4, 6],
    "slash": [0, 1, 2, 3, 4, 5, 4, 0],
}
ANIMATION_ORDER = ("walk", "spellcast", "slash")
DIRECTION_ORDER = ("front", "left", "right")
LABELS = ("action", "skin", "pants", "top", "hair")


def _readme_permutation():
  """``np.random.seed(423); np.random.permutation(1296)``, leaving the global state as it was."""
  state = np.random.get_state()
  try:
    np.random.seed(423)
    return np.random.permutation(1296)
  finally:
    np.random.set_state(state)


def _codes(data):
  return data["skin"] * 216 + data["pants"] * 36 + data["top"] * 6 + data["hair"]


def _sheet_paths(skin, pants, top, hair):
  return [SHEETS / folder / f"{i}.png"
          for folder, i in zip(LAYER_FOLDERS, (skin, pants, top, hair))] + [
              SHEETS / "shoes" / "1.png"]


def _pil_character_sheet(skin, pants, top, hair):
  """The whole composited sheet, RGB uint8 (1344, 832, 3), with PIL."""
  canvas = Image.new("RGBA", (832, 1344), (0, 0, 0, 255))
  for path in _sheet_paths(skin, pants, top, hair):
    with Image.open(path) as layer:
      canvas = Image.alpha_composite(canvas, layer.convert("RGBA"))
  return np.asarray(canvas)[..., :3]


def _sequence_from_sheet(sheet, action):
  animation, direction = ANIMATION_ORDER[action // 3], DIRECTION_ORDER[action % 3]
  row = ANIMATION_ROWS[animation][direction]
  return np.stack([sheet[row * 64:(row + 1) * 64, col * 64:(col + 1) * 64]
                   for col in ANIMATION_COLUMNS[animation]])


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  if not SHEETS.is_dir():
    pytest.skip(f"LPC sprite sheets not found at {SHEETS}; cannot build Sprites.")
  path = tmp_path_factory.mktemp("tfds")
  sprites.prepare(SHEETS, path)
  return path


@pytest.fixture(scope="session")
def train_and_peak(data_dir):
  """The train split, and the peak traced host memory (bytes) of loading it."""
  tracemalloc.start()
  try:
    data = sprites.load(data_dir, "train")
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  return data, peak


@pytest.fixture(scope="session")
def splits(data_dir, train_and_peak):
  return {"train": train_and_peak[0], "test": sprites.load(data_dir, "test")}


def test_public_constants():
  assert sprites.STATIC_FACTORS == {"skin": 6, "pants": 6, "top": 6, "hair": 6}
  assert sprites.DYNAMIC_FACTORS == {"action": 9}
  assert len(sprites.ACTION_NAMES) == 9
  for a, animation in enumerate(ANIMATION_ORDER):
    for d, direction in enumerate(DIRECTION_ORDER):
      assert sprites.ACTION_NAMES[3 * a + d] == f"{animation}-{direction}"


def test_builder_is_registered_as_sprites(tmp_path):
  assert "sprites" in tfds.list_builders(with_community_datasets=False)
  assert tfds.builder_cls("sprites") is sprites.Sprites
  builder = tfds.builder("sprites", data_dir=tmp_path)
  assert str(builder.version) == "1.0.0"
  assert builder.info.file_format.value == "array_record"
  features = builder.info.features
  assert features["video"].shape == (8, 64, 64, 3) and features["video"].np_dtype == np.uint8
  assert features["action"].names == list(sprites.ACTION_NAMES)
  for name in ("skin", "pants", "top", "hair"):
    assert features[name].num_classes == 6


def test_the_package_names_no_default_folder_of_sheets():
  """The sheets are the user's to give (--manual-dir); koopjax points at nothing outside it."""
  assert not hasattr(sprites, "default_manual_dir")


def test_incomplete_manual_dir_lists_every_missing_sheet(tmp_path):
  manual = tmp_path / "sheets"
  for rel in ["body/0.png", "body/5.png", "hair/2.png", "shoes/0.png"]:
    (manual / rel).parent.mkdir(parents=True, exist_ok=True)
    (manual / rel).write_bytes(b"not read before the check")
  data_dir = tmp_path / "data"
  with pytest.raises(FileNotFoundError, match="missing 22 of the 25") as error:
    sprites.prepare(manual, data_dir)
  message = str(error.value)
  expected = [f"{folder}/{i}.png" for folder in LAYER_FOLDERS for i in range(6)]
  expected.append("shoes/1.png")
  for rel in expected:
    listed = str(manual / rel) in message
    assert listed == (rel not in ("body/0.png", "body/5.png", "hair/2.png")), rel
  assert not data_dir.exists()  # nothing was written


def test_missing_manual_dir_names_it_and_the_layout(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist") as error:
    sprites.prepare(tmp_path / "nowhere", tmp_path / "data")
  for folder in LAYER_FOLDERS:
    assert f"{folder}/{{0..5}}.png" in str(error.value)
  assert "shoes/1.png" in str(error.value)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(FileNotFoundError, match="missing 25 of the 25"):
    sprites.prepare(empty, tmp_path / "data")


def test_load_before_prepare_says_how_to_prepare(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match="koopjax prepare sprites --manual-dir DIR --data-dir DIR"):
    sprites.load(tmp_path, "train")


def test_load_rejects_unknown_split(tmp_path):
  with pytest.raises(ValueError, match="'train', 'test'"):
    sprites.load(tmp_path, "validation")


def test_composite_characters_reuse_matches_fresh_composites():
  rng = np.random.default_rng(0)
  layers = [rng.integers(0, 256, (6, 2, 3, 3, 4), dtype=np.uint8) for _ in range(4)]
  shoes = rng.integers(0, 256, (2, 3, 3, 4), dtype=np.uint8)
  codes = [5, 4, 1295, 5, 0, 216 + 36, 216 + 36 + 1]
  for code, frames in recipe.composite_characters(layers, shoes, codes):
    expected = np.zeros((2, 3, 3, 3))
    factors = np.unravel_index(code, (6, 6, 6, 6))
    for rgba in [layer[f] for layer, f in zip(layers, factors)] + [shoes]:
      alpha = rgba[..., 3:] / 255.0
      expected = np.round(rgba[..., :3] * alpha + expected * (1 - alpha))
    np.testing.assert_array_equal(frames, expected.astype(np.uint8))


@NEEDS_SHEETS
@pytest.mark.parametrize("split,n", [("train", 9000), ("test", 2664)])
def test_counts_shapes_and_dtypes(splits, split, n):
  data = splits[split]
  assert set(data) == {"video", *LABELS}
  assert data["video"].shape == (n, 8, 64, 64, 3) and data["video"].dtype == np.uint8
  for name in LABELS:
    assert data[name].shape == (n,) and data[name].dtype == np.int32, name


@NEEDS_SHEETS
@pytest.mark.parametrize("split", ["train", "test"])
def test_every_label_value_occurs_and_nothing_else(splits, split):
  data = splits[split]
  for name, classes in {**sprites.DYNAMIC_FACTORS, **sprites.STATIC_FACTORS}.items():
    np.testing.assert_array_equal(np.unique(data[name]), np.arange(classes), err_msg=name)


@NEEDS_SHEETS
def test_split_follows_readme_permutation_with_all_nine_actions(splits):
  permutation = _readme_permutation()
  for split, expected in (("train", permutation[:1000]), ("test", permutation[1000:])):
    codes, actions = _codes(splits[split]), splits[split]["action"]
    assert set(codes.tolist()) == set(expected.tolist()), split
    pairs = set(zip(codes.tolist(), actions.tolist()))
    assert len(pairs) == len(codes) == 9 * len(expected), split  # no duplicates
    assert pairs == {(c, a) for c in expected.tolist() for a in range(9)}, split


@NEEDS_SHEETS
@pytest.mark.parametrize("split", ["train", "test"])
def test_records_ordered_by_code_then_action(splits, split):
  key = _codes(splits[split]) * 9 + splits[split]["action"]
  assert np.all(np.diff(key) > 0)


def _first_record(data, **labels):
  match = np.ones(len(data["action"]), bool)
  for name, value in labels.items():
    match &= data[name] == value
  assert match.any(), labels
  return int(np.argmax(match))


@NEEDS_SHEETS
def test_pixels_match_pil_composite_of_the_sheets(splits):
  # Sheets with partial alpha: body 0 and 3, bottomwear 4, topwear 0..4; in the cells the
  # recipe uses, only topwear 3 has any (actions 1, 2, 4, 5, 7, 8).
  permutation = _readme_permutation()
  characters = [("train", c) for c in permutation[:3]] + [("test", c) for c in permutation[-2:]]
  characters += [("train" if c in permutation[:1000] else "test", c)
                 for c in (0 * 216 + 4 * 36 + 4 * 6 + 1, 3 * 216 + 2 * 36 + 3 * 6 + 5)]
  checked = 0
  for split, code in characters:
    data = splits[split]
    factors = np.unravel_index(int(code), (6, 6, 6, 6))
    labels = dict(zip(("skin", "pants", "top", "hair"), map(int, factors)))
    sheet = _pil_character_sheet(*factors)
    for action in range(9):
      index = _first_record(data, action=action, **labels)
      np.testing.assert_array_equal(data["video"][index], _sequence_from_sheet(sheet, action),
                                    err_msg=f"{split} code {code} action {action}")
      checked += 1
  assert checked == 9 * len(characters)


@NEEDS_SHEETS
def test_partial_alpha_pixels_follow_float_formula(splits):
  """Per pixel, in float: out = round(src * a + out * (1 - a)) layer by layer from black."""
  skin, pants, top, hair, action = 0, 4, 3, 1, 1  # topwear 3 has partial alpha in walk-left
  code = skin * 216 + pants * 36 + top * 6 + hair
  split = "train" if code in _readme_permutation()[:1000] else "test"
  video = splits[split]["video"][_first_record(splits[split], action=action, skin=skin,
                                               pants=pants, top=top, hair=hair)]
  layers = []
  for path in _sheet_paths(skin, pants, top, hair):
    with Image.open(path) as image:
      layers.append(_sequence_from_sheet(np.asarray(image.convert("RGBA")), action))
  alphas = np.stack([layer[..., 3] for layer in layers])
  partial = np.argwhere(((alphas > 0) & (alphas < 255)).any(axis=0))
  assert len(partial) > 20
  for t, y, x in partial[:: max(1, len(partial) // 200)]:
    out = [0.0, 0.0, 0.0]
    for layer in layers:
      a = layer[t, y, x, 3] / 255.0
      out = [round(float(layer[t, y, x, c]) * a + out[c] * (1.0 - a)) for c in range(3)]
    assert list(video[t, y, x]) == out, (t, y, x)


@NEEDS_SHEETS
def test_load_train_peak_memory_under_budget(train_and_peak):
  _, peak = train_and_peak
  assert peak < 1.5 * 2**30, f"peak traced memory {peak / 2**20:.0f} MiB"


def test_sprites_at_32_is_the_rounded_2x2_mean_of_64(data_dir, splits):
  from koopjax.data import videos
  small = videos.load("sprites", "test", data_dir=str(data_dir), image_size=32)
  big = splits["test"]
  assert small["video"].shape == (2664, 8, 32, 32, 3) and small["video"].dtype == np.uint8
  for name in ("action", "skin", "pants", "top", "hair"):
    np.testing.assert_array_equal(small[name], big[name])
  rows = np.random.default_rng(0).choice(2664, 64, replace=False)
  pixels = big["video"][rows].astype(np.float64)
  mean = (pixels[:, :, 0::2, 0::2] + pixels[:, :, 1::2, 0::2] + pixels[:, :, 0::2, 1::2]
          + pixels[:, :, 1::2, 1::2]) / 4
  np.testing.assert_array_equal(small["video"][rows], np.floor(mean + 0.5).astype(np.uint8))
  with pytest.raises(ValueError, match="64x64.*image_size=16"):
    videos.load("sprites", "test", data_dir=str(data_dir), image_size=16)
