"""Per-layer timings of the SKD convolution stages, impl "plain" vs "fast", on the default device.

For each encoder `down_conv` (64x64x3->32, 32x32x32->64, 16x16x64->128, 8x8x128->256),
decoder `up_conv` (4x4x256->128, 8x8x128->64, 16x16x64->32, 32x32x32->3) and training-mode
BatchNorm + LeakyReLU (32x32x32, 16x16x64, 8x8x128, 4x4x256; plain: flax.linen.BatchNorm
then leaky_relu, fast: `koopjax.nn.BatchNormLeakyReLU`) at N frames (default 256 = batch 32 x
8 frames), times three jitted passes: the forward pass, the gradient w.r.t. the input and the
gradient w.r.t. the kernel (BatchNorm: scale and bias) (each a VJP with a given cotangent; no
conv bias). Each time is the median of ``--repeats`` runs after one warm-up run, with
`block_until_ready`; the passes of both impls are run round-robin so that load changes on a
shared machine hit both alike. Prints a markdown table; ``--json FILE`` writes the records.
Compiled like koopjax's train step: on CPU, convolutions run with XLA's own (Eigen) kernels;
``--cpu-conv-library ynnpack`` gives XLA's default (YNNPACK) for comparison.

  python benchmarks/conv_layers.py [--frames 256] [--repeats 5] [--cpu-conv-library eigen]
                                   [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from koopjax import parallel  # noqa: E402
from koopjax.configs import CPU_CONV_LIBRARIES  # noqa: E402
from koopjax.nn.conv import down_conv  # noqa: E402
from koopjax.nn.conv import up_conv  # noqa: E402
from koopjax.nn.norm import batch_norm_leaky_relu  # noqa: E402
from koopjax.train.step import cpu_compiler_options  # noqa: E402

# (kind, H, W, C, F) of the input; SKD encoder then decoder.
LAYERS = (
    ("down", 64, 64, 3, 32),
    ("down", 32, 32, 32, 64),
    ("down", 16, 16, 64, 128),
    ("down", 8, 8, 128, 256),
    ("up", 4, 4, 256, 128),
    ("up", 8, 8, 128, 64),
    ("up", 16, 16, 64, 32),
    ("up", 32, 32, 32, 3),
    ("bn", 32, 32, 32, 32),
    ("bn", 16, 16, 64, 64),
    ("bn", 8, 8, 128, 128),
    ("bn", 4, 4, 256, 256),
)
IMPLS = ("plain", "fast")
PASSES = ("fwd", "dx", "dw")


def bn_leaky_relu(x: jax.Array, scale_bias: jax.Array, impl: str) -> jax.Array:
  """Training-mode BatchNorm (eps 1e-5) then LeakyReLU(0.2); ``scale_bias``: (2, C)."""
  scale, bias = scale_bias
  if impl == "fast":
    return batch_norm_leaky_relu(x, scale, bias)[0]
  c = x.shape[-1]
  out, _ = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5).apply(
      {"params": {"scale": scale, "bias": bias},
       "batch_stats": {"mean": jnp.zeros(c), "var": jnp.ones(c)}}, x, mutable=["batch_stats"])
  return nn.leaky_relu(out, 0.2)


OPS = {"down": down_conv, "up": up_conv, "bn": bn_leaky_relu}


def layer_name(kind: str, h: int, w: int, c: int, f: int) -> str:
  if kind == "bn":
    return f"BatchNorm+LeakyReLU {h}x{w}x{c}"
  if kind == "down":
    return f"down {h}x{w}x{c} -> {h // 2}x{w // 2}x{f}"
  return f"up {h}x{w}x{c} -> {2 * h}x{2 * w}x{f}"


def gflop(kind: str, n: int, h: int, w: int, c: int, f: int) -> float:
  """Multiply-adds x 2 of one pass: 16 taps per (input pixel of up_conv | output pixel of down_conv).

  0 for BatchNorm (memory-bound: a few passes over the activations)."""
  if kind == "bn":
    return 0.0
  pixels = n * h * w // 4 if kind == "down" else n * h * w
  return 2.0 * pixels * 16 * c * f / 1e9


def make_passes(op, impl: str, cpu_conv_library: str = "eigen"):
  """Jitted forward / input-gradient / kernel-gradient functions of (x, kernel, cotangent),
  compiled as koopjax's train step is (`koopjax.train.step.cpu_compiler_options`)."""
  jit = functools.partial(
      jax.jit, compiler_options=cpu_compiler_options(parallel.make_mesh(1), cpu_conv_library))
  fwd = jit(lambda x, k, ct: op(x, k, impl))
  dx = jit(lambda x, k, ct: jax.vjp(lambda x: op(x, k, impl), x)[1](ct)[0])
  dw = jit(lambda x, k, ct: jax.vjp(lambda k: op(x, k, impl), k)[1](ct)[0])
  return {"fwd": fwd, "dx": dx, "dw": dw}


