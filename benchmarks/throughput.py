"""Throughput of the SKD train step: koopjax vs the same model and step in PyTorch.

Run from the repository root::

    python benchmarks/throughput.py                      # default sweep (small on CPU, full on GPU/TPU)
    python benchmarks/throughput.py --sweep full --json results.json
    python benchmarks/throughput.py --batch 32 --devices 1 --precision float32 --steps 50
    python benchmarks/throughput.py --data-dir ~/tfds     # input pipeline on Sprites (built if missing)
    python benchmarks/throughput.py --sweep full --torch none --budget-s 300   # stop in 5 min

Measures, for each point (batch size x devices x compute precision) of the SKD train step at the
Sprites reference configuration (64x64x3, T=8, conv_dim 32, k 40; `koopjax.configs` "sprites"):
compile time, steady-state step time (median and spread of the timed steps after warm-up, each
synchronised with ``block_until_ready``), sequences/s and frames/s, peak device memory, FLOPs per
step from XLA's cost analysis and the achieved FLOP/s as a fraction of the device's peak. The step is
koopjax's own (`koopjax.train.step.compile_train_step`: jitted, batch-sharded, state donated).

In the same run: the PyTorch version of the step (`benchmarks/torch_skd.py`, eager and
`torch.compile`; skipped with a message when PyTorch is missing) with koopjax/PyTorch step-rate
ratios and a one-off check that it computes the same loss as koopjax on identical weights and
input; the eigenvalue path (`koopjax.eigvals` on the device, XLA's, vs on the host, NumPy
through ``jax.pure_callback``; value and gradient checked equal); and the input pipeline's own rate
(Sprites -> `ArrayLoader` -> `parallel.to_global` -> device arrays), compared with what the train
step consumes (it must be >= 5x).

Every measurement runs in its own subprocess, so peak memory and compile caches belong to one point
and JAX and PyTorch never share a process (or a GPU memory pool). The parent process never
initialises a JAX backend.

On a CPU host each step takes seconds, so the default there is a small sweep with few timed steps
(printed as such); the >= 50-step requirement applies to accelerator runs (default 50 steps).

Figures measured with it, and what was tried to make the step fast, are in
docs/performance.md; ``benchmarks/gpu_session.sh`` runs it on a lent accelerator within a time
budget (``--budget-s``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import pathlib
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

RESULT_TAG = "@@KOOPJAX_BENCH_RESULT@@ "
PRECISIONS = ("float32", "bfloat16")
FULL_BATCHES = (8, 16, 32, 64, 128, 256, 512, 1024)
REFERENCE = {"batch": 32, "devices": 1, "precision": "float32"}
PIPELINE_FACTOR = 5.0
# Benchmarks read data from beside the checkout (never copied into the repository).
DEFAULT_SPRITE_SHEETS = ROOT.parent / "shared" / "data" / "lpc-sprites"

# Dense peak FLOP/s per device (vendor data sheets, no sparsity): bfloat16 tensor cores, TF32
# tensor cores, and float32 without tensor cores. Matched by substring of `device_kind`, first
# match wins. float32 steps are compared with the TF32 peak where XLA may use TF32 (the default
# matmul precision on NVIDIA GPUs), else with the plain float32 peak.
PEAK_FLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 NVL", {"bfloat16": 835e12, "tf32": 418e12, "float32": 60e12}),
    ("H100 PCIe", {"bfloat16": 756e12, "tf32": 378e12, "float32": 51e12}),
    ("H200 NVL", {"bfloat16": 835e12, "tf32": 418e12, "float32": 60e12}),
    ("GH200", {"bfloat16": 989e12, "tf32": 495e12, "float32": 67e12}),
    ("H200", {"bfloat16": 989e12, "tf32": 495e12, "float32": 67e12}),
    ("H100", {"bfloat16": 989e12, "tf32": 495e12, "float32": 67e12}),  # SXM
    ("A100", {"bfloat16": 312e12, "tf32": 156e12, "float32": 19.5e12}),
    ("L40S", {"bfloat16": 362e12, "tf32": 183e12, "float32": 91.6e12}),
    ("L4", {"bfloat16": 121e12, "tf32": 60e12, "float32": 30.3e12}),
    # TPUs: float32 convolutions run as bfloat16 passes at the default precision.
    ("TPU v6", {"bfloat16": 918e12, "float32": 918e12}),
    ("TPU v5p", {"bfloat16": 459e12, "float32": 459e12}),
    ("TPU v5 lite", {"bfloat16": 197e12, "float32": 197e12}),
    ("TPU v5e", {"bfloat16": 197e12, "float32": 197e12}),
    ("TPU v4", {"bfloat16": 275e12, "float32": 275e12}),
)


def log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def _emit(result: Any) -> None:
  print(RESULT_TAG + json.dumps(result), flush=True)


def _rss_peak_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def reference_schedule() -> tuple[int, int]:
  """(steps, batch) of the reference Sprites schedule: the ``sprites`` preset, 1000 epochs."""
  from koopjax import configs
  cfg = configs.get_config("sprites")
  return cfg.steps, cfg.batch_size


def _config(spec: dict[str, Any]):
  """The benchmark's SKDConfig: the `--config` preset, `--set` overrides, batch and precision
  (and ``eig_path``, when given, as the config's ``eig_backend``)."""
  from koopjax import configs
  cfg = configs.get_config(spec.get("config", "sprites"))
  cfg = configs.apply_overrides(cfg, spec.get("overrides", []))
  changes = {"batch_size": spec["batch"], "precision": spec["precision"]}
  if "dropout" in spec:
    changes["dropout"] = spec["dropout"]
  if spec.get("eig_path"):
    changes["eig_backend"] = spec["eig_path"]
  return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------- worker: info


def _measure_matmul_peak(dtype_name: str, n: int, reps: int = 5) -> float:
  import jax
  import jax.numpy as jnp
  dtype = jnp.dtype(dtype_name)
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  b = jax.random.normal(jax.random.key(1), (n, n), dtype)
  f = jax.jit(lambda x, y: x @ y)
  jax.block_until_ready(f(a, b))
  best = float("inf")
  for _ in range(reps):
    start = time.perf_counter()
    jax.block_until_ready(f(a, b))
    best = min(best, time.perf_counter() - start)
  return 2.0 * n**3 / best


def worker_info(spec: dict[str, Any]) -> dict[str, Any]:
  import jax
  devices = jax.devices()
  d = devices[0]
  kind = getattr(d, "device_kind", d.platform)
  info = {"platform": d.platform, "device_kind": kind, "device_count": len(devices),
          "process_count": jax.process_count(), "python": platform.python_version(),
          "host_cpus": os.cpu_count(), "load_average": list(os.getloadavg())}
  for package in ("jax", "jaxlib", "flax", "optax", "numpy", "torch"):
    try:
      info[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      info[package] = None
  try:
    model = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
             if line.startswith("model name")]
    info["cpu_model"] = model[0] if model else platform.processor()
  except OSError:
    info["cpu_model"] = platform.processor()
  peak, source = None, None
  for key, values in PEAK_FLOPS:
    if key.lower() in kind.lower():
      peak, source = dict(values), f"data sheet ({key}, dense)"
      break
  if peak is None:
    if d.platform == "cpu":
      rate = _measure_matmul_peak("float32", spec.get("matmul_n", 2048))
      peak = {"float32": rate, "bfloat16": rate}
      source = "measured: best float32 2048x2048 matmul in JAX on this host (all cores)"
    else:
      peak = {"bfloat16": _measure_matmul_peak("bfloat16", 8192),
              "float32": _measure_matmul_peak("float32", 8192)}
      source = "measured: best 8192x8192 matmul in JAX (device not in the peak table)"
  try:
    import inspect
    import koopjax.nn
    first = inspect.getsource(koopjax.nn).strip().splitlines()[0]
    info["conv_layers"] = first[:120]
  except (ImportError, OSError, IndexError):
    info["conv_layers"] = None
  info["peak_flops"] = peak
  info["peak_source"] = source
  matmul_precision = jax.config.jax_default_matmul_precision
  info["float32_basis"] = ("tf32" if "tf32" in peak and matmul_precision in (None, "default",
                                                                            "tensorfloat32")
                           else "float32")
  return info


def _custom_calls(hlo_text: str) -> list[str]:
  import re
  return sorted(set(re.findall(r'custom_call_target="([^"]+)"', hlo_text)))


def worker_eig(spec: dict[str, Any]) -> dict[str, Any]:
  """Micro-benchmark: value and gradient of SKD's spectral loss of a k x k operator, jitted,
  with eigenvalues on the device (XLA) vs the host (`koopjax.eigvals`); results checked
  equal."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import koopjax as kj
  cfg = _config(spec)
  k, reps = cfg.k, spec.get("reps", 200)

  def loss(c, backend):
    return kj.skd_spectral_loss(c, n_static=cfg.n_static, static_mode=cfg.static_mode,
                                dynamic_mode=cfg.dynamic_mode,
                                dynamic_thresh=cfg.dynamic_thresh, ball_thresh=cfg.ball_thresh,
                                eigs_thresh=cfg.eigs_thresh, eig_backend=backend)[0]

  rng = np.random.default_rng(0)
  mats = [jnp.asarray(0.5 * np.eye(k) + rng.standard_normal((k, k)) / np.sqrt(4 * k),
                      jnp.float32) for _ in range(4)]
  out = {}
  for path in ("device", "host"):
    compiled = jax.jit(jax.value_and_grad(lambda c, path=path: loss(c, path))).lower(
        mats[0]).compile()
    values = [jax.device_get(compiled(m)) for m in mats]
    jax.block_until_ready(compiled(mats[0]))
    times = []
    for i in range(reps):
      start = time.perf_counter()
      jax.block_until_ready(compiled(mats[i % len(mats)]))
      times.append(time.perf_counter() - start)
    out[path] = {"median_s": float(np.median(times)), "min_s": float(np.min(times)),
                 "values": values, "custom_calls": _custom_calls(compiled.as_text())}
  worst_value = max(abs(float(a[0]) - float(b[0])) / max(abs(float(a[0])), 1e-12)
                    for a, b in zip(out["device"]["values"], out["host"]["values"]))
  worst_grad = max(float(np.linalg.norm(a[1] - b[1]) / max(np.linalg.norm(a[1]), 1e-12))
                   for a, b in zip(out["device"]["values"], out["host"]["values"]))
  for path in out:
    del out[path]["values"]
  return {"k": k, "reps": reps, "device": out["device"], "host": out["host"],
          "max_rel_diff_value": worst_value, "max_rel_diff_grad": worst_grad,
          "agree": bool(worst_value < 1e-4 and worst_grad < 1e-3)}


# ----------------------------------------------------------------------------- worker: jax step


def _device_peak_memory(devices) -> tuple[int | None, str]:
  peaks = []
  for d in devices:
    try:
      stats = d.memory_stats()
    except Exception:  # noqa: BLE001  (not implemented on some backends)
      stats = None
    if stats and "peak_bytes_in_use" in stats:
      peaks.append(int(stats["peak_bytes_in_use"]))
  if peaks:
    return max(peaks), "device peak_bytes_in_use (max over devices)"
  return _rss_peak_bytes(), "host process peak RSS"


def _jax_setup(cfg, devices: int):
  """(mesh, train state, a device-resident uint8 batch, the jitted SKD train step).

  The step is traced at its first call or `lower`, so a patch active then (the host
  eigenvalue path) takes effect.
  """
  from benchmarks import timing
  from koopjax import parallel
  from koopjax import train

  built = train.build(cfg, parallel.make_mesh(devices))
  batch = timing.synthetic_video_batch(cfg.batch_size, cfg.frames, cfg.image_size,
                                       cfg.channels, built.mesh, seed=1)
  return built.mesh, built.state, batch, built.step


def _torch_setup(cfg, compile: bool, channels_last: bool = True):
  """(device, PyTorch train step, a uint8 video batch on that device) for the same model."""
  import torch
  from benchmarks import torch_skd

  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.manual_seed(cfg.seed)
  model = torch_skd.TorchSKD(cfg).to(device)
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
  autocast = torch.bfloat16 if cfg.precision == "bfloat16" else None
  step = torch_skd.make_train_step(model, cfg, compile=compile, channels_last=channels_last,
                                   autocast_dtype=autocast)
  gen = torch.Generator().manual_seed(1)
  video = torch.randint(0, 256, (cfg.batch_size, cfg.frames, cfg.image_size, cfg.image_size,
                                 cfg.channels), generator=gen, dtype=torch.uint8).to(device)
  return device, step, video


def worker_jax(spec: dict[str, Any]) -> dict[str, Any]:
  import jax
  import numpy as np
  from koopjax import parallel
  from koopjax.data import loader as loader_lib
  from benchmarks import timing

  cfg = _config(spec)
  mesh, state, batch, train_step = _jax_setup(cfg, spec["devices"])
  n_calls = spec["warmup"] + spec["steps"]
  keys = list(jax.random.split(jax.random.key(cfg.seed + 1), n_calls + spec.get("e2e", 0)))
  keys = [jax.device_put(k, parallel.replicated(mesh)) for k in keys]

  start = time.perf_counter()
  lowered = train_step.lower(state, batch, keys[0])
  lower_s = time.perf_counter() - start
  compiled = lowered.compile()
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops_per_device = float(cost.get("flops", float("nan"))) if cost else float("nan")
  try:
    mem = compiled.memory_analysis()
    xla_mem = int(mem.argument_size_in_bytes + mem.output_size_in_bytes
                  + mem.temp_size_in_bytes - mem.alias_size_in_bytes)
  except Exception:  # noqa: BLE001
    xla_mem = None
  custom_calls = _custom_calls(compiled.as_text())

  calls = iter(range(n_calls))
  metrics = None

  def one_step():
    nonlocal state, metrics
    state, metrics = compiled(state, batch, keys[next(calls)])
    return state, metrics

  first = timing.time_calls(one_step, 1)[0]
  times = timing.time_calls(one_step, spec["steps"], warmup=spec["warmup"] - 1)
  losses = [float(metrics["loss"])]
  suffix = {None: "", "device": "[device-eig]", "host": "[host-eig]"}[spec.get("eig_path")]
  if jax.default_backend() == "cpu" and cfg.cpu_conv_library != "eigen":
    suffix += f"[{cfg.cpu_conv_library}-conv]"
  record = {"kind": "train_step", "impl": "koopjax" + suffix,
            "batch": cfg.batch_size, "devices": mesh.devices.size, "precision": cfg.precision,
            "warmup": spec["warmup"], "lower_s": lower_s, "compile_s": compile_s,
            "first_step_s": first, **timing.summarise(times),
            "flops_per_step": flops_per_device * mesh.devices.size,
            "flops_per_device": flops_per_device,
            "flops_source": "XLA cost_analysis of the compiled step (per device x devices)",
            "xla_memory_estimate_bytes": xla_mem, "custom_calls": custom_calls,
            "last_loss": losses[-1], "conv_impl": cfg.conv_impl}

  if spec.get("e2e"):
    # The training loop's pattern: host batches from an ArrayLoader staged on the devices by
    # a prefetch thread while the current step runs; no synchronisation until the end.
    rows = parallel.process_rows(cfg.batch_size, mesh)
    host = np.random.default_rng(0).integers(
        0, 256, (max(4 * cfg.batch_size, 256), cfg.frames, cfg.image_size, cfg.image_size,
                 cfg.channels), np.uint8)
    data = loader_lib.ArrayLoader({"video": host}, cfg.batch_size, seed=0)
    n = spec["e2e"]
    jax.block_until_ready(state)
    start = time.perf_counter()
    for i, b in loader_lib.prefetch(lambda s: parallel.to_global(data.batch(s, rows), mesh),
                                    0, n, depth=2):
      state, metrics = compiled(state, b, keys[n_calls + i])
    jax.block_until_ready((state, metrics))
    elapsed = time.perf_counter() - start
    record["e2e_steps"] = n
    record["e2e_seq_per_s"] = n * cfg.batch_size / elapsed

  peak, peak_kind = _device_peak_memory(mesh.devices.flat)
  record.update(peak_memory_bytes=peak, peak_memory_kind=peak_kind)
  return record


# ----------------------------------------------------------------------------- worker: torch


def worker_torch(spec: dict[str, Any]) -> dict[str, Any]:
  import torch

  cfg = _config(spec)
  channels_last = spec.get("channels_last", True)
  device, step, video = _torch_setup(cfg, spec["compile"], channels_last)
  sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

  def timed() -> float:
    start = time.perf_counter()
    loss = step(video)
    sync()
    timed.loss = loss
    return time.perf_counter() - start

  first = timed()
  for _ in range(spec["warmup"] - 1):
    timed()
  times = [timed() for _ in range(spec["steps"])]
  from benchmarks import timing  # numpy-only helpers (imports jax, no backend use)
  summary = timing.summarise(times)
  if device == "cuda":
    peak, peak_kind = torch.cuda.max_memory_allocated(), "torch.cuda.max_memory_allocated"
  else:
    peak, peak_kind = _rss_peak_bytes(), "host process peak RSS"
  return {"kind": "train_step", "impl": "torch-compile" if spec["compile"] else "torch-eager",
          "batch": cfg.batch_size, "devices": 1, "precision": cfg.precision,
          "warmup": spec["warmup"], "first_step_s": first,
          "compile_s": (first - summary["step_s_median"]) if spec["compile"] else None,
          **summary, "peak_memory_bytes": peak, "peak_memory_kind": peak_kind,
          "last_loss": float(timed.loss.item()), "torch_device": device,
          "torch_threads": torch.get_num_threads(), "channels_last": channels_last,
          "torch_version": torch.__version__}


def worker_interleaved(spec: dict[str, Any]) -> dict[str, Any]:
  """koopjax's step and PyTorch's eager step alternating in one process (ABBA order).

  Separate runs minutes apart see different loads on a shared host; alternating steps pair
  each koopjax step with a PyTorch step taken under the same load, so the median of the
  per-pair time ratios is a drift-free step-rate ratio.
  """
  import jax
  import numpy as np
  from koopjax import parallel

  cfg = _config(spec)
  mesh, state, batch, jax_step = _jax_setup(cfg, 1)
  key = jax.device_put(jax.random.key(cfg.seed + 1), parallel.replicated(mesh))
  _, torch_step, video = _torch_setup(cfg, compile=False)

  def run_jax():
    nonlocal state
    state, metrics = jax_step(state, batch, key)
    jax.block_until_ready(metrics)

  def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

  for _ in range(spec["warmup"]):
    run_jax()
    torch_step(video)
  t_jax, t_torch = [], []
  for i in range(spec["steps"]):
    if i % 2:
      t_torch.append(timed(lambda: torch_step(video)))
      t_jax.append(timed(run_jax))
    else:
      t_jax.append(timed(run_jax))
      t_torch.append(timed(lambda: torch_step(video)))
  ratios = np.asarray(t_torch) / np.asarray(t_jax)
  return {"kind": "interleaved_ratio", "impl": "koopjax vs torch-eager, interleaved",
          "batch": cfg.batch_size, "devices": 1, "precision": cfg.precision,
          "pairs": spec["steps"], "warmup": spec["warmup"],
          "koopjax_step_s": t_jax, "torch_step_s": t_torch,
          "koopjax_step_s_median": float(np.median(t_jax)),
          "torch_step_s_median": float(np.median(t_torch)),
          "step_s_median": float(np.median(t_jax)), "seq_per_s": None,
          "koopjax_over_torch_median": float(np.median(ratios)),
          "koopjax_over_torch_p25": float(np.percentile(ratios, 25)),
          "koopjax_over_torch_p75": float(np.percentile(ratios, 75))}


def worker_parity(spec: dict[str, Any]) -> dict[str, Any]:
  """koopjax (JAX on CPU, highest matmul precision) vs PyTorch (TF32 off) loss on the same
  weights and uint8 batch, train-mode BatchNorm, dropout 0."""
  import jax
  import numpy as np
  import torch
  from benchmarks import torch_skd
  from koopjax.models import skd

  cfg = _config({**spec, "dropout": 0.0, "precision": "float32"})
  variables = skd.init(jax.random.key(cfg.seed), cfg)
  video = np.random.default_rng(3).integers(
      0, 256, (cfg.batch_size, cfg.frames, cfg.image_size, cfg.image_size, cfg.channels),
      np.uint8)
  with jax.default_matmul_precision("highest"):
    loss, (parts, _) = jax.jit(lambda v, b: skd.loss_fn(
        v["params"], {"batch_stats": v["batch_stats"]}, b, jax.random.key(0), cfg))(
            variables, {"video": video})
  loss, parts = float(loss), {k: float(v) for k, v in jax.device_get(parts).items()}

  device = "cuda" if torch.cuda.is_available() else "cpu"
  torch.backends.cudnn.allow_tf32 = False
  torch.backends.cuda.matmul.allow_tf32 = False
  flipped = torch_skd.upconv_kernel_is_flipped()
  model = torch_skd.TorchSKD(cfg)
  torch_skd.load_koopjax_variables(model, jax.device_get(variables), flipped)
  model = model.to(device).train()
  with torch.no_grad():
    t_loss, t_parts = torch_skd.loss_fn(model, torch.from_numpy(video).to(device), cfg)
  t_loss = float(t_loss.item())
  rel = abs(t_loss - loss) / abs(loss)
  part_rel = {k: abs(float(t_parts[k].item()) - v) / max(abs(v), 1e-12) for k, v in parts.items()}
  return {"batch": cfg.batch_size, "koopjax_loss": loss, "torch_loss": t_loss,
          "rel_diff": rel, "parts_rel_diff": part_rel, "torch_device": device,
          "upconv_kernel_flipped": flipped, "ok": bool(rel < 1e-4)}


# ----------------------------------------------------------------------------- worker: input


def worker_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
  """Rate of Sprites (or the synthetic fallback) -> ArrayLoader -> to_global -> device arrays."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from koopjax import parallel
  from koopjax.data import loader as loader_lib

  source, prepare_s, load_s = None, None, None
  data_dir = spec.get("data_dir")
  if data_dir:
    from koopjax.data import sprites
    start = time.perf_counter()
    try:
      arrays = sprites.load(data_dir, "train")
      source = f"sprites train ({data_dir})"
    except FileNotFoundError:
      manual = spec.get("manual_dir") or DEFAULT_SPRITE_SHEETS
      if manual and pathlib.Path(manual).is_dir():
        log(f"[pipeline] building Sprites into {data_dir} from {manual} ...")
        sprites.prepare(manual, data_dir)
        prepare_s = time.perf_counter() - start
        start = time.perf_counter()
        arrays = sprites.load(data_dir, "train")
        source = f"sprites train ({data_dir}, built now)"
      else:
        arrays = None
        source_note = f"no Sprites in {data_dir} and no sprite sheets (--manual-dir) to build it"
    load_s = time.perf_counter() - start
  if source is None:
    from koopjax.data import synthetic
    start = time.perf_counter()
    size, frames = spec.get("image_size", 64), spec.get("frames", 8)
    arrays = synthetic.make_dataset("train", image_size=size, frames=frames)
    load_s = time.perf_counter() - start
    why = source_note if data_dir else "no --data-dir given"
    source = f"SYNTHETIC fallback ({size}x{size}, T={frames}; {why})"
  video = arrays["video"]
  out = {"kind": "input_pipeline", "source": source, "dataset_size": int(len(video)),
         "prepare_s": prepare_s, "load_s": load_s, "points": []}
  min_time = spec.get("min_time", 2.0)
  for devices in spec["devices"]:
    mesh = parallel.make_mesh(devices)
    n_dev = mesh.devices.size
    data_on_device = None
    for batch in spec["batches"]:
      if batch % n_dev or batch > len(video):
        continue
      rows = parallel.process_rows(batch, mesh)
      data = loader_lib.ArrayLoader({"video": video}, batch, seed=0)

      def make(step, rows=rows, data=data, mesh=mesh):
        return parallel.to_global(data.batch(step, rows), mesh)

      def rate(run) -> tuple[float, int]:
        n, start = 0, time.perf_counter()
        while True:
          n = run(n)
          elapsed = time.perf_counter() - start
          if elapsed >= min_time and n >= 10:
            return n * batch / elapsed, n

      def run_sync(n):
        for _ in range(5):
          jax.block_until_ready(make(n))
          n += 1
        return n

      def run_prefetch(n):
        last = None
        for _, b in loader_lib.prefetch(make, n, n + 20, depth=2):
          last = b
        jax.block_until_ready(last)
        return n + 20

      jax.block_until_ready(make(0))
      sync_rate, n_sync = rate(run_sync)
      pre_rate, _ = rate(run_prefetch)

      # Alternative: the whole uint8 dataset resident on the devices, batches gathered there.
      if data_on_device is None:
        data_on_device = jax.device_put(video, parallel.replicated(mesh))
      gather = jax.jit(lambda d, i: jnp.take(d, i, axis=0),
                       out_shardings=parallel.batch_sharding(mesh))

      def run_device(n, data=data, gather=gather, data_on_device=data_on_device):
        for _ in range(20):
          idx = jax.device_put(data.indices(n).astype(np.int32), parallel.batch_sharding(mesh))
          last = gather(data_on_device, idx)
          n += 1
        jax.block_until_ready(last)
        return n

      jax.block_until_ready(run_device(0))
      dev_rate, _ = rate(run_device)
      out["points"].append({"batch": batch, "devices": n_dev, "seq_per_s": sync_rate,
                            "seq_per_s_prefetch": pre_rate, "seq_per_s_device_resident": dev_rate,
                            "batches_timed": n_sync})
      log(f"[pipeline] batch {batch} devices {n_dev}: {sync_rate:,.0f} seq/s "
          f"(prefetch thread {pre_rate:,.0f}; device-resident gather {dev_rate:,.0f})")
    del data_on_device
  return out


WORKERS = {"info": worker_info, "eig": worker_eig, "jax": worker_jax, "torch": worker_torch,
           "interleaved": worker_interleaved, "parity": worker_parity,
           "pipeline": worker_pipeline}


# ----------------------------------------------------------------------------- orchestration


def run_worker(kind: str, spec: dict[str, Any], env_extra: dict[str, str] | None = None,
               timeout: float | None = None) -> dict[str, Any] | None:
  env = dict(os.environ)
  env.update(env_extra or {})
  pythonpath = env.get("PYTHONPATH", "")
  env["PYTHONPATH"] = str(ROOT) + (os.pathsep + pythonpath if pythonpath else "")
  cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker", kind,
         "--worker-spec", json.dumps(spec)]
  try:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, env=env, text=True, timeout=timeout,
                          check=False)
  except subprocess.TimeoutExpired:
    log(f"[{kind}] timed out after {timeout} s: {spec}")
    return None
  for line in proc.stdout.splitlines():
    if line.startswith(RESULT_TAG):
      return json.loads(line[len(RESULT_TAG):])
  log(f"[{kind}] failed (exit {proc.returncode}) for {spec}; stdout tail:\n"
      + "\n".join(proc.stdout.splitlines()[-20:]))
  return None


