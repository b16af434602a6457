#!/bin/sh
# run.sh -- every snnd benchmark in one run, against a fresh daemon.
#
# Usage (from anywhere): tests/bench/run.sh            (after `ninja -C build`)
#
# Prints the figures; never fails because a goal was missed (benchmarks are not
# tests). Every figure comes with the 1-minute load average: on a shared machine
# compare the CPU-wait figures loadgen prints before trusting a latency.
#
# Environment (defaults in brackets):
#   BUILD            build directory [SRC/build]
#   DURATION         seconds per load run [20]
#   RATE             bins per second per stream [250]
#   STREAMS_LIST     concurrent streams of the load runs ["1 100 1000"; "" for none]
#   CONNS_MAX        at most this many feeder connections per run (streams share them) [100]
#   SUBS             > 0: one more run where SUBS separate connections subscribe [10]
#   SUBS_STREAMS     streams of that run [100]
#   HOLD             idle connections to open and hold [10000]; 0 skips
#   HOLD_SECONDS     how long to hold them [20]
#   SEARCH           1: find the most streams held in real time [1]
#   SEARCH_DURATION  seconds per search probe [10]
#   SEARCH_P99_US    real time = p99 below this and nothing lost [4000]
#   SOAK_SECONDS     > 0: also a soak of SOAK_STREAMS streams for this long, RSS every 10 s [0]
#                    (the 10-minute soak: SOAK_SECONDS=600 SOAK_STREAMS=1000 tests/bench/run.sh)
#   SOAK_STREAMS     [1000]
#   ENGINE           0 skips bench_engine [1]; TORCH 0 skips the PyTorch peer [1]
#   TORCH_PTH        [SRC/../shared/data/primate_reaching/tinyRSNN/indy01_tinyRSNN-1.pth]
#   DNSMOS_ORT       1: also run dnsmos_vs_ort.sh, a DNSMOS P.835 window in snnd vs ONNX Runtime
#                    (needs node and onnxruntime-node in ORT_DIR, e.g. `npm install --prefix
#                    /tmp/ort onnxruntime-node`) [0]; ORT_DIR [/tmp/ort]
#   TRANSPORT        unix or tcp [unix]
#   BENCH_RT         1: run snnd and loadgen under `chrt -r 10` (round-robin real-time), so other
#                    processes on a shared machine cannot delay them [0]; the figures say so
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/build}
DURATION=${DURATION:-20}
RATE=${RATE:-250}
STREAMS_LIST=${STREAMS_LIST-"1 100 1000"}
CONNS_MAX=${CONNS_MAX:-100}
SUBS=${SUBS:-10}
SUBS_STREAMS=${SUBS_STREAMS:-100}
HOLD=${HOLD:-10000}
HOLD_SECONDS=${HOLD_SECONDS:-20}
SEARCH=${SEARCH:-1}
SEARCH_DURATION=${SEARCH_DURATION:-10}
SEARCH_P99_US=${SEARCH_P99_US:-4000}
SOAK_SECONDS=${SOAK_SECONDS:-0}
SOAK_STREAMS=${SOAK_STREAMS:-1000}
ENGINE=${ENGINE:-1}
TORCH=${TORCH:-1}
TORCH_PTH=${TORCH_PTH:-$SRC/../shared/data/primate_reaching/tinyRSNN/indy01_tinyRSNN-1.pth}
DNSMOS_ORT=${DNSMOS_ORT:-0}
ORT_DIR=${ORT_DIR:-/tmp/ort}
TRANSPORT=${TRANSPORT:-unix}
BENCH_RT=${BENCH_RT:-0}
RT=
if [ "$BENCH_RT" = 1 ]; then
    if chrt -r 10 true 2>/dev/null; then RT="chrt -r 10"; else echo "run.sh: chrt -r 10 not permitted; BENCH_RT ignored"; fi
fi
MODEL=tinyrsnn-indy01-seed1
INPUT=$SRC/tests/fixtures/tinyrsnn/input_indy.csv

SNND=$BUILD/server/snnd
LOADGEN=$BUILD/tests/bench/loadgen
ENGINE_BIN=$BUILD/tests/bench/bench_engine
for b in "$SNND" "$LOADGEN" "$ENGINE_BIN"; do
    [ -x "$b" ] || { echo "run.sh: $b not built (ninja -C $BUILD)" >&2; exit 1; }
done

load() { cut -d' ' -f1 /proc/loadavg; }
say() { echo; echo "== $* (load $(load), $(date -u +%H:%M:%S) UTC)"; }

