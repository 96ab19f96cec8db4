#!/usr/bin/env bash
# Every GPU check of one short GPU session, in one command, each stage under a time limit so that
# the whole ends inside TOTAL_S seconds with what it measured stored:
#
#   bash benchmarks/gpu_session.sh OUT_DIR DATA_DIR [TOTAL_S]        # on a machine with one CUDA GPU
#   RNNBENCH_GPU_SESSION_DRY=1 bash benchmarks/gpu_session.sh /tmp/out ../shared/datasets 240
#                                                                   # the same stages on the CPU, tiny
#
# Stages: the CUDA-only tests; benchmarks/gpu_check.py (CUDA graphs against eager: step times of
# the 36 paper models, runs side by side, equal losses, dropout masks); the cpu-budget preset on
# the GPU, one run at a time (the same configurations as the committed CPU rows, for
# `rnnbench results compare` and the cross-hardware table); then the paper's War and Peace grid
# under the `paper` preset's protocol (char-rnn's chunked layout, the paper-era LSTM init, dropout
# 0, 0.25 and 0.5 chosen on validation) cut at a time budget per run, 18 runs at once under the
# CUDA MPS daemon. Each
# results folder is packed into OUT_DIR/NAME.tgz as soon as its stage ends; the console output
# goes to OUT_DIR/log.txt too.
set -u
OUT=${1:?OUT_DIR}
DATA=${2:?DATA_DIR}
TOTAL=${3:-500}
START=$(date +%s)
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export RNNBENCH_DATA_DIR=$DATA PYTHONUNBUFFERED=1 COLUMNS=160
left() { echo $((TOTAL - ($(date +%s) - START))); }
stage() { echo; echo "=== t=$(($(date +%s) - START))s (left $(left) s) $*"; }
pack() { [ -d "$OUT/$1" ] && tar czf "$OUT/$1.tgz" -C "$OUT" "$1" && rm -rf "${OUT:?}/$1"; }
RB="python3 -m rnnbench"

if [ -n "${RNNBENCH_GPU_SESSION_DRY:-}" ]; then
    DEVICE=cpu; CHECK="--cpu-dry-run"; BUDGET_PRESET=smoke; PAPER="--preset smoke --max-chars 200000"; JOBS=2
    echo "DRY RUN on the CPU: tests this script; no figure below is a GPU figure"
else
    DEVICE=cuda; CHECK="--steps 50"; BUDGET_PRESET=cpu-budget; PAPER="--preset paper --time-budget-s 30"; JOBS=18
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'threads', torch.get_num_threads(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

stage "CUDA-only tests"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_jobs.py tests/test_timing.py -k "cuda or graph or masks"

stage "gpu_check"
timeout $(($(left) - 300)) python3 benchmarks/gpu_check.py $CHECK --results-dir "$OUT/gpu-check"
pack gpu-check

stage "$BUDGET_PRESET on $DEVICE, one run at a time"
$RB sweep --preset $BUDGET_PRESET --devices $DEVICE --no-save-checkpoints --no-progress \
    --results-dir "$OUT/budget-$DEVICE" --stop-after $(($(left) - 150))
pack budget-$DEVICE

stage "the paper's grid, cut per run, $JOBS at once"
[ -z "${RNNBENCH_GPU_SESSION_DRY:-}" ] && nvidia-cuda-mps-control -d && echo "CUDA MPS daemon started"
$RB sweep $PAPER --devices $DEVICE --jobs $JOBS --no-save-checkpoints --no-progress \
    --results-dir "$OUT/paper-cut-$DEVICE" --stop-after $(($(left) - 25))
pack paper-cut-$DEVICE
[ -z "${RNNBENCH_GPU_SESSION_DRY:-}" ] && echo quit | nvidia-cuda-mps-control
stage "done"
