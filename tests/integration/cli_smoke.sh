#!/bin/sh
# cli_smoke.sh -- the `snn` CLI against a real snnd: `snn replay` through the
# daemon prints byte-identical output to `snn model run` offline, over a Unix
# socket and over TCP; errors exit non-zero with one line on stderr.
#
# Needs SNN_BUILD_ROOT and SNN_SOURCE_ROOT (meson's test_env sets both).
# Exit 77 (skip) when the binaries are not built.
set -u
B=${SNN_BUILD_ROOT:?}
S=${SNN_SOURCE_ROOT:?}
SNN=$B/clients/snn
SNND=$B/server/snnd
[ -x "$SNN" ] && [ -x "$SNND" ] || { echo "SKIP: snn or snnd not built"; exit 77; }

T=$(mktemp -d /tmp/snn-cli-smoke.XXXXXX)
SOCK=$T/snnd.sock
PORT=$((20000 + $$ % 20000))
"$SNND" --listen "unix:$SOCK" --listen "tcp:127.0.0.1:$PORT" --models "$S/models/zoo" \
    >"$T/snnd.log" 2>&1 &
PID=$!
cleanup() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

i=0
while [ ! -S "$SOCK" ]; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "FAIL: snnd did not create $SOCK"; cat "$T/snnd.log"; exit 1; }
    sleep 0.05
done

fail=0
check() { # check NAME COMMAND...: the command must succeed
    name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fail=1; fi
}
check_err() { # check_err NAME WANT COMMAND...: must fail with WANT on stderr, one line
    name=$1; want=$2; shift 2
    if "$@" >/dev/null 2>"$T/err"; then
        echo "FAIL $name: exit status 0"; fail=1
    elif ! grep -q -- "$want" "$T/err" || [ "$(wc -l <"$T/err")" -ne 1 ]; then
        echo "FAIL $name: stderr was: $(cat "$T/err")"; fail=1
    else
        echo "ok   $name"
    fi
}

FX=$S/tests/fixtures/tinyrsnn
for m in indy01 loco01; do
    in=$FX/input_${m%01}.csv
    "$SNN" model run "tinyrsnn-$m-seed1" "$in" --out "$T/$m.offline.csv"
    check "$m offline has 2500 rows" test "$(wc -l <"$T/$m.offline.csv")" -eq 2501
    "$SNN" replay "tinyrsnn-$m-seed1" "$in" --socket "$SOCK" --out "$T/$m.unix.csv"
    check "$m replay over unix is identical" cmp "$T/$m.offline.csv" "$T/$m.unix.csv"
    "$SNN" replay "tinyrsnn-$m-seed1" "$in" --host 127.0.0.1 --port "$PORT" >"$T/$m.tcp.csv"
    check "$m replay over tcp is identical" cmp "$T/$m.offline.csv" "$T/$m.tcp.csv"
done
check "first prediction of indy01" \
    grep -qx '0,0.004000,-0.00964747462,-0.00967069808' "$T/indy01.offline.csv"

"$SNN" models --socket "$SOCK" --json >"$T/models.json"
check "models lists tinyrsnn-indy01-seed1" grep -q '"name":"tinyrsnn-indy01-seed1"' "$T/models.json"
"$SNN" stats --socket "$SOCK" --json >"$T/stats.json"
check "stats counts the replayed steps" grep -q '"steps":[1-9]' "$T/stats.json"