TMP=$(mktemp -d /tmp/snnd-bench.XXXXXX)
SNND_PID=
cleanup() {
    if [ -n "$SNND_PID" ]; then
        kill -TERM "$SNND_PID" 2>/dev/null
        wait "$SNND_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "snnd benchmarks: $(uname -srm), $(nproc) CPUs, $(sed -n 's/^model name.*: //p' /proc/cpuinfo | head -1)"
echo "build $BUILD; git $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')"

# ---- engine, single thread ---------------------------------------------------
SNN_STEPS=
if [ "$ENGINE" = 1 ]; then
    say "bench_engine: single-thread steps/s (median of 11, IQR, min-max)"
    "$ENGINE_BIN" --root "$SRC" | tee "$TMP/engine.txt" | grep --line-buffered -v '^RESULT'
    LINE=$(grep '^RESULT bench=engine case="tinyrsnn-indy01 96-64-2 step" input="fixture bins' "$TMP/engine.txt")
    SNN_STEPS=$(echo "$LINE" | sed -n 's/.* steps_per_s=\([0-9]*\).*/\1/p')
    SNN_CPU_STEPS=$(echo "$LINE" | sed -n 's/.* cpu_steps_per_s=\([0-9]*\).*/\1/p')
fi

# ---- PyTorch peer --------------------------------------------------------------
if [ "$TORCH" = 1 ]; then
    say "PyTorch peer: the same tinyRSNN in torch, batch 1, 1 thread, one step per call"
    if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
        echo "skipped: python3-torch is not installed"
    elif [ ! -r "$TORCH_PTH" ]; then
        echo "skipped: $TORCH_PTH not found (the tinyRSNN .pth files of ../shared/data)"
    else
        /usr/bin/python3 "$SRC/models/tools/bench_torch_tinyrsnn.py" "$TORCH_PTH" --steps 2500 --repeats 11 \
            | tee "$TMP/torch.json"
        T_STEPS=$(sed -n 's/.*"steps_per_s_median": \([0-9.e+]*\).*/\1/p' "$TMP/torch.json")
        if [ -n "$SNN_STEPS" ] && [ -n "$T_STEPS" ]; then
            awk -v a="$SNN_STEPS" -v c="$SNN_CPU_STEPS" -v b="$T_STEPS" 'BEGIN {
                printf "snnd engine / PyTorch, both by the wall clock: %.0f / %.0f steps/s = %.0fx (goal >= 100x)\n", a, b, a / b
                printf "(snnd by its CPU time: %.0f steps/s = %.0fx the PyTorch wall-clock rate)\n", c, c / b }'
        fi
    fi
fi

# ---- DNSMOS window vs ONNX Runtime (optional) ----------------------------------
if [ "$DNSMOS_ORT" = 1 ]; then
    say "DNSMOS P.835 window: snnd's ONNX executor vs ONNX Runtime (tests/bench/dnsmos_vs_ort.sh)"
    if command -v node >/dev/null && [ -d "$ORT_DIR/node_modules/onnxruntime-node" ]; then
        BUILD=$BUILD ORT_DIR=$ORT_DIR sh "$SRC/tests/bench/dnsmos_vs_ort.sh" || echo "dnsmos_vs_ort.sh failed"
    else
        echo "skipped: needs node and $ORT_DIR/node_modules/onnxruntime-node"
        echo "  (cd $ORT_DIR && npm install --ignore-scripts onnxruntime-node; never into the repository)"
    fi
fi

# ---- a fresh daemon -------------------------------------------------------------
# Room for 10 000 connections plus the listeners, and the search above max_streams' default.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$TRANSPORT" = tcp ]; then
    ADDR=tcp:127.0.0.1:$((20000 + $$ % 20000))
else
    ADDR=unix:$TMP/snnd.sock
fi
cat > "$TMP/snnd.json" <<EOF
{ "_comment": "tests/bench/run.sh: default limits except max_streams (the search goes above 4096)",
  "log_level": "warn",
  "limits": { "max_streams": 20000 } }
EOF
$RT "$SNND" --config "$TMP/snnd.json" --listen "$ADDR" > "$TMP/snnd.log" 2>&1 &
SNND_PID=$!
for i in 1 2 3 4 5 6 7 8 9 10; do
    [ "$TRANSPORT" = tcp ] && break
    [ -S "$TMP/snnd.sock" ] && break
    sleep 0.2
