"""Procedurally generated multi-factor sprite videos with ground-truth labels.

The embedded default dataset of koopjax: a cheap, file-free stand-in for the Sprites
benchmark (Li & Mandt, 2018) with the same conventions. Every video shows a little pixel-art
character on a plain background. Five **static** factors set its colours (each part has its
own palette, and all 20 colours are distinct):

  * ``skin``       -- head colour (4 skin tones),
  * ``pants``      -- hips and legs colour,
  * ``top``        -- torso and arms colour,
  * ``hair``       -- hair colour,
  * ``background`` -- background colour.

One **dynamic** factor, ``action`` (6 classes = 3 motions x 2 directions), animates it in
place, as the LPC Sprites actions do (no translation, so every frame shows the whole
character at the same place and only the pose changes). Each arm turns through four poses,
down, out, diagonal and up, once per cycle of 4 frames, while the legs stand on two frames
and stride on the other two; the motions differ in how the arms are coupled:

  * ``windmill``: both arms turn the same way, the image-left arm one pose ahead;
  * ``backstroke``: the arms turn the other way, the image-left arm one pose behind;
  * ``jack``: the arms are two poses apart (one up while the other is down), the legs
    stride while the image-right arm is up or diagonal.

A left action is the exact mirror image of the right one. The character faces front.

**Motion is visible only in motion.** Every video's time mean (over whole cycles) is the
same picture for all six actions: each arm spends one frame in each pose, the legs two in
each, at a fixed height. Nothing that identifies the action survives time averaging, so
it cannot hide in the time-invariant (static) part of a Koopman model. Earlier versions
drew actions partly in pixels that never move or differ on average (sideways eyes for a
direction, an arm held up while jumping, a jumper higher on average than a walker): such
cues are time-invariant, SKD's static modes took them, and swaps showed the donor's action.

Every frame of every action is distinct (the 24 frames use every ordered pair of different
arm poses once with standing and once with striding legs), so a frame determines its
action, its phase and the next frame (the frames are a Markov chain, as in LPC Sprites). A
Koopman model with a per-frame encoder needs this: a cycle that passes through the same
frame twice, going two different ways (an earlier version's ``0, 4, 6, 4`` jump with one
pose), has no map from one frame's latent to the next, linear or not.

The appearance never changes over time: the number of pixels of every colour is the same in
every frame (poses move pixels, they never add or remove them). A per-sequence nuisance
``phase`` in ``[0, 4)`` sets where the motion cycle starts; it never changes the class.

An *identity* is one combination of the static factor values, coded in mixed radix in the
order of `STATIC_FACTORS` (``identity = (((skin * 4 + pants) * 4 + top) * 4 + hair) * 4 +
background``), 4^5 = 1024 in all. A permutation of the identities drawn from the seed puts
the first 819 (80%) in ``train`` and the other 205 in ``test``; every identity appears once
with every action, so train has 4914 sequences and test 1230, ordered by identity, then
action. Everything is plain vectorised numpy and deterministic in the seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

STATIC_FACTORS = {"skin": 4, "pants": 4, "top": 4, "hair": 4, "background": 4}
DYNAMIC_FACTORS = {"action": 6}
MOTIONS = ("windmill", "backstroke", "jack")
ACTION_NAMES = tuple(f"{motion}_{side}" for motion in MOTIONS for side in ("left", "right"))
SPLITS = ("train", "test")
IMAGE_SIZES = (32, 64)
TRAIN_FRACTION = 0.8
NUM_PHASES = 4

# RGB colours, one row per class. All 20 are distinct (and distinct from the eye colour).
PALETTES = {
    "skin": np.array([[255, 222, 185], [225, 170, 110], [175, 115, 65], [110, 65, 35]],
                     np.uint8),
    "pants": np.array([[20, 185, 195], [125, 125, 125], [250, 135, 175], [135, 135, 20]],
                      np.uint8),
    "top": np.array([[215, 35, 45], [70, 200, 70], [45, 95, 235], [145, 60, 195]],
                    np.uint8),
    "hair": np.array([[245, 215, 70], [210, 85, 25], [80, 45, 20], [235, 235, 235]],
                     np.uint8),
    "background": np.array([[0, 0, 0], [30, 45, 110], [30, 95, 50], [165, 205, 235]],
                           np.uint8),
}
EYE_COLOUR = np.array([25, 25, 25], np.uint8)

# Part indices of the rendered label maps.
PARTS = ("background", "hair", "skin", "top", "pants", "eyes")
_PART_OF_FACTOR = {"background": 0, "hair": 1, "skin": 2, "top": 3, "pants": 4}
_BASE = 32  # geometry is drawn at 32x32 and upsampled by pixel repetition

# Pixel art of the character on a 17 x 16 canvas, facing front. Letters are parts:
# h hair, s skin, e eyes, t top, p pants; '.' is transparent.
_BODY = """
.....hhhhhh.....
....hhhhhhhh....
.....ssssss.....
.....ssssss.....
.....ssssss.....
.....ssssss.....
.....tttttt.....
.....tttttt.....
.....tttttt.....
.....tttttt.....
.....tttttt.....
.....tttttt.....
.....pppppp.....
"""
_EYES = ((3, 6), (3, 9))  # the character faces front
# One arm (the right one, on the image's right); the left arm is its mirror image.
_ARM = {
    "down": """
