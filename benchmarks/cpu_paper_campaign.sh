#!/usr/bin/env bash
# Table 1 of the paper (War and Peace) under the `paper` preset on a 2-core CPU, one size after
# another: char-rnn's chunked layout, the paper-era LSTM init, all 50 epochs with early stopping.
# Two runs at a time, one torch thread each: two "lanes" each walk the whole list below, sweep by
# sweep, sharing the results folder, whose claims keep them from training the same run. A lane
# that finds nothing left in a stage goes on to the next (the next size's included) rather than
# wait for the other lane's last run: no core idles while work is left.
#
# Safe to start again at any moment: stored runs are skipped and a stopped run resumes from its
# latest.pt, before any other run of its sweep starts. SIGTERM or Ctrl-C to this script stops every
# sweep it runs (each saves its runs' state) and it exits 75; so does one sweep stopped from outside
# (its exit code 75), at once. STOP_AFTER=SECONDS ends the campaign
# after that long as a SIGTERM then would: both lanes train to the end (a run that cannot finish in
# the time left still starts, and resumes at the next start).
#
# For each size:
#   1. the 1-layer models at dropout 0 and 0.25, then the 2- and 3-layer models at dropout 0;
#   2. the 2- and 3-layer models at dropout 0.25 of the cells whose 1-layer model chose 0.25 on
#      validation, and any 2- or 3-layer model whose own run at 0 learned nothing from the context
#      (benchmarks/paper_dropout_choice.py): validation decides, not this script. A lane that gets
#      here while the other still trains a model finds it undecided and leaves the stage to the
#      other lane, which gets here after it with that row stored;
#   3. the checks of that size: at 64, seeds 1 and 2 of the 1-layer models (the spread of a
#      cell), the GRUs with char-rnn's reset gate, RNN 1x64 under the contiguous layout; at 128,
#      RNN 1x128 with char-rnn's clipping (--grad-clip-mode clamp), and at seed 1 (its spread).
#
# Before the lanes start, a folder without the n-gram baselines of the preset's corpus and layout
# gets them (`rnnbench baseline ngram --preset paper`, orders 1 to NGRAM_ORDER, default the paper's
# 20, about two minutes): the report holds the models against the 20-gram, and stage 2 tells a
# model that learned nothing by the 1-gram.
#
# Usage: benchmarks/cpu_paper_campaign.sh RESULTS_DIR SIZES [more sweep options...]
#   e.g. RNNBENCH_DATA_DIR=../shared/datasets benchmarks/cpu_paper_campaign.sh results 128,256
# The whole script is one block, read before it runs: editing the file while it runs changes nothing.
{
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 RESULTS_DIR SIZES [more sweep options...]   (SIZES: a comma list, e.g. 128,256)" >&2
  exit 2
fi
results="$1"
sizes="$2"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
STOPPED=75
stop_mark=$(mktemp)
rm -f "$stop_mark"  # its existence says "stop": the lanes are subshells and share no variables
extra=("$@")

sweep() {  # one sweep of the paper preset at one size on one thread, unless the campaign is stopping
  [ ! -e "$stop_mark" ] || return "$STOPPED"
  # No --stop-after: a sweep with a deadline starts no run that would not fit in it, and would leave
  # its lane idle; the campaign's own timer (STOP_AFTER) stops the sweeps instead, and they resume.
  rnnbench sweep --preset paper --devices cpu --results-dir "$results" --no-progress --jobs 1 --threads 1 \
    "$@" "${extra[@]}"
}

checks() {  # the checks of one size: a sweep's options a line
  case "$1" in
    64)
      echo "--layers 1 --dropout 0 --seeds 1,2"
      echo "--cells gru --dropout 0 --gru-reset before"
      echo "--cells rnn --layers 1 --dropout 0 --split contiguous"
      ;;
    128)
      echo "--cells rnn --layers 1 --dropout 0 --grad-clip-mode clamp"
      echo "--cells rnn --layers 1 --dropout 0 --seeds 1"
      ;;
  esac
}

lane() {  # every size's stages in order, one run at a time; stop at the first sweep that was stopped
  local name="$1" size cells options rc status=0
  # A lane outlives a SIGTERM of its own (`pkill -f` signals it with the script): the script's
  # on_stop stops the lane's sweep, and the lane, which alone is its parent, waits for it to save.
  trap ':' TERM
  stage() {  # one sweep; a failed run is remembered (the lane's exit code) and the lane goes on
    echo "== lane $name, size $size: $1"
    shift
    rc=0
    sweep --sizes "$size" "$@" || rc=$?
    [ "$rc" -eq "$STOPPED" ] && return "$STOPPED"
    [ "$rc" -ne 0 ] && status=$rc
    return 0
  }
  for size in ${sizes//,/ }; do
    stage "the 1-layer models at dropout 0 and 0.25" --layers 1 --dropout 0,0.25 || return
    stage "the 2- and 3-layer models at dropout 0" --layers 2,3 --dropout 0 || return
    at_0_25=$(python3 "$here/paper_dropout_choice.py" "$results" "$size") || return
    while read -r options; do
      [ -n "$options" ] || continue
      # shellcheck disable=SC2086  # the options are words
      stage "the deeper models that run at dropout 0.25 too: $options" $options --dropout 0.25 || return
    done <<< "$at_0_25"
    while read -r options; do
      # shellcheck disable=SC2086  # the options are words
      stage "check $options" $options || return
    done < <(checks "$size")
  done
  return "$status"
}

children=()
on_stop() {  # each sweep saves its runs' state and exits 75; the script then says it stopped
  touch "$stop_mark"
  stop_timer  # before the wait below, which would wait for it
  for pid in "${children[@]}"; do pkill -TERM -P "$pid"; done
  wait
  rm -f "$stop_mark"
  echo "stopped: run the same command again to go on" >&2
  exit "$STOPPED"
}
trap on_stop TERM INT
timer=""
stop_timer() { [ -z "$timer" ] || { pkill -P "$timer"; kill "$timer"; } 2>/dev/null; timer=""; }
trap stop_timer EXIT
if [ -n "${STOP_AFTER:-}" ]; then  # the whole campaign's time: then it stops as a SIGTERM stops it
  ( trap - TERM; sleep "$STOP_AFTER" && kill -TERM $$ ) &
  timer=$!
fi

if ! python3 "$here/paper_dropout_choice.py" "$results" --floor 2>/dev/null; then
  echo "== the n-gram baselines of the preset's corpus and layout, orders 1 to ${NGRAM_ORDER:-20}"
  rnnbench baseline ngram --preset paper --order "${NGRAM_ORDER:-20}" --results-dir "$results" || exit
fi

lane 1 &
children=($!)
lane 2 &
children+=($!)
status=0
running=("${children[@]}")
while [ "${#running[@]}" -gt 0 ]; do  # whichever lane ends first, as it ends
  rc=0
  ended=""
  wait -n -p ended "${running[@]}" || rc=$?
  [ -n "$ended" ] || break  # no lane left to wait for
  if [ "$rc" -eq "$STOPPED" ]; then  # a sweep stopped on its own (not by this script's SIGTERM)
    on_stop  # the other lane's sweep saves its state too, now rather than when its stage ends
  fi
  [ "$rc" -ne 0 ] && status=$rc
  left=()
  for pid in "${running[@]}"; do [ "$pid" = "$ended" ] || left+=("$pid"); done
  running=("${left[@]}")
done
exit "$status"
}
