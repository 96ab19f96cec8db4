#!/usr/bin/env bash
# One command for a short GPU window: the paper campaign for as long as the window allows, then the
# GPU checks, then the new rows (and the state of the runs still in flight) packed to bring back.
#
#   bash benchmarks/gpu_session.sh OUT_DIR DATA_DIR [TOTAL_S]     # on a machine with one CUDA GPU
#   RNNBENCH_GPU_SESSION_DRY=1 bash benchmarks/gpu_session.sh /tmp/out ../shared/datasets 120
#                                                                 # the same stages on the CPU, tiny
#
# On a lent machine without the package index or ../shared: carry the corpora in a git-ignored
# folder (cp ../shared/datasets/*.txt .carry/datasets/) and platformdirs as a wheel in .whl/ (see
# the device notes), and give DATA_DIR as .carry/datasets; the wheels are installed here.
#
# 1. The campaign: the `paper` preset on War and Peace, every dropout value, into RESULTS (default
#    results/, which travels with the checkout, so every stored run is skipped and the runs stopped
#    in an earlier window resume from RESULTS/checkpoints when that folder was carried along). The
#    sweep plans each run from measurements and, under --stop-after, starts the longest runs first
#    and never one whose estimate does not fit the time left (see `rnnbench sweep --plan`).
#    $JOBS runs at once under the CUDA MPS daemon.
# 2. The checks, in the CHECKS_S seconds kept for them: the CUDA-only tests and
#    benchmarks/gpu_check.py (CUDA graphs against eager, runs side by side, equal losses).
# 3. OUT_DIR/campaign-rows.tgz: the rows the campaign wrote in this window (unpack into
#    results/runs, then `rnnbench report --results-dir results`); OUT_DIR/campaign-state.tgz.NN: the
#    saved state of the runs still in flight, smallest first up to STATE_MIB (unpack with
#    `cat campaign-state.tgz.* | tar xz -C results/checkpoints`, and carry results/checkpoints into
#    the next window); OUT_DIR/gpu-check.tgz; OUT_DIR/log.txt, the console output.
set -u
OUT=${1:?OUT_DIR}
DATA=${2:?DATA_DIR}
TOTAL=${3:-500}
RESULTS=${RNNBENCH_SESSION_RESULTS:-results}
STATE_MIB=${RNNBENCH_SESSION_STATE_MIB:-60}
START=$(date +%s)
mkdir -p "$OUT" "$RESULTS/runs"
exec > >(tee -a "$OUT/log.txt") 2>&1
export RNNBENCH_DATA_DIR=$DATA PYTHONUNBUFFERED=1 COLUMNS=160
left() { echo $((TOTAL - ($(date +%s) - START))); }
stage() { echo; echo "=== t=$(($(date +%s) - START))s (left $(left) s) $*"; }
RB="python3 -m rnnbench"
# A machine without the package index: the wheels carried in .whl/ (platformdirs), if any are missing.
if [ -d .whl ] && ! python3 -c "import platformdirs" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
MARK=$(mktemp)  # rows newer than this were written in this window

if [ -n "${RNNBENCH_GPU_SESSION_DRY:-}" ]; then
    DEVICE=cpu; JOBS=1; CHECKS_S=40
    CAMPAIGN="--preset paper --sizes 64 --layers 1 --cells rnn --max-steps 12 --eval-every 12 --train-fraction 0.98 --val-fraction 0.01"
    CHECK="--cpu-dry-run --parts ac"  # the step times and the projection: the rest trains for minutes on a CPU
    echo "DRY RUN on the CPU: tests this script; no figure below is a GPU figure"
else
    DEVICE=cuda; JOBS=18; CHECKS_S=150
    CAMPAIGN="--preset paper"
    CHECK="--steps 50"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'threads', torch.get_num_threads(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

stage "the paper campaign on $DEVICE, $JOBS runs at once, until $CHECKS_S s before the end"
if [ "$DEVICE" = cuda ] && nvidia-cuda-mps-control -d; then MPS=1; echo "CUDA MPS daemon started"; fi
$RB sweep $CAMPAIGN --plan --devices $DEVICE --jobs $JOBS --results-dir "$RESULTS"
$RB sweep $CAMPAIGN --devices $DEVICE --jobs $JOBS --no-progress --results-dir "$RESULTS" \
    --stop-after $(( $(left) - CHECKS_S > 1 ? $(left) - CHECKS_S : 1 ))
echo "campaign sweep exit code: $? (75: stopped at the deadline, resumable)"
[ -n "${MPS:-}" ] && echo quit | nvidia-cuda-mps-control && echo "CUDA MPS daemon stopped"

stage "the GPU checks"
if [ "$DEVICE" = cuda ]; then
    timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_jobs.py tests/test_timing.py -k "cuda or graph or masks"
fi
timeout $(($(left) - 10)) python3 benchmarks/gpu_check.py $CHECK --results-dir "$OUT/gpu-check"
[ -d "$OUT/gpu-check" ] && tar czf "$OUT/gpu-check.tgz" -C "$OUT" gpu-check && rm -rf "${OUT:?}/gpu-check"

stage "packing"
(cd "$RESULTS/runs" && find . -maxdepth 1 -name '*.json' -newer "$MARK" -printf '%f\n') > "$OUT/new-rows.txt"
tar czf "$OUT/campaign-rows.tgz" -C "$RESULTS/runs" -T "$OUT/new-rows.txt"
echo "$(wc -l < "$OUT/new-rows.txt") new row(s) in campaign-rows.tgz"
# The runs in flight at the deadline: their state, smallest first, as far as what comes back allows.
budget=$((STATE_MIB * 1024 * 1024)); : > "$OUT/state.txt"
if [ -d "$RESULTS/checkpoints" ]; then
    while read -r size path; do
        if [ "$size" -le "$budget" ]; then budget=$((budget - size)); echo "$path" >> "$OUT/state.txt"
        else echo "not brought back (over ${STATE_MIB} MiB): $path, $((size / 1048576)) MiB"; fi
    done < <(cd "$RESULTS/checkpoints" && find . -name latest.pt -newer "$MARK" -printf '%s %p\n' | sort -n)
fi
if [ -s "$OUT/state.txt" ]; then
    tar czf - -C "$RESULTS/checkpoints" -T "$OUT/state.txt" | split -b 15m -d - "$OUT/campaign-state.tgz."
    echo "$(wc -l < "$OUT/state.txt") run(s) in flight saved in campaign-state.tgz.*"
fi
rm -f "$MARK" "$OUT/new-rows.txt" "$OUT/state.txt"
stage "done"