# Tactile: a raw iCub recording through the sigma-delta encoder and braille-rsnn.
BR=$S/tests/fixtures/braille/val_rep33_B.csv
"$SNN" model run braille-rsnn "$BR" --decision >"$T/braille.json"
check "braille-rsnn reads B" grep -q '"label":"B"' "$T/braille.json"
"$SNN" replay braille-rsnn "$BR" --socket "$SOCK" --decision >"$T/braille.replay.json"
check "braille replay decides the same" cmp "$T/braille.json" "$T/braille.replay.json"
"$SNN" model run braille-rsnn "$BR" --out "$T/braille.offline.csv"
"$SNN" replay braille-rsnn "$BR" --socket "$SOCK" --out "$T/braille.replay.csv"
check "braille replay is identical" cmp "$T/braille.offline.csv" "$T/braille.replay.csv"
# A change-driven sender: only frames that differ from the last one, with the encoder's hold
# (tactile_hold_ms; 30 ms, under the 50 ms its recording repeats frames for); offline and
# through snnd (the OpenStream option) give the same numbers.
awk -F, 'NR == 1 { print; next } { v = $0; sub(/^[^,]*,/, "", v); if (v != last) print; last = v }' "$BR" >"$T/braille.changes.csv"
check "the change-driven copy drops frames" test "$(wc -l <"$T/braille.changes.csv")" -lt "$(wc -l <"$BR")"
"$SNN" model run braille-rsnn "$T/braille.changes.csv" --hold-ms 30 --out "$T/braille.hold.csv"
"$SNN" replay braille-rsnn "$T/braille.changes.csv" --hold-ms 30 --socket "$SOCK" --out "$T/braille.hold.replay.csv"
check "--hold-ms: replay is identical" cmp "$T/braille.hold.csv" "$T/braille.hold.replay.csv"
"$SNN" model run braille-rsnn "$T/braille.changes.csv" --out "$T/braille.nohold.csv"
same=0; cmp -s "$T/braille.hold.csv" "$T/braille.nohold.csv" && same=1
check "--hold-ms changes the encoding of skipped frames" test "$same" = 0
check_err "--hold-ms 0" "--hold-ms 0: expected milliseconds, 1 to 3600000" "$SNN" model run braille-rsnn "$BR" --hold-ms 0

# Audio: a 10.8 s clip at 16 kHz through DNSMOS P.835, offline and through snnd.
CLIP=${SNN_DATA_DIR:-$S/../shared/data}/dnsmos/clips/codec2_speech_orig_16k.wav
if [ -f "$CLIP" ]; then
    "$SNN" model run dnsmos-p835 "$CLIP" --out "$T/dnsmos.offline.csv"
    "$SNN" replay dnsmos-p835 "$CLIP" --socket "$SOCK" --out "$T/dnsmos.replay.csv"
    check "dnsmos-p835 scores one window" test "$(wc -l <"$T/dnsmos.offline.csv")" -eq 2
    check "dnsmos-p835 replay is identical" cmp "$T/dnsmos.offline.csv" "$T/dnsmos.replay.csv"
    "$SNN" model run dnsmos-p835 "$CLIP" --decision >"$T/dnsmos.json"
    check "dnsmos-p835 decision has SIG, BAK, OVRL" grep -q '"SIG":.*"BAK":.*"OVRL":' "$T/dnsmos.json"
else
    echo "skip dnsmos: $CLIP is absent"
fi

check_err "unknown model" "UNKNOWN_MODEL" "$SNN" replay nosuch "$FX/input_indy.csv" --socket "$SOCK"
check_err "wrong column count" "96 input columns (ch0..ch95), the model has 192 inputs" \
    "$SNN" replay tinyrsnn-loco01-seed1 "$FX/input_indy.csv" --socket "$SOCK"
check_err "unknown stream" "UNKNOWN_STREAM" "$SNN" sub nostream --socket "$SOCK"
check_err "no daemon" "connect unix:$T/none.sock" "$SNN" stats --socket "$T/none.sock"
# A WAVE file with a header and no samples (44 bytes): nothing to score.
printf 'RIFF\044\000\000\000WAVEfmt \020\000\000\000\001\000\001\000\200\076\000\000\000\175\000\000\002\000\020\000data\000\000\000\000' \
    >"$T/empty.wav"
check_err "empty clip offline" "empty.wav: no samples" "$SNN" model run dnsmos-bam "$T/empty.wav"
check_err "empty clip replay" "empty.wav: no samples" "$SNN" replay dnsmos-bam "$T/empty.wav" --socket "$SOCK"
check_err "bad option" "unknown option --bogus" "$SNN" model run x y --bogus

