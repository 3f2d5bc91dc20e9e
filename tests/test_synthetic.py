"""Tests of the embedded synthetic sprite-video dataset (koopjax.data.synthetic)."""

import numpy as np
import pytest

from koopjax.data import synthetic

N_IDENTITIES = 4**5
N_ACTIONS = 6
N_TRAIN_IDS = 819
# Pixels per part at 32x32: hair, skin (head minus eyes), top (torso + arms), pants, eyes.
PART_PIXELS = {"hair": 14, "skin": 22, "top": 56, "pants": 22, "eyes": 2}


@pytest.fixture(scope="module")
def train():
  return synthetic.make_dataset("train")


@pytest.fixture(scope="module")
def test():
  return synthetic.make_dataset("test")


def _colour_codes(video):
  """uint8 (..., 3) -> int (...) with one integer per RGB colour."""
  v = video.astype(np.int32)
  return (v[..., 0] << 16) | (v[..., 1] << 8) | v[..., 2]


def _code(rgb):
  rgb = np.asarray(rgb, np.int32)
  return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _part_colour_codes(labels):
  """Colour code of every part of every sequence: dict part -> int array (N,)."""
  out = {name: _code(synthetic.PALETTES[name][labels[name]]) for name in synthetic.STATIC_FACTORS}
  out["eyes"] = np.full_like(out["skin"], _code(synthetic.EYE_COLOUR))
  return out


def _figure_masks(data):
  """Boolean (N, T, H, W): pixels that are not the sequence's background colour."""
  bg = _code(synthetic.PALETTES["background"][data["background"]])
  return _colour_codes(data["video"]) != bg[:, None, None, None]


def _centroids(mask):
  """(N, T, 2) centroid (row, col) of a (N, T, H, W) mask, in pixels."""
  h, w = mask.shape[-2:]
  count = mask.sum(axis=(-2, -1))
  rows = (mask * np.arange(h)[:, None]).sum(axis=(-2, -1)) / count
  cols = (mask * np.arange(w)).sum(axis=(-2, -1)) / count
  return np.stack([rows, cols], axis=-1)


def _pair_features(data, t):
  """The figure's silhouettes in the single frame pair (t[n], t[n] + 1) of each sequence,
  flattened and concatenated (colour-blind: the background colour is masked out)."""
  idx = np.arange(len(data["action"]))
  mask = _figure_masks(data)
  if mask.shape[-1] != 32:
    raise ValueError("features are defined at 32x32")
  return np.concatenate([mask[idx, t], mask[idx, t + 1]], axis=1).reshape(len(idx), -1)


def _nearest_neighbour_accuracy(x_train, y_train, x_test, y_test):
  x_train, x_test = x_train.astype(float), x_test.astype(float)
  dist = (x_test**2).sum(1)[:, None] - 2 * x_test @ x_train.T + (x_train**2).sum(1)[None]
  return float(np.mean(y_train[dist.argmin(axis=1)] == y_test))


def _nearest_centroid_accuracy(x_train, y_train, x_test, y_test):
  classes = np.unique(y_train)
  centroids = np.stack([x_train[y_train == c].mean(axis=0) for c in classes])
  dist = ((x_test[:, None, :] - centroids[None]) ** 2).sum(-1)
  return float(np.mean(classes[dist.argmin(axis=1)] == y_test))


def test_constants():
  assert list(synthetic.STATIC_FACTORS) == ["skin", "pants", "top", "hair", "background"]
  assert len(synthetic.STATIC_FACTORS) >= 4
  assert all(n >= 4 for n in synthetic.STATIC_FACTORS.values())
  assert synthetic.DYNAMIC_FACTORS == {"action": len(synthetic.ACTION_NAMES)}
  assert len(synthetic.ACTION_NAMES) >= 6
  assert len(set(synthetic.ACTION_NAMES)) == len(synthetic.ACTION_NAMES)
  for name, n in synthetic.STATIC_FACTORS.items():
    assert synthetic.PALETTES[name].shape == (n, 3)
  every = np.concatenate([*synthetic.PALETTES.values(), synthetic.EYE_COLOUR[None]])
  assert len(np.unique(_code(every))) == len(every), "all colours must be distinct"
  # Clearly distinguishable: every two colours differ by >= 25 in some channel.
  diff = np.abs(every[:, None].astype(int) - every[None].astype(int)).max(-1)
  assert diff[~np.eye(len(every), dtype=bool)].min() >= 25


