#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] [TARGET...] -- builds the libFuzzer targets in
# build-fuzz/ (clang, ASan + UBSan, -Dfuzz=true) and runs each for SECONDS
# (default 10) over a scratch copy of its seed corpus and regression inputs.
# New corpus entries and crash inputs go to $FUZZ_WORK (default a fresh
# /tmp/snnd-fuzz.XXXXXX, kept), never into the source tree. Prints one line
# per target (executions, crashes) and exits non-zero if any target crashed,
# leaked, hung (-timeout) or ran out of memory. Each target runs at most
# SECONDS, so the whole run ends within 7 * SECONDS plus the build.
#
# Targets: frames config model onnx nir wav csv (default: all).
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_WORK, FUZZ_JOBS
# (parallel targets, default 1), FUZZ_ARGS (extra libFuzzer flags).
# Longer runs: see tests/fuzz/README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
secs=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(frames config model onnx nir wav csv)
bdir=${FUZZ_BUILD_DIR:-build-fuzz}
work=${FUZZ_WORK:-$(mktemp -d /tmp/snnd-fuzz.XXXXXX)}
mkdir -p "$work"

. deploy/setup.sh
snnd_install_packages clang libclang-rt-14-dev || exit 2
if [ ! -f "$bdir/build.ninja" ]; then
  CC=clang meson setup "$bdir" -Dfuzz=true -Dtests=false -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args="-fsanitize=fuzzer-no-link -fsanitize-coverage-ignorelist=$root/tests/fuzz/coverage_ignore.txt" \
    >/dev/null || exit 2
fi
ninja -C "$bdir" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}") >&2 || exit 2

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp

# top_frame: reads a sanitizer/libFuzzer report, prints the first stack frame
# that is not the sanitizer, libFuzzer, libc or an allocator (where it failed).
top_frame() {
  grep -E '^ *#[0-9]+ ' | grep -vE 'sanitizer|fuzzer::|libc\.so|libc_start|__interceptor|__asan|asan_|in (malloc|calloc|realloc|free) |string/\.\./sysdeps|memmove|memcpy|AlarmCallback|HandleMalloc|MallocHook|libstdc\+\+|operator new' \
    | head -1 | sed 's/^ *#[0-9]* 0x[0-9a-f]* in //'
}

# run_one TARGET: fuzzes for $secs; prints its summary line; returns 1 on a finding.
run_one() {
  local t=$1 dir=$work/$t corpus=$work/$t/corpus log=$work/$t/log
  mkdir -p "$corpus" "$dir/artifacts"
  cp -n "$root/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
  [ -d "$root/tests/fuzz/regress/$t" ] && cp -n "$root/tests/fuzz/regress/$t"/* "$corpus"/ 2>/dev/null
  # The whole run of a target takes at most $secs: libFuzzer stops after
  # about secs - 3 (it overshoots by a unit, then checks leaks at exit), an
  # input slower than secs - 2 is a finding (-timeout), and the process is
  # killed at $secs (exit 124: counted as a finding too).
  local budget=$((secs > 4 ? secs - 3 - secs / 20 : 1)) slow=$((secs > 5 ? secs - 2 : 3))
  local env=() extra=(-timeout=$slow -rss_limit_mb=2500 -max_len=65536)
  if [ "$t" = nir ]; then
    # libhdf5 1.10.8 crashes, hangs and over-allocates on some corrupt files
    # by itself (README.md). fuzz_nir runs for half the time (it stops at
    # its first finding); the rest replays the finding to tell libhdf5's
    # (reported, not a failure) from ours (a failure). For long runs that go
    # on past libhdf5's findings, see README.md (-fork=1 -ignore_crashes=1).
    env=(ASAN_OPTIONS=$ASAN_OPTIONS:suppressions=$root/tests/fuzz/hdf5.supp)
    budget=$((secs / 2 > 1 ? secs / 2 : 1))
    slow=$((budget > 3 ? budget : 3))
    extra=(-timeout=$slow -rss_limit_mb=2500 -malloc_limit_mb=1000 -max_len=65536)
  fi
  local start=$SECONDS
  env "${env[@]}" timeout -k 2 "$secs" \
    "$bdir/tests/fuzz/fuzz_$t" -max_total_time="$budget" -print_final_stats=1 "${extra[@]}" \
    -artifact_prefix="$dir/artifacts/" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
  local rc=$?
  local execs found
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -z "$execs" ] && execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1) # fork mode
  found=$(find "$dir/artifacts" -type f | wc -l)
  if [ "$t" = nir ]; then
    [ "$found" -gt 0 ] && [ "$rc" -ne 124 ] && rc=0 # the finding decides (below)
    local f where known=0 left
    for f in $(find "$dir/artifacts" -type f); do
      left=$((secs - (SECONDS - start)))
      if [ "$left" -lt 2 ]; then
        echo "        not classified (no time left): $f"
        known=$((known + 1))
        continue
      fi
      where=$(env "${env[@]}" timeout -k 1 "$left" "$bdir/tests/fuzz/fuzz_$t" -timeout=$((left > 3 ? left - 1 : 2)) \
                -rss_limit_mb=2500 -malloc_limit_mb=1000 "$f" 2>&1 | top_frame)
      case $where in
        *libhdf5*|'') echo "        libhdf5 or unclassified: $f (${where:-no report within the time left})"; known=$((known + 1)) ;;
        *) echo "        OURS: $f: $where" ;;
      esac
    done
    found=$((found - known))
  fi
  printf '%-7s %8s executions  %s findings  exit %s  (%s)\n' "$t" "${execs:-?}" "$found" "$rc" "$log"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    grep -m3 -E 'ERROR|SUMMARY|runtime error' "$log" | sed 's/^/        /'
    find "$dir/artifacts" -type f | sed 's/^/        input: /'
    return 1
  fi
  return 0
}

failed=0
jobs=${FUZZ_JOBS:-1}
if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do
    run_one "$t" || failed=$((failed + 1))
  done
else
  pids=()
  for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    run_one "$t" >"$work/$t.summary" & pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed=$((failed + 1))
    cat "$work/${targets[$i]}.summary"
  done
fi
echo "fuzz: ${#targets[@]} targets, $failed with findings (work dir $work)"
[ "$failed" -eq 0 ]
