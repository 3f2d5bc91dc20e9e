"""Small helpers for benchmarking the train step (used by the benchmarks in this folder).

Nothing here is needed for training; these build inputs directly on the devices and time a
jitted step the way the benchmark reports it (synchronised with ``block_until_ready``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from koopjax import parallel
from koopjax import train
from koopjax.data import loader as loader_lib


def synthetic_video_batch(batch_size: int, frames: int, image_size: int, channels: int,
                          mesh: Mesh, seed: int = 0) -> dict[str, jax.Array]:
  """A uint8 ``{"video": (B, T, H, W, C)}`` batch generated on the devices, batch-sharded.

  Built by a jitted function with the mesh's batch sharding as output sharding, so no host
  copy of the (possibly large) batch is made and every process gets the same global array.
  """
  shape = (batch_size, frames, image_size, image_size, channels)
  if batch_size % mesh.devices.size:
    raise ValueError(f"batch_size {batch_size} must be divisible by the number of devices "
                     f"({mesh.devices.size}).")

  def make(key):
    return jax.random.randint(key, shape, 0, 256, dtype=jnp.int32).astype(jnp.uint8)

  video = jax.jit(make, out_shardings=parallel.batch_sharding(mesh))(jax.random.key(seed))
  return {"video": video}


def time_calls(fn: Callable[[], Any], steps: int, warmup: int = 0) -> list[float]:
  """Wall-clock seconds of ``steps`` calls of ``fn`` (after ``warmup`` untimed calls).

  Each call's result is waited for with `jax.block_until_ready` inside the timed region.
  """
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return times


def summarise(times: list[float]) -> dict[str, float]:
  """Median and spread (min, p10, p90, max, std) of step times in seconds."""
  if not times:
    raise ValueError("no times to summarise.")
  arr = np.asarray(times, np.float64)
  return {"step_s_median": float(np.median(arr)), "step_s_min": float(arr.min()),
          "step_s_p10": float(np.percentile(arr, 10)),
          "step_s_p90": float(np.percentile(arr, 90)), "step_s_max": float(arr.max()),
          "step_s_std": float(statistics.pstdev(times)), "timed_steps": len(times)}


def train_step_times(cfg, steps: int = 20) -> dict[str, float]:
  """`summarise`d seconds per step of the config's real train step (`koopjax.train.build`) on
  the first batch of its training data, after one untimed (compiling) step."""
  built = train.build(cfg)
  data = built.model.load_data(cfg, "train")
  batch = parallel.to_global(loader_lib.ArrayLoader(
      {k: data[k] for k in built.model.batch_keys(cfg)}, cfg.batch_size, 0).batch(0),
      built.mesh)
  state = built.state

  def one():
    nonlocal state
    state, metrics = built.step(state, batch, built.step_key)
    return metrics

  return summarise(time_calls(one, steps, warmup=1))