...........tt...
...........tt...
...........tt...
...........tt...
...........tt...""",
    "out": """
...........ttttt
...........ttttt
................
................
................""",
    "up": """
...........tt...
...........tt...
...........tt...
...........tt...
...........tt...""",
    "diagonal": """
..............tt
.............tt.
............tt..
...........tt...
...........tt...""",
}
_ARM_TOP_ROW = {"down": 6, "out": 6, "up": 2, "diagonal": 2}
_LEGS = {
    "stand": """
.....tt..tt.....
.....tt..tt.....
.....tt..tt.....
.....tt..tt.....""",
    "stride": """
.....tt..tt.....
....tt....tt....
....tt....tt....
...tt......tt...""",
}
_LEGS_TOP_ROW = 13
_FIGURE_SHAPE = (17, 16)
_GROUND = 28  # image row (at 32x32) just below the feet when standing
_LEFT = (_BASE - _FIGURE_SHAPE[1]) // 2  # the figure's first column: centred
# Per motion, the right-hand variant's frames in cycle order: (image-right arm, image-left
# arm, legs). With the arm poses in turning order (down, out, diagonal, up), the left arm is
# the right one's pose +1 (windmill), -1 (backstroke) or +2 (jack); legs are chosen so that
# no frame repeats within or across actions, mirror images included.
_POSES = {
    "windmill": (("down", "out", "stand"), ("out", "diagonal", "stride"),
                 ("diagonal", "up", "stand"), ("up", "down", "stride")),
    "backstroke": (("down", "up", "stand"), ("up", "diagonal", "stride"),
                   ("diagonal", "out", "stand"), ("out", "down", "stride")),
    "jack": (("down", "diagonal", "stand"), ("out", "up", "stand"),
             ("diagonal", "down", "stride"), ("up", "out", "stride")),
}
_CODES = {".": 0, "h": 1, "s": 2, "t": 3, "p": 4, "e": 5}


def _art(text: str, part: int | None = None) -> np.ndarray:
  """Parses pixel art into a part-index array; ``part`` overrides every non-'.' letter."""
  rows = [r for r in text.strip("\n").split("\n")]
  out = np.array([[_CODES[c] for c in r] for r in rows], np.uint8)
  if part is not None:
    out[out > 0] = part
  return out


def _paste(canvas: np.ndarray, art: np.ndarray, top: int) -> None:
  """Draws the non-transparent pixels of ``art`` onto ``canvas`` from row ``top``."""
  if np.any(canvas[top:top + art.shape[0]][art > 0]):
    raise AssertionError("sprite parts overlap")  # guards the constant-pixel-count property
  canvas[top:top + art.shape[0]][art > 0] = art[art > 0]


def _figure(right_arm: str, left_arm: str, legs: str) -> np.ndarray:
  """The character as a (17, 16) part-index array, in the given pose."""
  fig = np.zeros(_FIGURE_SHAPE, np.uint8)
  _paste(fig, _art(_BODY), 0)
  for r, c in _EYES:
    fig[r, c] = _CODES["e"]
  arm = _art(_ARM[right_arm], _CODES["t"])
  _paste(fig, arm, _ARM_TOP_ROW[right_arm])
  _paste(fig, _art(_ARM[left_arm], _CODES["t"])[:, ::-1], _ARM_TOP_ROW[left_arm])
  _paste(fig, _art(_LEGS[legs], _CODES["p"]), _LEGS_TOP_ROW)
  return fig


def _motion(motion: str, phase: int, frames: int) -> list[np.ndarray]:
  """Figure per frame of the right-hand variant of a motion."""
  return [_figure(*_POSES[motion][(phase + t) % NUM_PHASES]) for t in range(frames)]


def _geometry(frames: int) -> np.ndarray:
  """Part-index maps of every (action, phase), shape (actions, NUM_PHASES, frames, 32, 32)."""
  maps = np.zeros((len(ACTION_NAMES), NUM_PHASES, frames, _BASE, _BASE), np.uint8)
  fh, fw = _FIGURE_SHAPE
  top = _GROUND - fh
  for motion_index, motion in enumerate(MOTIONS):
    right = maps[2 * motion_index + 1]
    for phase in range(NUM_PHASES):
      for t, fig in enumerate(_motion(motion, phase, frames)):
        right[phase, t, top:top + fh, _LEFT:_LEFT + fw] = fig
    maps[2 * motion_index] = right[..., ::-1]  # the left action is the mirror image
  return maps


def _check_image_size(image_size: Any) -> int:
  if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or (
      int(image_size) not in IMAGE_SIZES):
    raise ValueError(f"image_size must be one of {', '.join(map(str, IMAGE_SIZES))}; "
                     f"got {image_size!r}.")
  return int(image_size)


def _check_int(name: str, value: Any, low: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(f"{name} must be an integer >= {low}; got {value!r}.")
  if int(value) < low:
    raise ValueError(f"{name} must be an integer >= {low}; got {value}.")
  return int(value)


def _class_array(what: str, x: Any, classes: int) -> np.ndarray:
  """Raises unless ``x`` is a 1-D integer array with values in [0, classes)."""
  x = np.asarray(x)
  if x.ndim != 1 or not np.issubdtype(x.dtype, np.integer):
    raise ValueError(f"{what} must be a 1-D integer array of shape (N,); got dtype "
                     f"{x.dtype} and shape {x.shape}.")
  if x.size and (x.min() < 0 or x.max() >= classes):
    raise ValueError(f"{what} must be in [0, {classes - 1}]; got values in "
                     f"[{x.min()}, {x.max()}].")
  return x


def _label(labels: Mapping[str, Any], name: str, classes: int) -> np.ndarray:
  if name not in labels:
    raise KeyError(f"labels must have a {name!r} entry (keys needed: "
                   f"{', '.join(map(repr, (*STATIC_FACTORS, 'action')))}); got keys "
                   f"{sorted(labels)}.")
  return _class_array(f"labels[{name!r}]", labels[name], classes)


def render(labels: Mapping[str, Any], *, phase: Any = None, image_size: int = 32,
           frames: int = 8) -> np.ndarray:
  """Renders videos from labels.

  Args:
    labels: mapping with one integer array of shape (N,) per static factor (the keys of
      `STATIC_FACTORS`) and ``"action"``; extra keys are ignored, so the dict returned by
      `make_dataset` works.
    phase: nuisance per sequence, integers in [0, 4) (where the motion cycle starts), shape
      (N,), or None for all zeros.
    image_size: 32 or 64.
    frames: number of frames, >= 2.

  Returns:
    uint8 videos of shape (N, frames, image_size, image_size, 3).
  """
  image_size = _check_image_size(image_size)
  frames = _check_int("frames", frames, 2)
  action = _label(labels, "action", len(ACTION_NAMES))
  n = action.shape[0]
  palette = np.empty((n, len(PARTS), 3), np.uint8)
  palette[:, _CODES["e"]] = EYE_COLOUR
  for name, classes in STATIC_FACTORS.items():
    values = _label(labels, name, classes)
    if values.shape != (n,):
      raise ValueError(f"labels[{name!r}] has shape {values.shape} but labels['action'] "
                       f"has shape {(n,)}; all label arrays must have the same length.")
    palette[:, _PART_OF_FACTOR[name]] = PALETTES[name][values]
  if phase is None:
    phase = np.zeros((n,), np.int64)
  phase = _class_array("phase", phase, NUM_PHASES)
  if phase.shape != (n,):
    raise ValueError(f"phase must have shape {(n,)} (one per sequence); got {phase.shape}.")

  geometry = _geometry(frames)
  scale = image_size // _BASE
  if scale > 1:
    geometry = geometry.repeat(scale, axis=-2).repeat(scale, axis=-1)
  geometry = geometry.reshape(-1, frames, image_size, image_size)
  which = action.astype(np.int64) * NUM_PHASES + phase

  out = np.empty((n, frames, image_size, image_size, 3), np.uint8)
  chunk = max(1, (1 << 21) // (frames * image_size * image_size))
  flat_palette = palette.reshape(-1, 3)
  for start in range(0, n, chunk):
    stop = min(n, start + chunk)
    offsets = (np.arange(start, stop, dtype=np.intp) * len(PARTS))[:, None, None, None]
    index = geometry[which[start:stop]] + offsets
    np.take(flat_palette, index, axis=0, out=out[start:stop])
  return out


def identity_factors(identity: Any) -> dict[str, np.ndarray]:
  """Static factor values of identity codes (mixed radix in `STATIC_FACTORS` order).

  Args:
    identity: integer array of identity codes, any shape.

  Returns:
    Dict factor name -> int32 array of the same shape as ``identity``.
  """
  rest = np.asarray(identity, np.int64)
  out = {}
  for name, classes in reversed(STATIC_FACTORS.items()):
    out[name] = (rest % classes).astype(np.int32)
    rest = rest // classes
  return {name: out[name] for name in STATIC_FACTORS}


def split_identities(split: str = "train", *, seed: int = 0) -> np.ndarray:
  """The sorted identity codes of a split (int32); train and test are disjoint."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}; got {split!r}.")
  seed = _check_int("seed", seed, 0)
  n_identities = int(np.prod(list(STATIC_FACTORS.values())))
  order = np.random.default_rng([seed, 0]).permutation(n_identities)
  n_train = int(round(TRAIN_FRACTION * n_identities))
  ids = order[:n_train] if split == "train" else order[n_train:]
  return np.sort(ids).astype(np.int32)