# snn dnsmos: dnsmos_local.py's clip CSV for a directory of clips; the scores are model run's
# decisions, num_hops dnsmos_local.py's count (the reference's for these clips: 1, 7 and 3).
CLIPS=${SNN_DATA_DIR:-$S/../shared/data}/dnsmos/clips
if [ -f "$CLIPS/codec2_wia_16kHz.wav" ]; then
    mkdir "$T/clips"
    for c in codec2_speech_orig_16k codec2_wia_16kHz pesq_speech; do cp "$CLIPS/$c.wav" "$T/clips/"; done
    cp "$T/empty.wav" "$T/clips/zz_empty.wav"
    "$SNN" dnsmos "$T/clips" --out "$T/dnsmos.clips.csv" 2>"$T/dnsmos.clips.err"
    check "dnsmos: a clip without samples fails the run" test $? -eq 1
    check "dnsmos: the failed clip is named" grep -q "zz_empty.wav: no samples" "$T/dnsmos.clips.err"
    check "dnsmos: header and three rows" test "$(wc -l <"$T/dnsmos.clips.csv")" -eq 4
    check "dnsmos: header" grep -qx "filename,len_in_sec,sr,num_hops,OVRL_raw,SIG_raw,BAK_raw,OVRL,SIG,BAK,P808_MOS"         "$T/dnsmos.clips.csv"
    check "dnsmos: num_hops as dnsmos_local.py" test "$(cut -d, -f4 "$T/dnsmos.clips.csv" | tr '\n' ' ')" =         "num_hops 1 7 3 "
    "$SNN" model run dnsmos-p835 "$T/clips/codec2_wia_16kHz.wav" --decision >"$T/wia.json"
    "$SNN" model run dnsmos-p808 "$T/clips/codec2_wia_16kHz.wav" --decision >"$T/wia808.json"
    row=$(grep codec2_wia "$T/dnsmos.clips.csv")
    want=$(sed 's/.*"SIG":\([^,]*\),"BAK":\([^,]*\),"OVRL":\([^,]*\),"SIG_raw":\([^,]*\),"BAK_raw":\([^,]*\),"OVRL_raw":\([^}]*\)}/\6,\4,\5,\3,\1,\2/' "$T/wia.json")
    mos=$(sed 's/.*"MOS":\([^}]*\)}/\1/' "$T/wia808.json")
    check "dnsmos: the row is model run's decisions" test "$row" = "$T/clips/codec2_wia_16kHz.wav,1,16000,7,$want,$mos"
    "$SNN" dnsmos "$T/clips" --jobs 1 --out "$T/dnsmos.j1.csv" 2>/dev/null
    "$SNN" dnsmos "$T/clips" --jobs 3 --out "$T/dnsmos.j3.csv" 2>/dev/null
    check "dnsmos: the same rows in the same order with 1 and 3 jobs" cmp "$T/dnsmos.j1.csv" "$T/dnsmos.j3.csv"
else
    echo "skip snn dnsmos: $CLIPS is absent"
fi
# snn model create + train: a fresh 96 -> 64 -> 2 model learns the tinyRSNN decoder's velocity
# (its recorded outputs as targets) from the same spikes; the loss after 8 epochs is below the
# untrained one, and the trained file runs.
"$SNN" model create "$T/learner.safetensors" --inputs 96 --hidden 64 --outputs 2 --seed 3 >/dev/null
check "model create writes a trainable model" test -s "$T/learner.safetensors"
cut -d, -f3-4 "$FX/indy01-seed1.expected.csv" >"$T/targets.csv"
"$SNN" model train "$T/learner.safetensors" "$FX/input_indy.csv" "$T/targets.csv" --epochs 8 --lr 0.002 \
    --interval 250 --out "$T/learner-trained.safetensors" >"$T/train.csv" 2>/dev/null
