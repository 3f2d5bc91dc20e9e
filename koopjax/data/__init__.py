"""Datasets for koopjax: in-memory numpy arrays of videos with ground-truth factor labels.

`synthetic` is the embedded default: procedurally generated sprite videos, built
deterministically in memory in seconds (no files, no downloads). `sprites` is the LPC
Sprites benchmark as a TFDS builder (registered as ``sprites`` on import), prepared once
from the sprite sheets. `loader` batches in-memory arrays deterministically from (seed, step);
`augment` changes videos' appearance on the device (label-free, inside a loss).
"""

from koopjax.data import augment
from koopjax.data import loader
from koopjax.data import sprites
from koopjax.data import synthetic
from koopjax.data import videos

__all__ = ("augment", "loader", "sprites", "synthetic", "videos")
