"""TFDS builder for the Sprites benchmark, built from user-supplied LPC sprite sheets.

Works without TensorFlow: the records are written as array_record and read with
`builder.as_data_source()`; each video is stored as one zlib-compressed uint8 tensor.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from koopjax.data.sprites import recipe

FILE_FORMAT = "array_record"

_CITATION = """\
@inproceedings{li2018disentangled,
  title={Disentangled Sequential Autoencoder},
  author={Li, Yingzhen and Mandt, Stephan},
  booktitle={International Conference on Machine Learning},
  year={2018}
}"""


class Sprites(tfds.core.GeneratorBasedBuilder):
  """Sprites: 8-frame 64x64 RGB videos of LPC characters (Li & Mandt, 2018).

  1296 characters (skin, pants, top, hair: 6 choices each) x 9 actions (walk, spellcast,
  slash x front, left, right). Train: 1000 characters (9000 videos); test: 296 characters
  (2664 videos), split by the published seed-423 permutation. Records are ordered by
  character code ``skin*216 + pants*36 + top*6 + hair``, then by action.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: the published recipe; videos stored as zlib uint8."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Point manual_dir at a folder of LPC sprite sheets (e.g. the Universal-LPC-spritesheet "
      "layers used by Li & Mandt, 2018) laid out as:\n" + recipe.describe_layout())

  def __init__(self, *, file_format: str = FILE_FORMAT, **kwargs):
    super().__init__(file_format=file_format, **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    static = {factor: tfds.features.ClassLabel(num_classes=recipe.NUM_CHOICES)
              for factor, _ in recipe.LAYERS}
    features = tfds.features.FeaturesDict({
        # One zlib stream per video: 4x smaller and 3x faster to build than PNG frames
        # (consecutive frames share most pixels). tfds.features.Video needs TensorFlow.
        "video": tfds.features.Tensor(
            shape=(recipe.NUM_FRAMES, recipe.FRAME_SIZE, recipe.FRAME_SIZE, 3),
            dtype=np.uint8, encoding=tfds.features.Encoding.ZLIB),
        "action": tfds.features.ClassLabel(names=recipe.ACTION_NAMES),
        **static,
    })
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=features,
        homepage="https://github.com/YingzhenLi/Sprites",
        citation=_CITATION,
        disable_shuffling=True,  # keep the documented (code, action) order
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = recipe.check_manual_dir(dl_manager.manual_dir)
    cells, _ = recipe.action_cells()

    def cells_of(rel):
      return recipe.sheet_cells(recipe.read_sheet(root / rel), cells)

    layers = [np.stack([cells_of(f"{folder}/{i}.png") for i in range(recipe.NUM_CHOICES)])
              for _, folder in recipe.LAYERS]
    shoes = cells_of(recipe.SHOES)
    return {split: self._generate_examples(layers, shoes, recipe.split_codes(split))
            for split in recipe.SPLITS}

  def _generate_examples(self, layers, shoes, codes):
    """Yields (key, example) by character code, then action."""
    _, frames = recipe.action_cells()
    for code, images in recipe.composite_characters(layers, shoes, codes):
      factors = dict(zip((factor for factor, _ in recipe.LAYERS),
                         recipe.character_factors(code)))
      for action, sequence in enumerate(frames):
        yield f"{code:04d}-{action}", {
            "video": images[sequence],
            "action": action,
            **factors,
        }
