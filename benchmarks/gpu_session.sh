#!/usr/bin/env bash
# One command for a short GPU window: the paper campaign for as long as the window allows, then the
# GPU checks, then the new rows (and the state of the runs still in flight) packed to bring back.
#
#   bash benchmarks/gpu_session.sh OUT_DIR DATA_DIR [TOTAL_S]     # on a machine with one CUDA GPU
#                                                                 # TOTAL_S (540) must fit one command
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
#    sweep plans each run from measurements and never starts one whose estimate does not fit the
#    time left (see `rnnbench sweep --plan`). One size at a time, smallest first, so that a short
#    window finishes whole runs instead of cutting long ones; $JOBS runs at once under the CUDA MPS
#    daemon, which the sweep starts and stops (waiting until it is gone).
# 2. The recurrent layers at DeepBench's shapes (`rnnbench kernels`, float32 then bfloat16), in the
#    KERNELS_S seconds kept for them, into RESULTS as rows (a stopped set resumes in the next window).
# 3. The checks, in the CHECKS_S seconds kept for them: the CUDA-only tests,
#    benchmarks/gpu_check.py (CUDA graphs against eager, runs side by side, equal losses) and
#    benchmarks/step_profile.py (the kernels of the smallest and largest 1-layer models).
# Every stage runs under its own timeout, and what came of it is packed as soon as it ends, so that a
# kill at any moment loses at most the stage in flight. rnnbench is imported from this checkout
# (nothing installs it on a lent machine).
# 4. OUT_DIR/campaign-rows.tgz: the rows the campaign and the layers wrote in this window (unpack into
#    results/runs, then `rnnbench report --results-dir results`); OUT_DIR/campaign-state.tgz.NN: the
#    saved state of the runs still in flight, smallest first up to STATE_MIB (unpack with
#    `cat campaign-state.tgz.* | tar xz -C results/checkpoints`, and carry results/checkpoints into
#    the next window); OUT_DIR/gpu-check.tgz; OUT_DIR/log.txt, the console output.
set -u
OUT=${1:?OUT_DIR}
DATA=${2:?DATA_DIR}
TOTAL=${3:-540}
RESULTS=${RNNBENCH_SESSION_RESULTS:-results}
STATE_MIB=${RNNBENCH_SESSION_STATE_MIB:-60}
START=$(date +%s)
mkdir -p "$OUT" "$RESULTS/runs"
exec > >(tee -a "$OUT/log.txt") 2>&1
# rnnbench from this checkout, for `-m rnnbench` and the scripts under benchmarks/ alike.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export RNNBENCH_DATA_DIR=$DATA PYTHONUNBUFFERED=1 COLUMNS=160
left() { echo $((TOTAL - ($(date +%s) - START))); }
stage() { echo; echo "=== t=$(($(date +%s) - START))s (left $(left) s) $*"; }
RB="python3 -m rnnbench"
# A machine without the package index: the wheels carried in .whl/ (platformdirs), if any are missing.
if [ -d .whl ] && ! python3 -c "import platformdirs" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
MARK=$(mktemp)  # rows newer than this were written in this window

within() {  # within SECONDS COMMAND...: the command under a timeout of SECONDS, or skipped when under 5
    local seconds=$1
    shift
    if [ "$seconds" -lt 5 ]; then
        echo "skipped, ${seconds} s left: $*"
        return 124
    fi
    timeout --kill-after=10 "$seconds" "$@"
}

pack_rows() {  # the rows this window wrote so far, and the state of the runs in flight
    (cd "$RESULTS/runs" && find . -maxdepth 1 -name '*.json' -newer "$MARK" -printf '%f\n') > "$OUT/new-rows.txt"
    tar czf "$OUT/campaign-rows.tgz.tmp" -C "$RESULTS/runs" -T "$OUT/new-rows.txt" \
        && mv "$OUT/campaign-rows.tgz.tmp" "$OUT/campaign-rows.tgz"
    echo "$(wc -l < "$OUT/new-rows.txt") new row(s) in campaign-rows.tgz"
    # The runs in flight: their state, smallest first, as far as what comes back allows.
    local budget=$((STATE_MIB * 1024 * 1024)) size path
    : > "$OUT/state.txt"
    rm -f "$OUT"/campaign-state.tgz.*
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
    rm -f "$OUT/new-rows.txt" "$OUT/state.txt"
}

