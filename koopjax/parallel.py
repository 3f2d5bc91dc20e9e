"""Data parallelism over devices and hosts with `jax.sharding`.

One mesh axis, "data": the batch is split along it, parameters are replicated. The mesh uses
Auto axis types (under Explicit types, ``Zᵀ Z`` on a batch-sharded Z raises; docs/design.md),
so XLA inserts the cross-device reductions for the global-batch Koopman fit and BatchNorm
statistics. Multi-host runs go through `jax.distributed`; every process feeds the rows of the
global batch that belong to its own devices.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(coordinator: str | None, num_processes: int | None,
                           process_id: int | None) -> None:
  """Joins a multi-process JAX runtime (no-op when ``coordinator`` is None).

  On CPU the cross-process collectives use gloo.
  """
  if coordinator is None:
    return
  if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                             process_id=process_id)


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D "data" mesh over the first ``num_devices`` devices (0 = all, across hosts)."""
  available = jax.device_count()
  n = available if num_devices in (0, None) else num_devices
  if not 1 <= n <= available:
    raise ValueError(f"num_devices must be between 1 and {available} (devices available); "
                     f"got {num_devices}.")
  if n != available and jax.process_count() > 1:
    raise ValueError("a subset of devices is only supported in single-process runs.")
  devices = np.asarray(jax.devices()[:n])
  return Mesh(devices, (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over the data axis, everything else replicated."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def process_rows(global_batch: int, mesh: Mesh) -> slice:
  """Rows of the global batch this process feeds (its devices' contiguous block)."""
  n_devices = mesh.devices.size
  if global_batch % n_devices:
    raise ValueError(f"batch_size {global_batch} must be divisible by the number of devices "
                     f"({n_devices}).")
  per_process = global_batch // jax.process_count()
  start = jax.process_index() * per_process
  return slice(start, start + per_process)


def to_global(local: Any, mesh: Mesh) -> Any:
  """Builds batch-sharded global arrays from this process's rows (a pytree of numpy arrays)."""
  sharding = batch_sharding(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)
