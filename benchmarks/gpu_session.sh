#!/usr/bin/env bash
# The accelerator measurements of the throughput benchmark as one prepared command, sized for
# a lent GPU with little time (e.g. 15 minutes of device time in all, 10 per command).
#
#   bash benchmarks/gpu_session.sh [OUT_DIR] [BUDGET_S] [throughput.py options...]
#
# Run from the repository root. Installs nothing: it uses the python3 on PATH (it needs jax
# with the accelerator's plugin, flax, optax, orbax-checkpoint, chex and, for the PyTorch
# rows, torch with CUDA) and puts the checkout on PYTHONPATH. Writes into OUT_DIR (default
# $OUT, else ./gpu_session):
#   env.txt                   nvidia-smi, python and package versions
#   reference.md / .json      batch 32, float32, one device: the koopjax step (with the
#                             training-loop rate, the reference schedule's projected time and
#                             both eigenvalue paths), PyTorch eager and torch.compile on the
#                             same device, loss parity, the input pipeline
#   sweep.md / .json          koopjax alone, one device, bfloat16 and float32 at batch 32 (the
#                             reference point again: a repeat across processes), then 1024, 8,
#                             128, 512, 16, 64, 256, until its budget is spent (each point is a
#                             fresh process with its own compilation, about a minute on a GPU)
# BUDGET_S (default 540) is shared: the reference part may use 60 % of it, the sweep what is
# left. Each part's JSON is rewritten after every measurement, so a cut-off run keeps what it
# measured. Extra options go to both throughput.py runs (a CPU smoke test of this script:
# `bash benchmarks/gpu_session.sh /tmp/gs 150 --config tiny --steps 2`).
set -uo pipefail
out="${1:-${OUT:-gpu_session}}"
budget="${2:-540}"
extra=("${@:3}")
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }

{
  date -u
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  python3 --version
  python3 -m pip list 2>/dev/null | grep -iE '^(jax|jaxlib|jax-cuda|flax|optax|orbax|chex|torch|numpy) '
  python3 -c 'import jax; print("jax devices:", jax.devices())'
} > "$out/env.txt" 2>&1
cat "$out/env.txt"

reference_budget=$(( $(left) * 60 / 100 ))
python3 benchmarks/throughput.py --batch 32 --devices 1 --precision float32 --steps 50 \
  --torch all --budget-s "$reference_budget" --json "$out/reference.json" "${extra[@]}" \
  2> >(tee "$out/reference.log" >&2) | tee "$out/reference.md"

sweep_budget=$(left)
if (( sweep_budget > 30 )); then
  python3 benchmarks/throughput.py --batch 32 1024 8 128 512 16 64 256 --devices 1 \
    --precision bfloat16 float32 --torch none --eig-step no --e2e no \
    --budget-s "$sweep_budget" --json "$out/sweep.json" "${extra[@]}" \
    2> >(tee "$out/sweep.log" >&2) | tee "$out/sweep.md"
else
  echo "no time left for the sweep ($sweep_budget s)" | tee "$out/sweep.md"
fi
echo "gpu_session: $(( $(date +%s) - start )) s of a $budget s budget; results in $out"