if [ -n "${RNNBENCH_GPU_SESSION_DRY:-}" ]; then
    DEVICE=cpu; JOBS=1; CHECKS_S=40; KERNELS_S=20; SIZES="64"
    KERNELS="--cells gru --hidden 512 --timesteps 1 --dtype float32 --min-time 0.01"
    CAMPAIGN="--preset paper --layers 1 --cells rnn --max-steps 12 --eval-every 12 --train-fraction 0.98 --val-fraction 0.01"
    CHECK="--cpu-dry-run --parts ac"  # the step times and the projection: the rest trains for minutes on a CPU
    PROFILE="--device cpu --sizes 64 --layers 1 --cells rnn --steps 3 --profile-steps 2"
    echo "DRY RUN on the CPU: tests this script; no figure below is a GPU figure"
else
    DEVICE=cuda; JOBS=18; CHECKS_S=210; SIZES="64 128 256 512"  # tests ~40 s, gpu_check (a) ~25 and (b) ~60-115, step_profile ~30
    KERNELS_S=90; KERNELS="--dtype float32,bfloat16 --min-time 0.2"  # 106 rows of a few ms to a few s each
    CAMPAIGN="--preset paper"
    CHECK="--steps 50"
    PROFILE="--device cuda --sizes 64,512 --layers 1 --steps 20 --profile-steps 5"  # the smallest and largest
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'threads', torch.get_num_threads(),
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"

stage "the paper campaign on $DEVICE, $JOBS runs at once, sizes $SIZES one after another, until $((CHECKS_S + KERNELS_S)) s before the end"
for size in $SIZES; do
    campaign_s=$(($(left) - CHECKS_S - KERNELS_S))
    [ "$campaign_s" -ge 10 ] || break
    echo "--- size $size: ${campaign_s} s"
    # The sweep stops itself at --stop-after; the timeout, a little later, is for a sweep that hangs.
    within $((campaign_s + 20)) $RB sweep $CAMPAIGN --sizes "$size" --devices $DEVICE --jobs $JOBS --no-progress \
        --results-dir "$RESULTS" --stop-after "$campaign_s"
    code=$?
    echo "campaign sweep exit code: $code (75: stopped at the deadline, resumable)"
    pack_rows
    [ "$code" -eq 0 ] || break
done

stage "the recurrent layers at DeepBench's shapes on $DEVICE"
within $(($(left) - CHECKS_S)) $RB kernels $KERNELS --devices $DEVICE --no-progress --results-dir "$RESULTS"
echo "kernels exit code: $? (124: cut at its time; the rows measured are stored and the rest resume)"
pack_rows

stage "the GPU checks"
if [ "$DEVICE" = cuda ]; then
    within $(($(left) - 60 < 90 ? $(left) - 60 : 90)) \
        python3 -m pytest -q -p no:cacheprovider tests/test_jobs.py tests/test_timing.py -k "cuda or graph or masks"
fi
within $(($(left) - 40)) python3 benchmarks/gpu_check.py $CHECK --results-dir "$OUT/gpu-check/check"
[ -d "$OUT/gpu-check" ] && tar czf "$OUT/gpu-check.tgz" -C "$OUT" gpu-check
within $(($(left) - 10)) python3 benchmarks/step_profile.py $PROFILE --results-dir "$OUT/gpu-check/profile"
[ -d "$OUT/gpu-check" ] && tar czf "$OUT/gpu-check.tgz" -C "$OUT" gpu-check && rm -rf "${OUT:?}/gpu-check"

stage "packing"
pack_rows
rm -f "$MARK"
stage "done"