class TimeBudget:
  """Wall-clock budget of a whole benchmark run (``--budget-s``; 0 or less: none).

  Made for lent accelerators with a fixed allowance: a measurement starts only while the
  time left is at least the longest measurement so far (a rough forecast of the next one),
  and its subprocess is killed when the budget runs out, so the run ends inside its budget
  with its report and JSON written instead of being cut off with nothing.

  Args:
    seconds: the budget; <= 0 means unlimited.
    clock: monotonic clock in seconds (replaceable in tests).
  """

  def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter):
    self.seconds = seconds
    self.clock = clock
    self.started = clock()
    self.longest = 0.0
    self.skipped: list[str] = []

  def left(self) -> float | None:
    """Seconds left, or None without a budget."""
    if self.seconds <= 0:
      return None
    return self.seconds - (self.clock() - self.started)

  def allows(self, what: str) -> bool:
    """Whether a measurement named ``what`` may start; records it as skipped if not."""
    left = self.left()
    if left is None or (left > 0 and left >= self.longest):
      return True
    self.skipped.append(what)
    log(f"[budget] skipping {what}: {max(left, 0):.0f} s left of {self.seconds:.0f} s, the "
        f"longest measurement so far took {self.longest:.0f} s")
    return False

  def run(self, what: str, kind: str, spec: dict[str, Any],
          env_extra: dict[str, str] | None = None) -> dict[str, Any] | None:
    """`run_worker` if the budget `allows` it (with the time left as timeout), else None."""
    if not self.allows(what):
      return None
    start = self.clock()
    left = self.left()
    result = run_worker(kind, spec, env_extra, timeout=None if left is None else max(left, 1.0))
    self.longest = max(self.longest, self.clock() - start)
    if result is None and left is not None and self.left() <= 0:
      self.skipped.append(f"{what} (stopped when the budget ran out)")
    return result