@pytest.mark.parametrize("split, n_ids", [("train", N_TRAIN_IDS),
                                          ("test", N_IDENTITIES - N_TRAIN_IDS)])
def test_shapes_dtypes_and_label_ranges(split, n_ids, train, test):
  data = train if split == "train" else test
  n = n_ids * N_ACTIONS
  assert set(data) == {"video", "action", "identity", *synthetic.STATIC_FACTORS}
  assert data["video"].shape == (n, 8, 32, 32, 3)
  assert data["video"].dtype == np.uint8
  for key in ("action", "identity", *synthetic.STATIC_FACTORS):
    assert data[key].shape == (n,) and data[key].dtype == np.int32, key
  assert data["action"].min() == 0 and data["action"].max() == N_ACTIONS - 1
  assert data["identity"].min() >= 0 and data["identity"].max() < N_IDENTITIES
  for name, classes in synthetic.STATIC_FACTORS.items():
    # Every value appears, and nothing outside the range.
    np.testing.assert_array_equal(np.unique(data[name]), np.arange(classes), err_msg=name)
  np.testing.assert_array_equal(np.unique(data["action"]), np.arange(N_ACTIONS))
  # Static labels are the mixed-radix digits of the identity code.
  code = np.zeros(n, np.int64)
  for name, classes in synthetic.STATIC_FACTORS.items():
    code = code * classes + data[name]
  np.testing.assert_array_equal(code, data["identity"])


def test_deterministic(test):
  again = synthetic.make_dataset("test")
  for key in test:
    assert again[key].tobytes() == test[key].tobytes(), key
  other = synthetic.make_dataset("test", seed=1, frames=2)
  assert set(other["identity"]) != set(test["identity"])


def test_split_by_identity(train, test):
  train_ids, test_ids = set(train["identity"]), set(test["identity"])
  assert len(train_ids) == N_TRAIN_IDS
  assert not train_ids & test_ids
  assert train_ids | test_ids == set(range(N_IDENTITIES))
  for data in (train, test):
    # Every identity exactly once with every action.
    pairs = data["identity"].astype(np.int64) * N_ACTIONS + data["action"]
    assert len(np.unique(pairs)) == len(pairs)
    _, counts = np.unique(data["identity"], return_counts=True)
    assert np.all(counts == N_ACTIONS)
  for seed in (1, 2):
    a = set(synthetic.split_identities("train", seed=seed))
    b = set(synthetic.split_identities("test", seed=seed))
    assert not a & b and len(a | b) == N_IDENTITIES


def test_appearance_constant_and_matches_labels(test):
  """Every frame holds exactly the labelled colours, each with the same pixel count."""
  codes = _colour_codes(test["video"])  # (N, T, H, W)
  parts = _part_colour_codes(test)
  counts = np.stack([(codes == parts[p][:, None, None, None]).sum(axis=(-2, -1))
                     for p in PART_PIXELS], axis=-1)  # (N, T, parts)
  np.testing.assert_array_equal(counts, np.broadcast_to(list(PART_PIXELS.values()),
                                                        counts.shape))
  bg = (codes == _code(synthetic.PALETTES["background"][test["background"]])[:, None, None,
                                                                              None])
  assert np.all(bg.sum(axis=(-2, -1)) == 32 * 32 - sum(PART_PIXELS.values()))


def test_long_videos_keep_appearance():
  labels = {name: np.arange(6) % n for name, n in synthetic.STATIC_FACTORS.items()}
  labels["action"] = np.arange(6)
  video = synthetic.render(labels, phase=np.arange(6) % synthetic.NUM_PHASES, frames=40)
  codes = _colour_codes(video)
  parts = _part_colour_codes(labels)
  for p in (*PART_PIXELS, "background"):
    counts = (codes == parts[p][:, None, None, None]).sum(axis=(-2, -1))
    expected = PART_PIXELS.get(p, 32 * 32 - sum(PART_PIXELS.values()))
    assert np.all(counts == expected), p


def test_image_size_64_is_32_upsampled():
  small = synthetic.make_dataset("test", frames=3)
  big = synthetic.make_dataset("test", image_size=64, frames=3)
  assert big["video"].shape == (len(small["action"]), 3, 64, 64, 3)
  np.testing.assert_array_equal(big["video"], small["video"].repeat(2, 2).repeat(2, 3))
  for key in small:
    if key != "video":
      np.testing.assert_array_equal(big[key], small[key])


