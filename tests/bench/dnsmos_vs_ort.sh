#!/bin/sh
# dnsmos_vs_ort.sh -- DNSMOS P.835 per window: snnd vs ONNX Runtime on the same core, same windows.
#
# Usage: tests/bench/dnsmos_vs_ort.sh [rounds] [windows] [core]   (defaults 4, 5, last CPU)
#        BAM=1 tests/bench/dnsmos_vs_ort.sh ...  the binary-activation model instead: snnd runs
#        models/zoo/dnsmos-bam.safetensors (bench_bam), ONNX Runtime the same network in float
#        (tests/bench/dnsmos-bam-float.onnx, exported by models/train/train_dnsmos_bam.py);
#        BAM_MODEL and BAM_ORT_MODEL name another pair (e.g. a training run's --out files)
#   env: BUILD (default build), MODEL (models/zoo/dnsmos-p835.onnx), ORT_DIR (/tmp/ort, holding
#   node_modules/onnxruntime-node: cd /tmp/ort && npm install --ignore-scripts onnxruntime-node@1.30.0)
# Each round runs, pinned with taskset to one core and with one thread each (1 OpenBLAS thread,
# 1 ORT intra-op thread), first ort_dnsmos.mjs then bench_dnsmos --lines (the order flips every
# round) on windows 0 .. windows-1 of the same noise stream. Prints per mode the median, quartiles
# and range of process-CPU and wall milliseconds per window, the ratios of ORT's median to
# snnd's, and the largest |snnd - ORT| over the raw outputs (the scores must agree).
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SRC/build}
MODEL=${MODEL:-$SRC/models/zoo/dnsmos-p835.onnx}
ORT_DIR=${ORT_DIR:-/tmp/ort}
BENCH=bench_dnsmos
ORT_MODEL=$MODEL
if [ "${BAM:-0}" = 1 ]; then
    BENCH=bench_bam
    MODEL=${BAM_MODEL:-$SRC/models/zoo/dnsmos-bam.safetensors}
    ORT_MODEL=${BAM_ORT_MODEL:-$SRC/tests/bench/dnsmos-bam-float.onnx}
fi
ROUNDS=${1:-4}
WINDOWS=${2:-5}
CORE=${3:-$(($(nproc) - 1))}
[ -x "$BUILD/tests/bench/$BENCH" ] || { echo "build first: ninja -C $BUILD" >&2; exit 1; }
[ -d "$ORT_DIR/node_modules/onnxruntime-node" ] || { echo "no $ORT_DIR/node_modules/onnxruntime-node" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ort() { NODE_PATH="$ORT_DIR/node_modules" taskset -c "$CORE" node "$SRC/tests/bench/ort_dnsmos.mjs" "$ORT_MODEL" "$WINDOWS"; }
snnd() { taskset -c "$CORE" "$BUILD/tests/bench/$BENCH" "$MODEL" "$WINDOWS" --lines; }
r=0
while [ "$r" -lt "$ROUNDS" ]; do
    if [ $((r % 2)) -eq 0 ]; then ort >>"$TMP/all"; snnd >>"$TMP/all"; else snnd >>"$TMP/all"; ort >>"$TMP/all"; fi
    r=$((r + 1))
done
echo "$(basename "$MODEL") vs ORT $(basename "$ORT_MODEL"), $ROUNDS rounds x $WINDOWS windows, core $CORE, load $(cut -d' ' -f1-3 /proc/loadavg)"
# field: 1 impl, 2 mode, 3 window, 4 cpu, 5 wall, 6..8 raw outputs
stats() { # $1 impl, $2 mode, $3 column -> "median q1 q3 min max n"
    awk -v i="$1" -v m="$2" -v c="$3" '$1 == i && $2 == m { print $c }' "$TMP/all" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "- - - - - 0"; exit }
             n = NR; a = int((n + 3) / 4); b = int((3 * n + 1) / 4); if (b < 1) b = 1
             printf "%.1f %.1f %.1f %.1f %.1f %d\n", v[int((n + 1) / 2)], v[a], v[b], v[1], v[n], n }'
}
printf '%-22s %8s %17s %15s %8s %17s %15s\n' "ms per window" "CPU med" "CPU q1-q3" "CPU min-max" "wall med" "wall q1-q3" "wall min-max"
for im in "ort scratch" "snnd scratch" "snnd noamx" "snnd avx2" "snnd stream" "snnd portable"; do
    set -- $im
    c=$(stats "$1" "$2" 4); w=$(stats "$1" "$2" 5)
    [ "${c##* }" = 0 ] && continue
    echo "$im $c $w" | awk '{ printf "%-22s %8s %8s-%-8s %7s-%-7s %8s %8s-%-8s %7s-%-7s (n=%s)\n",
        $1 " " $2, $3, $4, $5, $6, $7, $9, $10, $11, $12, $13, $8 }'
done
ORT_C=$(stats ort scratch 4 | cut -d' ' -f1); ORT_W=$(stats ort scratch 5 | cut -d' ' -f1)
for m in scratch noamx avx2 stream portable; do
    C=$(stats snnd "$m" 4 | cut -d' ' -f1); W=$(stats snnd "$m" 5 | cut -d' ' -f1)
    [ "$C" = - ] && continue
    awk -v m="$m" -v oc="$ORT_C" -v ow="$ORT_W" -v c="$C" -v w="$W" 'BEGIN {
        printf "ORT window / snnd %-7s: %.2fx on CPU time, %.2fx on wall time\n", m, oc / c, ow / w }'
done
awk '$1 == "ort" { for (k = 6; k <= 8; k++) o[$3, k] = $k }
     $1 == "snnd" && ($2 == "scratch" || $2 == "noamx" || $2 == "stream") { for (k = 6; k <= 8; k++) s[$2, $3, k] = $k }
     END { for (key in s) { split(key, p, SUBSEP); d = s[key] - o[p[2], p[3]]; d = d < 0 ? -d : d;
                            if (d > mx[p[1]]) mx[p[1]] = d }
           printf "max |snnd - ORT| raw outputs: scratch %.1e, stream %.1e", mx["scratch"], mx["stream"]
           if (("noamx") in mx) printf ", noamx %.1e", mx["noamx"]; printf "\n" }' "$TMP/all"
grep "stream-warmup" "$TMP/all" | awk '{ s += $4; n++ } END { if (n) printf "stream warm-up (9 steps before window 0): %.1f ms CPU mean\n", s / n }'