done
sleep 0.3
kill -0 "$SNND_PID" 2>/dev/null || { echo "run.sh: snnd did not start:"; cat "$TMP/snnd.log"; exit 1; }
echo
echo "snnd pid $SNND_PID on $ADDR ($(ulimit -n) descriptors), $(sed -n 's/^VmRSS:\s*//p' /proc/$SNND_PID/status) RSS${RT:+; snnd and loadgen run under $RT}"

lg() { $RT "$LOADGEN" --addr "$ADDR" --pid "$SNND_PID" "$@"; }
conns_for() { if [ "$1" -lt "$CONNS_MAX" ]; then echo "$1"; else echo "$CONNS_MAX"; fi; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# ---- load: 1, 100, 1000 streams -------------------------------------------------
for S in $STREAMS_LIST; do
    C=$(conns_for "$S")
    say "loadgen: $S streams x $RATE bins/s, $C feeder connections (each subscribes to its streams), ${DURATION} s"
    lg --model "$MODEL" --input "$INPUT" --streams "$S" --conns "$C" --rate "$RATE" --duration "$DURATION" \
        --report-every 10 | grep --line-buffered -v '^RESULT'
done
if [ "$SUBS" -gt 0 ]; then
    say "loadgen: $SUBS_STREAMS streams x $RATE bins/s, fed by $(conns_for "$SUBS_STREAMS") connections, subscribed by $SUBS other connections, ${DURATION} s"
    lg --model "$MODEL" --input "$INPUT" --streams "$SUBS_STREAMS" --conns "$(conns_for "$SUBS_STREAMS")" \
        --sub-conns "$SUBS" --rate "$RATE" --duration "$DURATION" --report-every 10 | grep --line-buffered -v '^RESULT'
fi

# ---- the largest number of streams held in real time ---------------------------
if [ "$SEARCH" = 1 ]; then
    say "search: most streams at $RATE bins/s with p99 < $SEARCH_P99_US us and nothing lost (${SEARCH_DURATION} s per probe)"
    probe() {
        C=$(conns_for "$1")
        R=$(lg --model "$MODEL" --input "$INPUT" --streams "$1" --conns "$C" --rate "$RATE" \
            --duration "$SEARCH_DURATION" --report-every 1000 2>/dev/null | grep '^RESULT')
        P99=$(echo "$R" | field p99_us); LOST=$(echo "$R" | field lost); ERR=$(echo "$R" | field errors)
        LW=$(echo "$R" | field loadgen_cpu_wait); SW=$(echo "$R" | field snnd_cpu_wait)
        printf '  %6d streams: p99 %s us, lost %s, errors %s, events/s %s; CPU wait loadgen %s, snnd %s s/s; load %s\n' \
            "$1" "${P99:-?}" "${LOST:-?}" "${ERR:-?}" "$(echo "$R" | field events_per_s)" "$LW" "$SW" "$(load)"
        [ -n "$P99" ] && [ "${P99%.*}" -lt "$SEARCH_P99_US" ] && [ "$LOST" = 0 ] && [ "$ERR" = 0 ]
    }
    GOOD=0 BAD=0 S=50
    while [ "$S" -le 16384 ]; do
        if probe "$S"; then GOOD=$S; S=$((S * 2)); else BAD=$S; break; fi
    done
    if [ "$BAD" -gt 0 ]; then
        while [ $((BAD - GOOD)) -gt $((BAD / 8 + 1)) ]; do
            MID=$(((GOOD + BAD) / 2))
            if probe "$MID"; then GOOD=$MID; else BAD=$MID; fi
        done
    fi
    echo "most streams held in real time: $GOOD (next probe failed at ${BAD:-none}) at $RATE bins/s"
fi

# ---- 10 000 idle connections ---------------------------------------------------
if [ "$HOLD" -gt 0 ]; then
    say "hold: $HOLD idle connections for $HOLD_SECONDS s (daemon default max_connections 10000)"
    lg --hold "$HOLD" --duration "$HOLD_SECONDS"
fi

# ---- soak ------------------------------------------------------------------------
if [ "$SOAK_SECONDS" -gt 0 ]; then
    C=$(conns_for "$SOAK_STREAMS")
    say "soak: $SOAK_STREAMS streams x $RATE bins/s for $SOAK_SECONDS s; RSS and latency every 10 s (flat memory?)"
    lg --model "$MODEL" --input "$INPUT" --streams "$SOAK_STREAMS" --conns "$C" --rate "$RATE" \
        --duration "$SOAK_SECONDS" --report-every 10
fi

say "done; snnd RSS now $(sed -n 's/^VmRSS:\s*//p' /proc/$SNND_PID/status); snnd log:"
tail -5 "$TMP/snnd.log"