def test_motion_is_in_place(test):
  video = test["video"].astype(np.int16)
  assert np.all(np.abs(np.diff(video, axis=1)).sum(axis=(2, 3, 4)) > 0), \
      "every consecutive frame pair must differ"
  hair = _colour_codes(test["video"]) == _part_colour_codes(test)["hair"][:, None, None, None]
  head = _centroids(hair)  # (N, T, (row, col)): the hair moves with the whole figure
  np.testing.assert_allclose(head[..., 1], (32 - 1) / 2, atol=1e-9)  # never moves sideways
  np.testing.assert_allclose(head[..., 0], head[0, 0, 0], atol=1e-9)  # nor up or down


def test_motion_is_visible_only_in_motion():
  """Every action's time mean (8 frames = whole cycles) is the same picture, and symmetric.

  An action drawn partly in pixels that never move, or that differ on average (sideways
  eyes, an arm held up, a higher mean position), is time-invariant, and a model that
  separates by time-invariance takes it from the donor.
  """
  n = len(synthetic.ACTION_NAMES)
  rng = np.random.default_rng(5)
  for phase in range(synthetic.NUM_PHASES):
    labels = {name: np.full(n, rng.integers(0, k)) for name, k in synthetic.STATIC_FACTORS.items()}
    video = synthetic.render({**labels, "action": np.arange(n)}, phase=np.full(n, phase))
    total = video.astype(np.int64).sum(axis=1)  # (actions, H, W, C)
    np.testing.assert_array_equal(total, np.broadcast_to(total[:1], total.shape))
    np.testing.assert_array_equal(total, total[:, :, ::-1])
    # (that no frame is shared by two actions is `test_every_frame_determines_the_next`)


def test_left_actions_mirror_right_actions():
  rng = np.random.default_rng(4)
  n = 12
  labels = {name: rng.integers(0, k, n) for name, k in synthetic.STATIC_FACTORS.items()}
  phase = rng.integers(0, synthetic.NUM_PHASES, n)
  for motion in range(3):
    left = synthetic.render({**labels, "action": np.full(n, 2 * motion)}, phase=phase)
    right = synthetic.render({**labels, "action": np.full(n, 2 * motion + 1)}, phase=phase)
    np.testing.assert_array_equal(left, right[:, :, :, ::-1])


def test_single_frame_pair_separates_actions(train, test):
  """A nearest-neighbour classifier on the silhouettes of ONE random frame pair per sequence.

  (Not a nearest-centroid one: averaged over the phases, a left action looks like its right
  mirror image, by design.)
  """
  rng = np.random.default_rng(0)
  sub = rng.choice(len(train["action"]), 1500, replace=False)
  tr = {k: v[sub] for k, v in train.items()}
  x_tr = _pair_features(tr, rng.integers(0, 7, len(sub)))
  x_te = _pair_features(test, rng.integers(0, 7, len(test["action"])))
  acc = _nearest_neighbour_accuracy(x_tr, tr["action"], x_te, test["action"])
  assert acc >= 0.99, acc


def test_single_frame_separates_static_factors(train, test):
  """Nearest-centroid on which coarse colour bins one random frame contains, train -> test."""
  rng = np.random.default_rng(1)

  def features(data):
    n = len(data["action"])
    frame = data["video"][np.arange(n), rng.integers(0, 8, n)] // 32  # 8 bins per channel
    bins = (frame[..., 0].astype(np.int64) * 64 + frame[..., 1] * 8 + frame[..., 2])
    bins = bins.reshape(n, -1) + np.arange(n)[:, None] * 512
    return np.bincount(bins.ravel(), minlength=n * 512).reshape(n, 512) > 0

  x_tr, x_te = features(train).astype(float), features(test).astype(float)
  for name in synthetic.STATIC_FACTORS:
    acc = _nearest_centroid_accuracy(x_tr, train[name], x_te, test[name])
    assert acc >= 0.99, (name, acc)


