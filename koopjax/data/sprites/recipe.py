"""The published Sprites recipe: which LPC sheet cells form which sequence, and compositing.

Pure numpy/PIL functions with no TFDS dependency. The recipe (Li & Mandt, ICML 2018, as
restated in docs/datasets.md):

* A sheet is 832 x 1344 RGBA = 13 columns x 21 rows of 64 x 64 cells.
* A character is ``body/B.png``, ``bottomwear/P.png``, ``topwear/T.png``, ``hair/H.png``
  and ``shoes/1.png`` alpha-composited, in that order, over an opaque black canvas;
  B, P, T, H in 0..5 and character code ``B*216 + P*36 + T*6 + H``.
* Nine actions (3 animations x 3 directions), each 8 frames from one sheet row; action
  label ``3 * animation + direction``.
* Train = the first 1000 codes of ``np.random.seed(423); np.random.permutation(1296)``,
  test = the remaining 296.

Compositing uses exact integer rounding, ``(src*a + dst*(255 - a) + 127) // 255``, layer
by layer in uint8; over an opaque canvas this equals PIL's ``Image.alpha_composite``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

FRAME_SIZE = 64
SHEET_SHAPE = (1344, 832)  # (height, width) in pixels = 21 rows x 13 columns of cells
NUM_FRAMES = 8

# Static factor -> sheet folder, in compositing order (bottom layer first).
LAYERS = (("skin", "body"), ("pants", "bottomwear"), ("top", "topwear"), ("hair", "hair"))
NUM_CHOICES = 6  # sheets 0..5 of each layer
SHOES = pathlib.PurePosixPath("shoes", "1.png")  # always the top layer
NUM_CHARACTERS = NUM_CHOICES**len(LAYERS)  # 1296

DIRECTIONS = ("front", "left", "right")
# animation -> (sheet rows for front, left, right; the 8 sheet columns of the sequence)
ANIMATIONS = {
    "walk": ((10, 9, 11), (8, 1, 2, 3, 4, 5, 6, 7)),
    "spellcast": ((2, 1, 3), (0, 1, 2, 3, 4, 5, 4, 6)),
    "slash": ((14, 13, 15), (0, 1, 2, 3, 4, 5, 4, 0)),
}
ACTION_NAMES = tuple(f"{animation}-{direction}"
                     for animation in ANIMATIONS for direction in DIRECTIONS)

SPLIT_SEED = 423
NUM_TRAIN_CHARACTERS = 1000
SPLITS = ("train", "test")


def expected_files() -> tuple[pathlib.PurePosixPath, ...]:
  """The sheets the recipe reads, relative to the manual directory (25 paths)."""
  sheets = tuple(pathlib.PurePosixPath(folder, f"{i}.png")
                 for _, folder in LAYERS for i in range(NUM_CHOICES))
  return sheets + (SHOES,)


def describe_layout() -> str:
  """One line per folder, e.g. ``body/{0..5}.png``, for error messages."""
  lines = [f"  {folder}/{{0..{NUM_CHOICES - 1}}}.png   ({factor})" for factor, folder in LAYERS]
  return "\n".join(lines + [f"  {SHOES}"])


def missing_files(manual_dir: str | os.PathLike[str]) -> list[pathlib.Path]:
  """Absolute paths of the expected sheets that are not files under `manual_dir`."""
  root = pathlib.Path(manual_dir).expanduser()
  return [root / rel for rel in expected_files() if not (root / rel).is_file()]


def check_manual_dir(manual_dir: str | os.PathLike[str] | None) -> pathlib.Path:
  """Returns `manual_dir` as a path; raises FileNotFoundError listing every missing sheet.

  Raises:
    FileNotFoundError: `manual_dir` is None, not a directory, or lacks any expected sheet;
      the message lists all missing paths and the expected layout.
  """
  if manual_dir is None:
    raise FileNotFoundError(
        "Sprites needs a manual directory with the LPC sprite sheets; got None. Expected "
        f"layout:\n{describe_layout()}")
  root = pathlib.Path(manual_dir).expanduser()
  if not root.is_dir():
    raise FileNotFoundError(
        f"Sprites manual directory {root} does not exist or is not a directory; expected a "
        f"folder of LPC sprite sheets (body/, bottomwear/, topwear/, hair/, shoes/).\n"
        f"Layout:\n{describe_layout()}")
  missing = missing_files(root)
  if missing:
    listing = "\n".join(f"  {path}" for path in missing)
    raise FileNotFoundError(
        f"Sprites manual directory {root} is missing {len(missing)} of the "
        f"{len(expected_files())} expected sprite sheets (first: {missing[0]}). Missing:\n"
        f"{listing}\nExpected layout:\n{describe_layout()}")
  return root


def character_code(skin: int, pants: int, top: int, hair: int) -> int:
  """Character code ``skin*216 + pants*36 + top*6 + hair`` in [0, 1296)."""
  code = 0
  for value in (skin, pants, top, hair):
    code = code * NUM_CHOICES + int(value)
  return code


def character_factors(code: int) -> tuple[int, int, int, int]:
  """Inverse of `character_code`: (skin, pants, top, hair)."""
  if not 0 <= code < NUM_CHARACTERS:
    raise ValueError(f"character code must be in [0, {NUM_CHARACTERS}); got {code}.")
  skin, rest = divmod(int(code), NUM_CHOICES**3)
  pants, rest = divmod(rest, NUM_CHOICES**2)
  top, hair = divmod(rest, NUM_CHOICES)
  return skin, pants, top, hair


def split_codes(split: str) -> np.ndarray:
  """Sorted character codes of a split; shape (1000,) for train, (296,) for test.

  The permutation is numpy's legacy generator seeded with 423, drawn from a private
  `RandomState` (identical to ``np.random.seed(423); np.random.permutation(1296)``
  without touching the global state).
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}; got {split!r}.")
  permutation = np.random.RandomState(SPLIT_SEED).permutation(NUM_CHARACTERS)
  codes = (permutation[:NUM_TRAIN_CHARACTERS] if split == "train"
           else permutation[NUM_TRAIN_CHARACTERS:])
  return np.sort(codes)