def time_layer(kind, n, h, w, c, f, repeats, seed=0, cpu_conv_library="eigen"):
  """Returns {(impl, pass): [seconds, ...]} for one layer."""
  op = OPS[kind]
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal((n, h, w, c)), jnp.float32)
  if kind == "bn":
    k = jnp.asarray(1 + 0.1 * rng.standard_normal((2, c)), jnp.float32)
  else:
    k = jnp.asarray(0.1 * rng.standard_normal((4, 4, c, f)), jnp.float32)
  out_shape = jax.eval_shape(lambda x, k: op(x, k, "plain"), x, k).shape
  ct = jnp.asarray(rng.standard_normal(out_shape), jnp.float32)
  fns = {(impl, p): g for impl in IMPLS
         for p, g in make_passes(op, impl, cpu_conv_library).items()}
  for g in fns.values():  # compile + warm up
    jax.block_until_ready(g(x, k, ct))
  times = {key: [] for key in fns}
  for _ in range(repeats):
    for key, g in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(g(x, k, ct))
      times[key].append(time.perf_counter() - start)
  return times


def cpu_info() -> str:
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as fh:
      for line in fh:
        if line.startswith("model name"):
          model = line.split(":", 1)[1].strip()
          break
  except OSError:
    pass
  return f"{model}, {os.cpu_count()} logical CPUs"


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--frames", type=int, default=256, help="N, frames per call (256)")
  parser.add_argument("--repeats", type=int, default=5, help="timed runs per pass (5)")
  parser.add_argument("--cpu-conv-library", choices=CPU_CONV_LIBRARIES, default="eigen",
                      help="XLA:CPU convolution library (koopjax's default: eigen)")
  parser.add_argument("--json", metavar="FILE", help="write the records as JSON")
  args = parser.parse_args(argv)

  load_before = os.getloadavg()
  records, rows = [], []
  for kind, h, w, c, f in LAYERS:
    name = layer_name(kind, h, w, c, f)
    flops = gflop(kind, args.frames, h, w, c, f)
    times = time_layer(kind, args.frames, h, w, c, f, args.repeats,
                       cpu_conv_library=args.cpu_conv_library)
    med = {key: float(np.median(v)) for key, v in times.items()}
    for (impl, p), runs in times.items():
      records.append({"layer": name, "kind": kind, "input": [args.frames, h, w, c],
                      "features": f, "impl": impl, "pass": p, "gflop": flops,
                      "median_s": med[(impl, p)], "runs_s": runs,
                      "speedup_vs_plain": med[("plain", p)] / med[(impl, p)]})
    cells = []
    for p in PASSES:
      cells.append(f"{med[('plain', p)]:.3f} → {med[('fast', p)]:.3f} "
                   f"({med[('plain', p)] / med[('fast', p)]:.1f}x)")
    total = {impl: sum(med[(impl, p)] for p in PASSES) for impl in IMPLS}
    cells.append(f"{total['plain']:.3f} → {total['fast']:.3f} "
                 f"({total['plain'] / total['fast']:.1f}x)")
    cells.append(f"{3 * flops / total['fast']:.0f}" if flops else "-")
    rows.append(f"| {name} | {f'{flops:.2f}' if flops else '-'} | " + " | ".join(cells) + " |")
    print(f"done: {name}", file=sys.stderr, flush=True)
  load_after = os.getloadavg()

  print(f"jax {jax.__version__}, backend {jax.default_backend()}, {cpu_info()}; "
        f"N = {args.frames} frames, float32, median of {args.repeats} runs, CPU convolutions: "
        f"{args.cpu_conv_library}; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")
  print()
  print("Seconds, plain → fast (speed-up). dx, dw: gradient w.r.t. input, kernel "
        "(BatchNorm: scale and bias). GFLOP per pass.")
  print()
  print("| layer | GFLOP | fwd | dx | dw | fwd+dx+dw | fast GFLOP/s |")
  print("|---|---|---|---|---|---|---|")
  print("\n".join(rows))
  if args.json:
    meta = {"jax": jax.__version__, "backend": jax.default_backend(), "cpu": cpu_info(),
            "frames": args.frames, "repeats": args.repeats,
            "cpu_conv_library": args.cpu_conv_library,
            "loadavg_before": load_before, "loadavg_after": load_after}
    with open(args.json, "w") as fh:
      json.dump({"meta": meta, "records": records}, fh, indent=1)


if __name__ == "__main__":
  main()