def _phases(seed: int) -> np.ndarray:
  """Nuisance phase of every (identity, action), shape (identities, actions); split-free."""
  n_identities = int(np.prod(list(STATIC_FACTORS.values())))
  rng = np.random.default_rng([seed, 1])
  return rng.integers(0, NUM_PHASES, size=(n_identities, len(ACTION_NAMES)))


def make_dataset(split: str = "train", *, image_size: int = 32, frames: int = 8,
                 seed: int = 0) -> dict[str, np.ndarray]:
  """Builds one split of the synthetic sprite videos in memory.

  Args:
    split: "train" (819 identities) or "test" (205 identities, unseen in train).
    image_size: 32 or 64.
    frames: frames per video, >= 2.
    seed: non-negative integer; the same seed gives byte-identical output.

  Returns:
    Dict of numpy arrays, N = identities x 6 (train 4914, test 1230), ordered by identity
    then action:
      ``"video"``: uint8 (N, frames, image_size, image_size, 3);
      ``"action"``: int32 (N,), indices into `ACTION_NAMES`;
      one int32 (N,) array per static factor, keyed by the names in `STATIC_FACTORS`;
      ``"identity"``: int32 (N,), the identity code.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}; got {split!r}.")
  image_size = _check_image_size(image_size)
  frames = _check_int("frames", frames, 2)
  seed = _check_int("seed", seed, 0)
  n_actions = len(ACTION_NAMES)
  ids = split_identities(split, seed=seed)
  identity = np.repeat(ids, n_actions).astype(np.int32)
  action = np.tile(np.arange(n_actions, dtype=np.int32), len(ids))
  labels = {"action": action, **identity_factors(identity)}
  phase = _phases(seed)[identity, action]
  video = render(labels, phase=phase, image_size=image_size, frames=frames)
  return {"video": video, **labels, "identity": identity}