l0=$(sed -n 2p "$T/train.csv" | cut -d, -f2); l8=$(tail -1 "$T/train.csv" | cut -d, -f2)
echo "# model train: loss $l0 untrained, $l8 after 8 epochs"
check "model train lowers the loss of a created model" awk -v a="$l0" -v b="$l8" 'BEGIN { exit !(b < a / 2) }'
"$SNN" model run "$T/learner-trained.safetensors" "$FX/input_indy.csv" --out "$T/learner.run.csv"
check "the trained model runs" test "$(wc -l <"$T/learner.run.csv")" -eq 2501
check_err "model create needs sizes" "--inputs, --hidden and --outputs are needed" "$SNN" model create "$T/x.safetensors"
check_err "dnsmos: not a P.835 model" "a P.835 model has 6" "$SNN" dnsmos "$T/empty.wav" --p835 dnsmos-p808
check_err "dnsmos: no such path" "nosuch.wav: No such file or directory" "$SNN" dnsmos "$T/nosuch.wav"
# Bad input, each subcommand: one line naming what was wrong, a non-zero exit, never a crash,
# a hang or a silent success.
closed() { "$@" >&-; }       # stdout closed
full() { "$@" >/dev/full; }  # every write to stdout fails
IN=$FX/input_indy.csv
check_err "replay to a closed stdout" "stdout: write error" \
    closed "$SNN" replay tinyrsnn-indy01-seed1 "$IN" --socket "$SOCK"
check_err "model info to a full stdout" "stdout: write error" full "$SNN" model info tinyrsnn-indy01-seed1
check_err "models to a closed stdout" "stdout: write error" closed "$SNN" models --socket "$SOCK"
check_err "help to a full stdout" "stdout: write error" full "$SNN" model run --help
check_err "a write error ends a run early" "stdout: write error" \
    full timeout 5 "$SNN" model run tinyrsnn-indy01-seed1 "$IN" --bin-us 1
"$SNN" replay tinyrsnn-indy01-seed1 "$IN" --socket "$SOCK" --stream live --realtime >/dev/null 2>&1 &
RPID=$!
i=0
until "$SNN" stats live --socket "$SOCK" >/dev/null 2>&1 || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.05; done
check_err "sub stops at a write error" "stdout: write error" full timeout 5 "$SNN" sub live --socket "$SOCK"
kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null
check_err "input CSV is a directory" "$T: Is a directory" "$SNN" model run tinyrsnn-indy01-seed1 "$T"
{ head -2 "$IN"; sed -n 3p "$IN" | sed 's/^[^,]*/1e20/'; } >"$T/late.csv"
check_err "t beyond any stream's time" "late.csv: data row 2: t = 1e+20 s is beyond the latest time" \
    "$SNN" model run tinyrsnn-indy01-seed1 "$T/late.csv"
check_err "model is a directory" "model '$T': a directory, not a model file" "$SNN" model info "$T"
check_err "model path does not exist" "model '$T/nosuch.onnx': No such file or directory" \
    "$SNN" model run "$T/nosuch.onnx" "$IN"
mkdir -p "$T/dir.wav/sub.wav"
check_err "input WAV is a directory" "dir.wav: Is a directory" "$SNN" model run dnsmos-bam "$T/dir.wav"
check_err "CSV to an audio model offline" "dnsmos-bam takes audio: give a .wav" "$SNN" model run dnsmos-bam "$IN"
check_err "CSV to an audio model replay" "dnsmos-bam takes audio: give a .wav" \
    "$SNN" replay dnsmos-bam "$IN" --socket "$SOCK"
"$SNN" dnsmos "$T/dir.wav" --p808 none >/dev/null 2>"$T/err"
check "dnsmos: a directory named .wav fails the run" test $? -eq 1
check "dnsmos: a directory named .wav is named" grep -q "sub.wav: Is a directory" "$T/err"
"$SNN" dnsmos "$IN" --p835 dnsmos-p808 >/dev/null 2>&1
check "dnsmos: a wrong --p835 model is a command line mistake (exit 2)" test $? -eq 2
check_err "--host with a port" "--host 127.0.0.1:7878: give the host alone and the port with --port" \
    "$SNN" stats --host 127.0.0.1:7878
