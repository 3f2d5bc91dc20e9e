"""`phrases`: an embedded sentiment task whose every token has a known role.

Each sequence is filler words with one or two planted sentiment phrases. A phrase is an
optional negation ("not"), an optional intensifier ("very", "really") and a polar word
("good", "awful", ...). Its polarity is the word's, flipped by a negation; an intensifier
doubles its weight. The label is the sign of the weighted sum of the phrases' polarities
(1 = positive, 0 = negative); sequences whose phrases cancel are not generated. Every token
of a planted phrase is *sentiment-bearing* (``role`` ±1, the polarity the phrase carries);
fillers and padding have role 0. This lets an analysis of a trained network be *scored*:
does it single out the tokens that decide the label?

Sequences have lengths in [min_length, max_length] and are padded with token 0 at the end.
Generated deterministically from (split, seed) in well under a second.
"""

from __future__ import annotations

import numpy as np

PAD = "<pad>"
NEGATIONS = ("not",)
INTENSIFIERS = ("very", "really")
POSITIVE = ("good", "great", "fine", "lovely", "superb", "happy", "nice", "excellent")
NEGATIVE = ("bad", "awful", "poor", "boring", "terrible", "sad", "dull", "horrible")
FILLERS = ("the", "a", "movie", "film", "plot", "actor", "actress", "was", "is", "and", "it",
           "this", "story", "scene", "with", "of", "in", "that", "music", "ending", "cast",
           "director", "script", "camera", "we", "they", "saw", "watched", "long", "short",
           "old", "new", "first", "last", "time", "night", "city", "house", "car", "dog")
VOCABULARY = (PAD, *NEGATIONS, *INTENSIFIERS, *POSITIVE, *NEGATIVE, *FILLERS)
TOKEN = {word: i for i, word in enumerate(VOCABULARY)}

SPLIT_SIZES = {"train": 4000, "validation": 500, "test": 1000}
MIN_LENGTH, MAX_LENGTH = 10, 24
_SPLIT_SEEDS = {"train": 0, "validation": 1, "test": 2}


def _phrase(rng: np.random.Generator) -> tuple[list[int], int, int]:
  """(tokens, polarity ±1, weight 1 or 2) of one random sentiment phrase."""
  positive = rng.random() < 0.5
  word = rng.choice(POSITIVE if positive else NEGATIVE)
  negated = rng.random() < 0.3
  intensified = rng.random() < 0.3
  tokens = ([TOKEN["not"]] if negated else []) + (
      [TOKEN[rng.choice(INTENSIFIERS)]] if intensified else []) + [TOKEN[word]]
  polarity = (1 if positive else -1) * (-1 if negated else 1)
  return tokens, polarity, 2 if intensified else 1


def _sequence(rng: np.random.Generator, max_length: int, min_length: int):
  while True:
    phrases = [_phrase(rng) for _ in range(1 + int(rng.random() < 0.5))]
    score = sum(p * w for _, p, w in phrases)
    if score != 0:
      break
  length = int(rng.integers(min_length, max_length + 1))
  planted = sum(len(t) for t, _, _ in phrases)
  fillers = [TOKEN[w] for w in rng.choice(FILLERS, size=length - planted)]
  # Phrases go between fillers at random gaps, in order, never overlapping.
  cuts = np.sort(rng.choice(len(fillers) + 1, size=len(phrases), replace=True))
  tokens, roles, previous = [], [], 0
  for cut, (phrase, polarity, _) in zip(cuts, phrases):
    tokens += fillers[previous:cut] + phrase
    roles += [0] * (cut - previous) + [polarity] * len(phrase)
    previous = cut
  tokens += fillers[previous:]
  roles += [0] * (len(fillers) - previous)
  return tokens, roles, int(score > 0)


def make_dataset(split: str, *, seed: int = 0, size: int | None = None,
                 max_length: int = MAX_LENGTH, min_length: int = MIN_LENGTH
                 ) -> dict[str, np.ndarray]:
  """One split of `phrases`.

  Args:
    split: "train" (4000), "validation" (500) or "test" (1000 sequences).
    seed: dataset seed (splits of one seed never share their random stream).
    size: number of sequences (default: the split's).
    max_length: T, the padded length (>= min_length).
    min_length: shortest sequence (>= 7: two phrases of up to three tokens and a filler).

  Returns:
    ``x`` int32 (N, T) token ids (0 = padding), ``length`` int32 (N,), ``label`` int32 (N,)
    (1 = positive), ``role`` int8 (N, T) in {−1, 0, 1}.
  """
  if split not in SPLIT_SIZES:
    raise ValueError(f"split must be one of {', '.join(SPLIT_SIZES)}; got {split!r}.")
  if not 7 <= min_length <= max_length:
    raise ValueError(f"need 7 <= min_length <= max_length (two phrases of up to three tokens "
                     f"and a filler); got {min_length}, {max_length}.")
  n = SPLIT_SIZES[split] if size is None else size
  rng = np.random.default_rng([seed, _SPLIT_SEEDS[split]])
  x = np.zeros((n, max_length), np.int32)
  role = np.zeros((n, max_length), np.int8)
  length = np.empty((n,), np.int32)
  label = np.empty((n,), np.int32)
  for i in range(n):
    tokens, roles, label[i] = _sequence(rng, max_length, min_length)
    length[i] = len(tokens)
    x[i, :len(tokens)] = tokens
    role[i, :len(roles)] = roles
  return {"x": x, "length": length, "label": label, "role": role}


def decode(tokens: np.ndarray, length: int | None = None) -> list[str]:
  """Token ids (T,) -> words, up to ``length``."""
  tokens = np.asarray(tokens)[:length]
  return [VOCABULARY[int(t)] for t in tokens]