def _write_json(path: str | None, records: list[dict[str, Any]]) -> None:
  """Writes ``records`` to ``path`` (if given) as a JSON list."""
  if path:
    pathlib.Path(path).write_text(json.dumps(records, indent=2, default=str) + "\n")


def _fmt_bytes(n: int | None) -> str:
  if n is None:
    return "-"
  return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _fmt_rate(x: float | None) -> str:
  if x is None:
    return "-"
  return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _env_note(info: dict[str, Any]) -> dict[str, Any]:
  keys = ("platform", "device_kind", "device_count", "jax", "jaxlib", "flax", "optax", "torch",
          "cpu_model", "host_cpus")
  return {k: info.get(k) for k in keys}


def _points(args, info) -> list[dict[str, Any]]:
  n_all = info["device_count"]
  single = args.batch or args.devices or args.precision
  if single:
    batches = args.batch or [REFERENCE["batch"]]
    devices = args.devices or [REFERENCE["devices"]]
    precisions = args.precision or [REFERENCE["precision"]]
    combos = [(b, d, p) for b in batches for d in devices for p in precisions]
  elif args.sweep_resolved == "full":
    devs, d = [], 1
    while d < n_all:
      devs.append(d)
      d *= 2
    devs.append(n_all)
    combos = [(b, d, p) for p in PRECISIONS for d in devs for b in FULL_BATCHES]
    # the reference point first: under --budget-s it is the one that must be measured
    reference = (REFERENCE["batch"], REFERENCE["devices"], REFERENCE["precision"])
    combos.sort(key=lambda combo: combo != reference)
  else:  # small: the reference point and batch 8 in both precisions
    combos = [(32, 1, "float32"), (8, 1, "float32"), (8, 1, "bfloat16")]
  points = []
  for b, d, p in combos:
    d = n_all if d == 0 else d
    if d > n_all:
      log(f"skipping devices={d}: only {n_all} available")
      continue
    if b % d:
      log(f"skipping batch {b} on {d} devices (not divisible)")
      continue
    points.append({"batch": b, "devices": d, "precision": p})
  return points


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--sweep", choices=("auto", "small", "full"), default="auto",
                      help="auto: small on CPU, full on accelerators.")
  parser.add_argument("--batch", type=int, nargs="+", help="global batch size(s)")
  parser.add_argument("--devices", type=int, nargs="+", help="device count(s); 0 = all")
  parser.add_argument("--precision", choices=PRECISIONS, nargs="+")
  parser.add_argument("--steps", type=int, help="timed steps per point (default 50; 3 on CPU)")
  parser.add_argument("--warmup", type=int, help="untimed steps first (default 5; 1 on CPU)")
  parser.add_argument("--config", default="sprites", help="koopjax config preset")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="config override (repeatable)")
  parser.add_argument("--torch", choices=("auto", "reference", "all", "none"), default="auto",
                      help="PyTorch points: auto = reference on CPU, all single-device points "
                      "on accelerators.")
  parser.add_argument("--no-torch-compile", action="store_true")
  parser.add_argument("--torch-warm-cache", action="store_true",
                      help="let torch.compile reuse its on-disk caches (default: a fresh cache "
                      "per run, so its compile time is cold like JAX's)")
  parser.add_argument("--no-parity", action="store_true")
  parser.add_argument("--eig-step", choices=("auto", "yes", "no"), default="auto",
                      help="also time the full step with the host eigenvalue path "
                      "(auto: on accelerators)")
  parser.add_argument("--e2e", choices=("auto", "yes", "no"), default="auto",
                      help="also time the training-loop pattern (prefetching loader, no "
                      "per-step sync) at the reference point (auto: on accelerators)")
  parser.add_argument("--data-dir", help="TFDS data dir with Sprites (built there if missing)")
  parser.add_argument("--manual-dir", help="LPC sprite sheets to build Sprites from "
                      "(default: ../shared/data/lpc-sprites beside the checkout, if present)")
  parser.add_argument("--host-devices", type=int, default=0,
                      help="CPU only: split the host into N fake XLA devices")
  parser.add_argument("--json", help="write the records (a JSON list) to this file; "
                      "rewritten after every measurement, so a killed run keeps what it measured")
  parser.add_argument("--budget-s", type=float, default=0.0,
                      help="wall-clock budget in seconds (0: none): start no measurement the "
                      "time left cannot fit, kill one that outlasts it, and still report")
  parser.add_argument("--worker", help=argparse.SUPPRESS)
  parser.add_argument("--worker-spec", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)

  if args.worker:
    _emit(WORKERS[args.worker](json.loads(args.worker_spec)))
    return 0

  jax_env = {}
  if args.host_devices:
    jax_env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_"
                            f"device_count={args.host_devices}").strip()
  started = time.perf_counter()
  budget = TimeBudget(args.budget_s)
  info = run_worker("info", {}, jax_env)
  if info is None:
    log("could not start JAX")
    return 1
  on_cpu = info["platform"] == "cpu"
  args.sweep_resolved = args.sweep if args.sweep != "auto" else ("small" if on_cpu else "full")
  steps = args.steps or (3 if on_cpu else 50)
  warmup = max(1, args.warmup if args.warmup is not None else (1 if on_cpu else 5))
  base = {"config": args.config, "overrides": args.overrides}
  points = _points(args, info)
  env = _env_note(info)
  notes = []
  if steps < 50:
    notes.append(f"{steps} timed steps per point (< 50): a CPU-sized run; the >= 50-step "
                 "requirement is met with --steps 50 (the default on accelerators).")
  if on_cpu:
    notes.append(f"CPU host: {info['host_cpus']} cores ({info.get('cpu_model')}), load average "
                 f"at start {', '.join(f'{x:.1f}' for x in info['load_average'])}; other "
                 "processes sharing the cores slow every number here. Peak memory is the "
                 "process's peak RSS, not device memory.")
  if args.host_devices:
    notes.append(f"{args.host_devices} fake XLA CPU devices share the host's cores.")
  log(f"device: {info['device_kind']} x {info['device_count']} ({info['platform']}); "
      f"{len(points)} koopjax point(s), {steps} timed steps after {warmup} warm-up")

  records: list[dict[str, Any]] = []

  def keep(record: dict[str, Any]) -> None:
    """Adds a measurement and rewrites --json, so a killed run keeps what it measured."""
    records.append(record)
    _write_json(args.json, records)

  # 1. koopjax train step.
  # The anchor point (e2e loop, full-step eigenvalue paths): the reference point when it is
  # selected, else the first selected point.
  anchor = next((p for p in points if p == REFERENCE), points[0] if points else REFERENCE)
  e2e = args.e2e == "yes" or (args.e2e == "auto" and not on_cpu)
  for point in points:
    spec = {**base, **point, "steps": steps, "warmup": warmup}
    if e2e and point == anchor:
      spec["e2e"] = steps
    what = f"koopjax batch {point['batch']} devices {point['devices']} {point['precision']}"
    log(f"[{what}] ...")
    rec = budget.run(what, "jax", spec, jax_env)
    if rec:
      keep(rec)
      log(f"[koopjax]   {rec['step_s_median'] * 1e3:.1f} ms/step, compile {rec['compile_s']:.1f} s")

  # On CPU, the same anchor point with XLA's default convolution library (YNNPACK) beside
  # koopjax's default (XLA's own convolutions; `cpu_conv_library`).
  if on_cpu and not any("cpu_conv_library" in o for o in args.overrides):
    spec = {**base, **anchor, "steps": steps, "warmup": warmup,
            "overrides": [*args.overrides, "cpu_conv_library=ynnpack"]}
    log(f"[koopjax] batch {anchor['batch']} with YNNPACK convolutions (XLA's default) ...")
    rec = budget.run("koopjax with YNNPACK convolutions", "jax", spec, jax_env)
    if rec:
      keep(rec)
      log(f"[koopjax]   {rec['step_s_median'] * 1e3:.1f} ms/step")

  # 2. PyTorch (before the eigenvalue paths: under --budget-s the ratio matters most).
  have_torch = importlib.util.find_spec("torch") is not None
  torch_env = {"JAX_PLATFORMS": "cpu"}  # jax is only used on CPU there (parity reference)
  parity = None
  torch_mode = args.torch if args.torch != "auto" else ("reference" if on_cpu else "all")
  if not have_torch:
    notes.append("PyTorch is not installed (optional extra: pip install 'koopjax[torch]'); the "
                 "PyTorch comparison and the parity check were skipped.")
    log("PyTorch not installed: skipping the PyTorch comparison.")
  elif torch_mode != "none":
    if not args.no_parity:
      log("[parity] koopjax vs PyTorch loss on identical weights and input ...")
      parity = budget.run("PyTorch parity", "parity",
                          {**base, "batch": 32 if not args.batch else args.batch[0],
                           "precision": "float32"}, torch_env)
    torch_points = sorted({(p["batch"], p["precision"]) for p in points if p["devices"] == 1},
                          key=lambda x: (x[1] != "float32", x[0]))
    if torch_mode == "reference":  # the reference point, else the first single-device one
      ref = (REFERENCE["batch"], REFERENCE["precision"])
      torch_points = [ref] if ref in torch_points or not torch_points else torch_points[:1]
    modes = [False] if args.no_torch_compile else [False, True]
    for batch, precision in torch_points:
      for compiled in modes:
        name = "torch.compile" if compiled else "eager"
        log(f"[torch] {name} batch {batch} {precision} ...")
        env = dict(torch_env)
        if compiled and not args.torch_warm_cache:
          cache = tempfile.mkdtemp(prefix="koopjax-bench-inductor-")
          env.update(TORCHINDUCTOR_CACHE_DIR=cache, TRITON_CACHE_DIR=os.path.join(cache, "triton"))
        rec = budget.run(f"PyTorch {name} batch {batch} {precision}", "torch",
                         {**base, "batch": batch, "precision": precision, "steps": steps,
                          "warmup": warmup, "compile": compiled}, env)
        if compiled and not args.torch_warm_cache:
          shutil.rmtree(cache, ignore_errors=True)
        if rec:
          keep(rec)
          if rec["torch_device"] != "cuda" and not on_cpu:
            notes.append("PyTorch ran on the CPU (no CUDA build installed): its rows are not "
                         "comparable with the accelerator's.")
          log(f"[torch]   {rec['step_s_median'] * 1e3:.1f} ms/step")
    if on_cpu and (REFERENCE["batch"], "float32") in torch_points:
      log(f"[interleaved] koopjax and PyTorch eager steps alternating, batch "
          f"{REFERENCE['batch']} float32 ...")
      interleaved = budget.run("interleaved koopjax/PyTorch", "interleaved",
                               {**base, "batch": REFERENCE["batch"], "precision": "float32",
                                "steps": steps, "warmup": warmup}, torch_env)
      if interleaved:
        keep(interleaved)

  # 3. eigenvalue path.
  log("[eig] eigenvalues on the device (XLA) vs the host (NumPy callback) ...")
  eig = budget.run("eigenvalue path", "eig", {**base, "batch": 32, "precision": "float32"},
                   jax_env)
  eig_steps = []
  if args.eig_step == "yes" or (args.eig_step == "auto" and not on_cpu):
    measured = next((r for r in records if r["impl"] == "koopjax" and all(
        r[key] == anchor[key] for key in ("batch", "devices", "precision"))), None)
    for path in ("device", "host"):
      if path == "device" and measured is not None:
        eig_steps.append({**measured, "kind": "eig_path_step", "impl": "koopjax[device-eig]"})
        continue
      spec = {**base, **anchor, "steps": steps, "warmup": warmup, "eig_path": path}
      log(f"[eig] full step at batch {anchor['batch']}, eigenvalues on {path} ...")
      rec = budget.run(f"full step with eigenvalues on {path}", "jax", spec, jax_env)
      if rec:
        rec["kind"] = "eig_path_step"
        eig_steps.append(rec)

  # 4. input pipeline.
  batches = sorted({p["batch"] for p in points}) or [REFERENCE["batch"]]
  pipe_devices = sorted({p["devices"] for p in points}) or [1]
  log("[pipeline] input pipeline rate ...")
  cfg = _config({**base, **REFERENCE})
  pipeline = budget.run("input pipeline", "pipeline",
                        {"data_dir": args.data_dir, "manual_dir": args.manual_dir,
                         "batches": batches, "devices": pipe_devices,
                         "image_size": cfg.image_size, "frames": cfg.frames}, jax_env)

  # ------------------------------------------------------------------ derived numbers, report
  peak_table = info["peak_flops"]
  by_key = {(r["batch"], r["devices"], r["precision"]): r for r in records
            if r["impl"] == "koopjax"}
  for r in [r for r in records if r["kind"] != "interleaved_ratio"] + eig_steps:
    r["seq_per_s"] = r["batch"] / r["step_s_median"]
    r["frames_per_s"] = r["seq_per_s"] * cfg.frames
    jr = by_key.get((r["batch"], r["devices"], r["precision"]))
    flops = r.get("flops_per_step") or (jr or {}).get("flops_per_step")
    if r.get("flops_per_step") is None and flops:
      r["flops_per_step"] = flops
      r["flops_source"] = "XLA count of the koopjax step at the same point"
    basis = "bfloat16" if r["precision"] == "bfloat16" else info["float32_basis"]
    device_peak = peak_table.get(basis) or peak_table.get("float32")
    if r["impl"].startswith("torch") and r.get("torch_device") == "cpu" and not on_cpu:
      device_peak = None
    r["peak_flops_basis"] = f"{basis}: {info['peak_source']}"
    if flops and device_peak:
      r["achieved_flops_per_s"] = flops / r["step_s_median"]
      r["fraction_of_peak"] = r["achieved_flops_per_s"] / (device_peak * r["devices"])
    if jr and (r["impl"].startswith("torch") or r["impl"].endswith("-conv]")):
      r["koopjax_over_this"] = jr["seq_per_s"] / r["seq_per_s"]
    r["env"] = env

  if pipeline:
    for pt in pipeline["points"]:
      consumers = [r for r in records if r["impl"] == "koopjax" and r["batch"] == pt["batch"]
                   and r["devices"] == pt["devices"]]
      need = max((r["seq_per_s"] for r in consumers), default=None)
      pt["train_step_seq_per_s"] = need
      pt["ratio"] = pt["seq_per_s"] / need if need else None
      pt["ok"] = None if need is None else bool(pt["ratio"] >= PIPELINE_FACTOR)
      records.append({"kind": "input_pipeline", "impl": "ArrayLoader+to_global",
                      "batch": pt["batch"], "devices": pt["devices"], "precision": "uint8",
                      "step_s_median": pt["batch"] / pt["seq_per_s"],
                      "seq_per_s": pt["seq_per_s"], "source": pipeline["source"], **pt,
                      "env": env})
  if eig:
    for path in ("device", "host"):
      records.append({"kind": "eig_path", "impl": f"eigvals-{path}", "batch": None,
                      "devices": 1, "precision": "float32",
                      "step_s_median": eig[path]["median_s"], "seq_per_s": None,
                      "what": f"jit(value_and_grad(skd_spectral_loss)) of a {eig['k']}x"
                              f"{eig['k']} operator", **eig[path],
                      "agree": eig["agree"], "env": env})
  for r in eig_steps:
    records.append(r)

  steps_ref, batch_ref = reference_schedule()
  if args.config == "sprites" and not args.overrides:
    for r in records:
      if r.get("e2e_seq_per_s") and r["batch"] == batch_ref:
        notes.append(f"The reference Sprites schedule (preset `sprites`: {steps_ref:,} steps of "
                     f"batch {batch_ref}) at the training-loop rate of {r['devices']} device(s),"
                     f" {r['precision']}: {steps_ref * batch_ref / r['e2e_seq_per_s'] / 60:.1f} "
                     "min of training.")
  if budget.skipped:
    notes.append(f"Time budget ({args.budget_s:.0f} s, --budget-s) ran out; not measured: "
                 + "; ".join(budget.skipped) + ".")
  print(_report(info, records, eig, eig_steps, parity, pipeline, notes, steps, warmup,
                time.perf_counter() - started))
  _write_json(args.json, records)
  if args.json:
    log(f"wrote {len(records)} records to {args.json}")
  return 0