def action_cells() -> tuple[np.ndarray, np.ndarray]:
  """The distinct sheet cells the recipe uses, and each action's frames as indices into them.

  Returns:
    cells: int array (num_cells, 2) of (row, column), sorted; 63 cells.
    frames: int array (9, 8); ``cells[frames[action, t]]`` is frame t of `action`.
  """
  wanted = [[(rows[d], col) for col in cols]
            for rows, cols in ANIMATIONS.values() for d in range(len(DIRECTIONS))]
  cells = sorted({cell for sequence in wanted for cell in sequence})
  lookup = {cell: i for i, cell in enumerate(cells)}
  frames = np.array([[lookup[cell] for cell in sequence] for sequence in wanted])
  return np.array(cells), frames


def read_sheet(path: str | os.PathLike[str]) -> np.ndarray:
  """Reads an LPC sheet as RGBA (palette transparency applied); shape (1344, 832, 4) uint8."""
  with Image.open(path) as image:
    if image.size != SHEET_SHAPE[::-1]:
      raise ValueError(f"{path}: expected an LPC sheet of {SHEET_SHAPE[1]} x {SHEET_SHAPE[0]} "
                       f"pixels (width x height); got {image.size[0]} x {image.size[1]}.")
    return np.asarray(image.convert("RGBA"))


def sheet_cells(sheet: np.ndarray, cells: np.ndarray) -> np.ndarray:
  """Cuts cells out of a sheet.

  Args:
    sheet: (1344, 832, C) array.
    cells: (n, 2) int array of (row, column).

  Returns:
    (n, 64, 64, C) array, ``out[i]`` the cell at ``cells[i]``.
  """
  rows, cols, channels = sheet.shape[0] // FRAME_SIZE, sheet.shape[1] // FRAME_SIZE, sheet.shape[2]
  grid = sheet.reshape(rows, FRAME_SIZE, cols, FRAME_SIZE, channels).swapaxes(1, 2)
  return grid[cells[:, 0], cells[:, 1]]


def composite_over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
  """Alpha-composites RGBA `src` over opaque RGB `dst`, rounding to the nearest uint8.

  Args:
    dst: uint8 (..., 3), opaque.
    src: uint8 (..., 4), straight (non-premultiplied) alpha; broadcastable with `dst`.

  Returns:
    uint8 (..., 3): ``round((src_rgb * a + dst * (255 - a)) / 255)``.
  """
  if dst.dtype != np.uint8 or src.dtype != np.uint8 or dst.shape[-1] != 3 or src.shape[-1] != 4:
    raise ValueError(f"expected uint8 dst (..., 3) and uint8 src (..., 4); got {dst.dtype} "
                     f"{dst.shape} and {src.dtype} {src.shape}.")
  alpha = src[..., 3:].astype(np.uint16)
  mixed = src[..., :3] * alpha + dst * (255 - alpha) + 127  # <= 65152, fits uint16
  return (mixed // 255).astype(np.uint8)


def composite_characters(layers: Sequence[np.ndarray], shoes: np.ndarray,
                         codes: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
  """Composites characters, reusing the lower layers that consecutive codes share.

  With sorted codes each partial composite (skin; skin+pants; skin+pants+top) is computed
  once per distinct prefix, so a character costs about one hair and one shoes composite.

  Args:
    layers: four uint8 arrays (6, n, 64, 64, 4): cells of the body, bottomwear, topwear and
      hair sheets 0..5.
    shoes: uint8 (n, 64, 64, 4), the cells of shoes/1.png.
    codes: character codes.

  Yields:
    (code, frames): frames uint8 (n, 64, 64, 3), the character's cells over black.
  """
  black = np.zeros(shoes.shape[:-1] + (3,), np.uint8)
  keys: tuple[int, ...] = ()
  partial: list[np.ndarray] = []  # partial[i]: layers 0..i composited for keys[:i + 1]
  for code in codes:
    factors = character_factors(code)
    depth = 0
    while depth < len(partial) and keys[depth] == factors[depth]:
      depth += 1
    del partial[depth:]
    for level in range(depth, len(layers)):
      below = partial[-1] if partial else black
      partial.append(composite_over(below, layers[level][factors[level]]))
    keys = factors
    yield int(code), composite_over(partial[-1], shoes)

