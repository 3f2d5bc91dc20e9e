"""Writes a PNG grid of synthetic sprite videos: one sequence per row, all frames.

The first rows show one identity with every action; the next rows change one static
factor at a time (same action and phase), so each swap is visible.

  PYTHONPATH=. python scripts/show_synthetic.py /tmp/synthetic_grid.png [--image-size 64]

(or without PYTHONPATH after `pip install -e .`).
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from koopjax.data import synthetic


def grid(videos: np.ndarray, zoom: int, gap: int = 2) -> np.ndarray:
  """Tiles (rows, frames, H, W, 3) uint8 videos into one image, enlarged by ``zoom``."""
  rows, frames, h, w, _ = videos.shape
  big = videos.repeat(zoom, axis=2).repeat(zoom, axis=3)
  hz, wz = h * zoom, w * zoom
  out = np.full((rows * (hz + gap) + gap, frames * (wz + gap) + gap, 3), 255, np.uint8)
  for r in range(rows):
    for t in range(frames):
      y, x = gap + r * (hz + gap), gap + t * (wz + gap)
      out[y:y + hz, x:x + wz] = big[r, t]
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("output", help="PNG path to write")
  parser.add_argument("--split", default="train", choices=synthetic.SPLITS)
  parser.add_argument("--image-size", type=int, default=32, choices=synthetic.IMAGE_SIZES)
  parser.add_argument("--frames", type=int, default=8)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  data = synthetic.make_dataset(args.split, image_size=args.image_size, frames=args.frames,
                                seed=args.seed)
  n_actions = len(synthetic.ACTION_NAMES)
  first = {k: v[:n_actions] for k, v in data.items()}  # one identity, every action
  # One action (the second) of that identity, then one static factor changed per row.
  base = {k: v[1:2] for k, v in first.items() if k != "video"}
  swaps = []
  for name, classes in synthetic.STATIC_FACTORS.items():
    labels = {k: v.copy() for k, v in base.items()}
    labels[name] = (labels[name] + 1) % classes
    swaps.append(synthetic.render(labels, image_size=args.image_size, frames=args.frames))
  base_video = synthetic.render(base, image_size=args.image_size, frames=args.frames)
  videos = np.concatenate([first["video"], base_video, *swaps])
  zoom = max(1, 128 // args.image_size)
  Image.fromarray(grid(videos, zoom)).save(args.output)
  action = synthetic.ACTION_NAMES[1]
  print(f"wrote {args.output}: rows = {', '.join(synthetic.ACTION_NAMES)}, {action} "
        f"(phase 0), then {action} with one factor changed: "
        f"{', '.join(synthetic.STATIC_FACTORS)}")


if __name__ == "__main__":
  main()