def _opt(value, fmt: str) -> str:
  return "-" if value is None else format(value, fmt)


def _row(r: dict[str, Any]) -> list[str]:
  flops = r.get("flops_per_step")
  ms = (f"{r['step_s_median'] * 1e3:.1f} [{r['step_s_min'] * 1e3:.0f}-"
        f"{r['step_s_max'] * 1e3:.0f}]")
  achieved = r.get("achieved_flops_per_s")
  fraction = r.get("fraction_of_peak")
  ratio = r.get("koopjax_over_this")
  return [r["impl"], str(r["batch"]), str(r["devices"]), r["precision"],
          _opt(r.get("compile_s"), ".1f"), ms, _fmt_rate(r["seq_per_s"]),
          _fmt_rate(r["frames_per_s"]), _fmt_bytes(r.get("peak_memory_bytes")),
          _opt(None if not flops else flops / 1e9, ".1f"),
          _opt(None if achieved is None else achieved / 1e12, ".3g"),
          _opt(None if fraction is None else 100 * fraction, ".1f"),
          "-" if ratio is None else f"{ratio:.2f}x"]


def _report(info, records, eig, eig_steps, parity, pipeline, notes, steps, warmup, wall) -> str:
  lines = [f"# SKD train step throughput ({info['device_kind']} x {info['device_count']}, "
           f"{info['platform']})", ""]
  lines.append(f"jax {info['jax']}, jaxlib {info['jaxlib']}, flax {info['flax']}, optax "
               f"{info['optax']}, numpy {info['numpy']}, torch {info['torch'] or 'not installed'}"
               f", python {info['python']}; host: {info.get('cpu_model')} ({info['host_cpus']} "
               f"CPUs). Peak FLOP/s: {info['peak_source']}: "
               + ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in info["peak_flops"].items())
               + ".")
  lines.append(f"Step times: median [min-max] of {steps} steps after {warmup} warm-up, each "
               "synchronised.")
  lines.append("")
  lines.append("| impl | batch | dev | precision | compile s | step ms median [min-max] | seq/s "
               "| frames/s | peak mem | GFLOP/step | achieved TFLOP/s | % peak | koopjax/this |")
  lines.append("|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
  for r in [r for r in records if r["kind"] == "train_step"]:
    lines.append("| " + " | ".join(_row(r)) + " |")
  lines.append("")
  kinds = {r.get("peak_memory_kind") for r in records if r.get("peak_memory_kind")}
  if kinds:
    lines.append("Peak memory: " + "; ".join(sorted(kinds)) + ". GFLOP/step: XLA cost analysis "
                 "of the koopjax step (PyTorch rows: the same model's count at that point). "
                 "torch.compile's compile s = first step - median step.")
  if info.get("conv_layers"):
    lines.append(f"koopjax.nn (conv layers) begins: `{info['conv_layers']}`")
  ratios = [r for r in records if r.get("koopjax_over_this") is not None]
  for r in ratios:
    lines.append(f"- koopjax / {r['impl']} step rate at batch {r['batch']} {r['precision']}: "
                 f"{r['koopjax_over_this']:.2f}x ({'koopjax' if r['koopjax_over_this'] > 1 else r['impl']} faster)")
  for r in [r for r in records if r["kind"] == "interleaved_ratio"]:
    lines.append(f"- Interleaved in one process ({r['pairs']} koopjax/PyTorch-eager step pairs in "
                 f"ABBA order, batch {r['batch']} {r['precision']}; drift-free): koopjax "
                 f"{r['koopjax_step_s_median'] * 1e3:.0f} ms, torch-eager "
                 f"{r['torch_step_s_median'] * 1e3:.0f} ms median; koopjax/torch-eager step rate "
                 f"{r['koopjax_over_torch_median']:.2f}x (median of per-pair ratios; quartiles "
                 f"{r['koopjax_over_torch_p25']:.2f}-{r['koopjax_over_torch_p75']:.2f}).")
  e2e = [r for r in records if r.get("e2e_seq_per_s") and r["kind"] == "train_step"]
  for r in e2e:
    lines.append(f"- Training-loop pattern (prefetching ArrayLoader, no per-step sync) at batch "
                 f"{r['batch']}: {_fmt_rate(r['e2e_seq_per_s'])} seq/s vs "
                 f"{_fmt_rate(r['seq_per_s'])} seq/s for the synchronised step.")
  if parity:
    lines.append(f"- Parity (batch {parity['batch']}, dropout 0, train-mode BN, torch on "
                 f"{parity['torch_device']}): koopjax loss {parity['koopjax_loss']:.7g}, PyTorch "
                 f"{parity['torch_loss']:.7g}, relative difference {parity['rel_diff']:.1e} -> "
                 f"{'OK' if parity['ok'] else 'MISMATCH'} (< 1e-4).")
  if eig:
    d, h = eig["device"], eig["host"]
    faster = "on-device" if d["median_s"] <= h["median_s"] else "host callback"
    lines.append(f"- Eigenvalue path (jit(value_and_grad) of the spectral loss, {eig['k']}x"
                 f"{eig['k']}, median of {eig['reps']}): eig_backend=device "
                 f"{d['median_s'] * 1e6:.0f} us [{', '.join(d['custom_calls']) or 'no custom calls'}]"
                 f" vs eig_backend=host {h['median_s'] * 1e6:.0f} us; results agree: "
                 f"{eig['agree']} (value {eig['max_rel_diff_value']:.1e}, gradient "
                 f"{eig['max_rel_diff_grad']:.1e}); faster: {faster}.")
  for r in eig_steps:
    lines.append(f"  - full step at batch {r['batch']}, {r['devices']} device(s), "
                 f"{r['precision']} with {r['impl']}: {r['step_s_median'] * 1e3:.2f} ms median "
                 f"[{r['step_s_min'] * 1e3:.2f}-{r['step_s_max'] * 1e3:.2f}].")
  if len(eig_steps) == 2:
    d, h = eig_steps
    lines.append(f"  - full step host/device time ratio: "
                 f"{h['step_s_median'] / d['step_s_median']:.3f} (< 1: the host path is faster).")
  if pipeline:
    lines.append(f"- Input pipeline ({pipeline['source']}; {pipeline['dataset_size']} sequences, "
                 f"load {pipeline['load_s']:.1f} s"
                 + (f", built in {pipeline['prepare_s']:.0f} s" if pipeline["prepare_s"] else "")
                 + "):")
    for pt in pipeline["points"]:
      verdict = ("-" if pt["ok"] is None else
                 f"{pt['ratio']:.0f}x the train step's {_fmt_rate(pt['train_step_seq_per_s'])} "
                 f"seq/s -> {'OK' if pt['ok'] else 'BELOW'} (>= {PIPELINE_FACTOR:.0f}x)")
      lines.append(f"  - batch {pt['batch']}, {pt['devices']} device(s): "
                   f"{_fmt_rate(pt['seq_per_s'])} seq/s ArrayLoader -> to_global (with prefetch "
                   f"thread {_fmt_rate(pt['seq_per_s_prefetch'])}; device-resident dataset "
                   f"gather {_fmt_rate(pt['seq_per_s_device_resident'])}); {verdict}")
  for note in notes:
    lines.append(f"- Note: {note}")
  lines.append(f"- Benchmark wall time: {wall / 60:.1f} min.")
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
