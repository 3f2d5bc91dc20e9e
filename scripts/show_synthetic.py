"""Writes a PNG grid of synthetic sprite videos: one sequence per row, all frames.

The first rows show one identity with every action; the next rows change one static
factor at a time (same action and phase), so each swap is visible.

  PYTHONPATH=. python scripts/show_synthetic.py /tmp/synthetic_grid.png [--image-size 64]

(or without PYTHONPATH after `pip install -e .`).
"""

from __future__ import annotations

import argparse

import numpy as np

from koopjax.data import synthetic
from koopjax.report import figures


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
  action = synthetic.ACTION_NAMES[1]
  labels = [*synthetic.ACTION_NAMES, action, *(f"{action},\nother {name}"
                                                for name in synthetic.STATIC_FACTORS)]
  figures.video_grid(args.output, list(videos), labels, f"synthetic videos ({args.split} split)")
  print(f"wrote {args.output}: rows = {', '.join(synthetic.ACTION_NAMES)}, {action} "
        f"(phase 0), then {action} with one factor changed: "
        f"{', '.join(synthetic.STATIC_FACTORS)}")


if __name__ == "__main__":
  main()
