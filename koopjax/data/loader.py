"""Deterministic batching of in-memory datasets, per process, with device prefetch.

The order of examples is a pure function of (seed, step): epoch ``e`` visits a permutation
drawn from ``numpy.random.default_rng([seed, e])`` and the last incomplete batch of an epoch
is dropped. A run restarted from step s therefore sees exactly the batches an uninterrupted
run would, and each process slices its own rows of the same global batch.
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


class ArrayLoader:
  """Global batches of a dict of equally long arrays, as a pure function of the step.

  Args:
    arrays: name -> array with a common leading length N (e.g. uint8 videos and labels).
    batch_size: global batch size B (<= N).
    seed: shuffling seed.
  """

  def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int, seed: int):
    lengths = {name: len(a) for name, a in arrays.items()}
    if not lengths or len(set(lengths.values())) != 1:
      raise ValueError(f"arrays must be non-empty and equally long; got lengths {lengths}.")
    self.arrays = dict(arrays)
    self.size = next(iter(lengths.values()))
    if not 1 <= batch_size <= self.size:
      raise ValueError(f"batch_size must be in [1, {self.size}] (the dataset size); "
                       f"got {batch_size}.")
    self.batch_size = batch_size
    self.seed = seed
    self.steps_per_epoch = self.size // batch_size
    self._permutation_cache: tuple[int, np.ndarray] | None = None

  def _permutation(self, epoch: int) -> np.ndarray:
    if self._permutation_cache is None or self._permutation_cache[0] != epoch:
      perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
      self._permutation_cache = (epoch, perm)
    return self._permutation_cache[1]

  def indices(self, step: int) -> np.ndarray:
    """Dataset indices of the global batch for ``step`` (shape (B,))."""
    epoch, position = divmod(step, self.steps_per_epoch)
    start = position * self.batch_size
    return self._permutation(epoch)[start:start + self.batch_size]

  def batch(self, step: int, rows: slice = slice(None)) -> dict[str, np.ndarray]:
    """The global batch for ``step``, or only ``rows`` of it (a process's share)."""
    index = self.indices(step)[rows]
    return {name: a[index] for name, a in self.arrays.items()}


def prefetch(make: Callable[[int], Any], start: int, stop: int, depth: int = 2
             ) -> Iterator[tuple[int, Any]]:
  """Yields ``(step, make(step))`` for start <= step < stop, computing up to ``depth`` ahead.

  ``make`` runs on a worker thread (numpy slicing and host-to-device copies release the GIL),
  so the next batches are staged on the devices while the current step runs.
  """
  if depth <= 0:
    for step in range(start, stop):
      yield step, make(step)
    return
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    pending: collections.deque = collections.deque()
    next_step = start
    while next_step < stop and len(pending) < depth:
      pending.append((next_step, pool.submit(make, next_step)))
      next_step += 1
    while pending:
      step, future = pending.popleft()
      if next_step < stop:
        pending.append((next_step, pool.submit(make, next_step)))
        next_step += 1
      yield step, future.result()
