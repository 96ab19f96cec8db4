#!/usr/bin/env bash
# The size-64 row of Table 1 (War and Peace) under the `paper` preset on a 2-core CPU: char-rnn's
# chunked layout, the paper-era LSTM init (forget-gate bias uniform), all 50 epochs, two runs at a
# time with one torch thread each. About 3-4 hours; stop it at any time (Ctrl-C, or --stop-after
# through EXTRA) and run it again: finished runs are skipped and each stopped run resumes.
#   1. the nine size-64 models at dropout 0;
#   2. the three 1-layer models at dropout 0.25, so that the report chooses dropout on validation;
#   3. seeds 1 and 2 of the three 1-layer models: the noise floor of a cell;
#   4. the three size-64 GRUs with char-rnn's reset gate (applied before the recurrent product);
#   5. RNN 1x64 under the contiguous layout: what the layout alone changes.
# Usage: benchmarks/cpu_paper_size64.sh [RESULTS_DIR] [more sweep options...]
set -u
results="${1:-results}"
shift || true
common=(--preset paper --sizes 64 --devices cpu --jobs 2 --results-dir "$results" --no-progress "$@")
status=0
rnnbench sweep "${common[@]}" --dropout 0 || status=$?
rnnbench sweep "${common[@]}" --layers 1 --dropout 0.25 || status=$?
rnnbench sweep "${common[@]}" --layers 1 --dropout 0 --seeds 1,2 || status=$?
rnnbench sweep "${common[@]}" --cells gru --dropout 0 --gru-reset before || status=$?
rnnbench sweep "${common[@]}" --cells rnn --layers 1 --dropout 0 --split contiguous || status=$?
exit "$status"
