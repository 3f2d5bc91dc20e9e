"""Datasets for koopjax: in-memory numpy arrays of videos with ground-truth factor labels.

`synthetic` is the embedded default: procedurally generated sprite videos, built
deterministically in memory in seconds (no files, no downloads). `sprites` is the LPC
Sprites benchmark as a TFDS builder (registered as ``sprites`` on import), prepared once
from the sprite sheets. `loader` batches in-memory arrays deterministically from (seed, step);
`augment` changes videos' appearance on the device (label-free, inside a loss).

`sequences` is the registry of the recurrent models' datasets: `phrases` (embedded sentiment
phrases with known token roles), `digits` / `digits_permuted` (scikit-learn's 8x8 digits
pixel by pixel) and `ecg5000` (UCR heartbeats, a TFDS builder).
"""

from koopjax.data import augment
from koopjax.data import digits
from koopjax.data import ecg5000
from koopjax.data import loader
from koopjax.data import phrases
from koopjax.data import sequences
from koopjax.data import sprites
from koopjax.data import synthetic
from koopjax.data import videos

__all__ = ("augment", "digits", "ecg5000", "loader", "phrases", "sequences", "sprites",
           "synthetic", "videos")