check_err "model run: --decision on a regression model" "tinyrsnn-indy01-seed1 makes no decision" \
    "$SNN" model run tinyrsnn-indy01-seed1 "$IN" --decision
cp "$IN" "$T/keep.csv"
check_err "model run: --out the input" "--out $T/keep.csv is the input: it would be overwritten" \
    "$SNN" model run tinyrsnn-indy01-seed1 "$T/keep.csv" --out "$T/keep.csv"
check "model run: the input is kept" cmp "$IN" "$T/keep.csv"
cp "$T/empty.wav" "$T/keep.wav"
check_err "dnsmos: --out a clip" "--out $T/keep.wav is the clip $T/keep.wav: it would be overwritten" \
    "$SNN" dnsmos "$T/keep.wav" --out "$T/keep.wav"
check "dnsmos: the clip is kept" cmp "$T/empty.wav" "$T/keep.wav"
check_err "--silence-ms beyond snnd's limit" "--silence-ms 3600001: expected milliseconds, 0 to 3600000" \
    "$SNN" model run tinyrsnn-indy01-seed1 "$IN" --silence-ms 3600001
check_err "--bin-us beyond 60 s" "--bin-us 60000001: expected microseconds, 1 to 60000000" \
    "$SNN" model run tinyrsnn-indy01-seed1 "$IN" --bin-us 60000001
check_err "--port not a number" "--port abc: expected a port number" "$SNN" stats --port abc
check_err "--socket and --host" "--host 127.0.0.1: give either --socket or --host/--port, not both" \
    "$SNN" stats --socket "$SOCK" --host 127.0.0.1
check_err "models: unknown option" "models: unknown option --bogus" "$SNN" models --bogus
check_err "model train: unknown option last" "model train: unknown option --bogus" "$SNN" model train --bogus
check_err "model train: --epochs too many" "--epochs 1000001: expected a whole number up to 1000000" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T/targets.csv" --epochs 1000001
check_err "model train: --learn nothing" "expected at least one of in, rec, out" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T/targets.csv" --learn ,
check_err "model train: --out a directory" "--out $T/: expected a file path or name, not a directory" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T/targets.csv" --out "$T/"
check_err "model train: --out in a missing directory, before training" \
    "--out $T/nodir/x.safetensors: $T/nodir: No such file or directory" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T/targets.csv" --epochs 0 --out "$T/nodir/x"
{ head -2 "$T/targets.csv"; echo "nan,0"; tail -n +4 "$T/targets.csv"; } >"$T/nan-targets.csv"
check_err "model train: a NaN target" "nan-targets.csv:3: column 1: 'nan' is not a finite number" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T/nan-targets.csv" --epochs 0 --out "$T/nan-trained"
check_err "model train: --interval longer than the input" "--interval 5000 exceeds the 2500 rows" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T/targets.csv" --epochs 1 --interval 5000 --out "$T/iv"
check_err "model train: targets are a directory" "$T: Is a directory" \
    "$SNN" model train "$T/learner.safetensors" "$IN" "$T"
check_err "model train: an ONNX model" "dnsmos-p835.onnx is not an RSNN .safetensors file" \
    "$SNN" model train dnsmos-p835 "$IN" "$T/targets.csv"
check_err "model create: unknown option last" "model create: unknown option --bogus" \
    "$SNN" model create "$T/c.safetensors" --inputs 2 --hidden 2 --outputs 2 --bogus
check_err "model create: OUT without .safetensors" "OUT must end in .safetensors" \
    "$SNN" model create "$T/noext" --inputs 2 --hidden 2 --outputs 2
check_err "model create: --dt a session cannot step" "--dt 100: expected seconds from 0.000001 to 60" \
    "$SNN" model create "$T/c.safetensors" --inputs 2 --hidden 2 --outputs 2 --dt 100
check "model run --help documents --progress and --silence-ms's default" \
    sh -c '"$1" model run --help | grep -q -- "--progress | --no-progress" && "$1" model run --help | grep -q "default 0"' \
    sh "$SNN"
exit $fail