@pytest.mark.parametrize("factor", list(synthetic.STATIC_FACTORS))
def test_changing_one_factor_changes_only_its_pixels(factor):
  n = 24
  rng = np.random.default_rng(3)
  labels = {name: rng.integers(0, k, n) for name, k in synthetic.STATIC_FACTORS.items()}
  labels["action"] = np.arange(n) % N_ACTIONS
  phase = rng.integers(0, synthetic.NUM_PHASES, n)
  changed = dict(labels)
  changed[factor] = (labels[factor] + rng.integers(1, 4, n)) % 4
  for size in (32, 64):
    a = synthetic.render(labels, phase=phase, image_size=size)
    b = synthetic.render(changed, phase=phase, image_size=size)
    diff = np.any(a != b, axis=-1)  # (n, T, H, W)
    old = _code(synthetic.PALETTES[factor][labels[factor]])[:, None, None, None]
    new = _code(synthetic.PALETTES[factor][changed[factor]])[:, None, None, None]
    # The difference is exactly the factor's part: where it had the old colour, now new.
    np.testing.assert_array_equal(diff, _colour_codes(a) == old)
    np.testing.assert_array_equal(diff, _colour_codes(b) == new)
    assert np.all(diff.sum(axis=(-2, -1)) > 0)


def test_changing_action_keeps_appearance():
  labels = {name: np.full(N_ACTIONS, 2) for name in synthetic.STATIC_FACTORS}
  labels["action"] = np.arange(N_ACTIONS)
  codes = _colour_codes(synthetic.render(labels))
  values, counts = np.unique(codes[0, 0], return_counts=True)
  for i in range(N_ACTIONS):
    for t in range(8):
      v, c = np.unique(codes[i, t], return_counts=True)
      np.testing.assert_array_equal(v, values)
      np.testing.assert_array_equal(c, counts)


def test_bad_arguments():
  with pytest.raises(ValueError, match="'train', 'test'.*'val'"):
    synthetic.make_dataset("val")
  for size in (16, 48, 128, 32.0, "32"):
    with pytest.raises(ValueError, match="image_size must be one of 32, 64"):
      synthetic.make_dataset("test", image_size=size)
  for frames in (1, 0, -3):
    with pytest.raises(ValueError, match="frames must be an integer >= 2"):
      synthetic.make_dataset("test", frames=frames)
  with pytest.raises(TypeError, match="frames"):
    synthetic.make_dataset("test", frames=2.5)
  with pytest.raises(ValueError, match="seed"):
    synthetic.make_dataset("test", seed=-1)
  with pytest.raises(TypeError, match="seed"):
    synthetic.make_dataset("test", seed="0")
  labels = {name: np.zeros(2, np.int32) for name in synthetic.STATIC_FACTORS}
  with pytest.raises(KeyError, match="action"):
    synthetic.render(labels)
  with pytest.raises(ValueError, match=r"labels\['skin'\] must be in \[0, 3\]"):
    synthetic.render({**labels, "action": np.zeros(2, np.int32), "skin": np.array([0, 4])})
  with pytest.raises(ValueError, match="same length"):
    synthetic.render({**labels, "action": np.zeros(3, np.int32)})
  with pytest.raises(ValueError, match=r"phase must be in \[0, 3\]"):
    synthetic.render({**labels, "action": np.zeros(2, np.int32)}, phase=np.array([0, 4]))


def test_every_frame_determines_the_next():
  """The frames of all actions together are a Markov chain: one successor per distinct frame.

  A per-frame encoder followed by one linear Koopman step can only fit such videos; a frame
  that leaves two different ways (within an action, or shared by two actions) has no
  next-latent map at all.
  """
  n = synthetic.NUM_PHASES
  labels = {name: np.zeros(n, np.int64) for name in synthetic.STATIC_FACTORS}
  successors, action_of = {}, {}
  for action in range(len(synthetic.ACTION_NAMES)):
    video = synthetic.render({**labels, "action": np.full(n, action)}, phase=np.arange(n),
                             frames=9)
    for sequence in video:
      for frame, following in zip(sequence[:-1], sequence[1:]):
        successors.setdefault(frame.tobytes(), set()).add(following.tobytes())
        action_of.setdefault(frame.tobytes(), set()).add(action)
  assert all(len(nexts) == 1 for nexts in successors.values())
  assert all(len(actions) == 1 for actions in action_of.values())
  per_action = np.bincount([a for actions in action_of.values() for a in actions])
  np.testing.assert_array_equal(per_action, [n] * len(synthetic.ACTION_NAMES))  # 4 poses each
