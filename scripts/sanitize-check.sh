#!/usr/bin/env bash
# Builds the runtime, zero-run and the fuzz targets with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer (no MLIR, no CUDA) into build-sanitize/, runs
# the runtime tests under the sanitizers and each libFuzzer target for a
# bounded time over a copy of its seed corpus (fuzz/corpus/). Fails on any
# test failure, sanitizer report or fuzzer crash. Called by scripts/test.sh;
# run alone after scripts/setup.sh.
#   ZERO_SANITIZE_BUILD_DIR  build directory (default build-sanitize)
#   ZERO_FUZZ_SECONDS        seconds per fuzz target (default 20; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${ZERO_SANITIZE_BUILD_DIR:-build-sanitize}
[[ $build = /* ]] || build=$root/$build
fuzz_seconds=${ZERO_FUZZ_SECONDS:-20}
start=$SECONDS
tmp=$(mktemp -d -t zero-sanitize.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

say() { echo "sanitize-check: $*"; }
# Prints a log's first sanitizer or libFuzzer report, else the failures a
# test printed and the log's tail, and fails the step.
fail() {
  say "FAILED: $1; from its log:"
  local at
  at=$(grep -m1 -n -E '==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer' "$2" | cut -d: -f1 || true)
  if [ -n "$at" ]; then
    sed -n "${at},$((at + 40))p" "$2" | grep -v -E '^ +(0x[0-9a-f]+:|[A-Z][A-Za-z ]+: +[0-9a-f ]+$)'
  else
    grep -E '^(FAIL |\[  FAILED  \]|.*Failure$|FAILED: |.*: error: )' "$2" | head -n 20
    tail -n 12 "$2"
  fi | sed 's/^/  | /'
  say "FAILED after $((SECONDS - start)) s"
  exit 1
}

# Sanitizer settings. Any report aborts the process, so the test or fuzzer
# that ran it fails.
asan_common=abort_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1
# Open MPI leaks by design (state freed at exit or never). Only leaks
# allocated inside its libraries and components are suppressed; matching them
# needs full malloc stacks (fast_unwind_on_malloc=0 below: Open MPI has no
# frame pointers) and components that stay loaded until exit.
printf 'leak:%s\n' libmpi.so libopen-pal.so libopen-rte.so libpmix.so libhwloc.so libevent mca_ >"$tmp/lsan.supp"
export LSAN_OPTIONS=suppressions=$tmp/lsan.supp:print_suppressions=0
export OMPI_MCA_mca_base_component_disable_dlclose=1

# Configure and build.
t=$SECONDS
if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
    -DZERO_ENABLE_COMPILER=OFF -DZERO_ENABLE_CUDA=OFF \
    -DZERO_SANITIZE=address,undefined -DZERO_FUZZ=ON >"$tmp/configure.log" 2>&1 ||
    fail "configure" "$tmp/configure.log"
fi
# `all` here is the runtime, its tests, zero-run and the fuzz targets (the
# MLIR side of frontends/ is excluded).
cmake --build "$build" -j "$(nproc)" >"$tmp/build.log" 2>&1 || fail "build" "$tmp/build.log"
build_s=$((SECONDS - t))

# The runtime tests under the sanitizers: the GoogleTests (kernels, plans) in
# parallel, then the MPI collectives and the launcher tests (zero-run under
# mpirun) one at a time: the launcher's kill/stop/watchdog cases are timed,
# and ASan with full malloc stacks is slow. Those two get a second try when
# the first fails (the main ctest run has none, so a flaky case still shows
# there); a sanitizer report in the log fails the step even if a retry passed.
mpi_tests='^(runtime_mpi_collectives|zero_run_launcher)$'
t=$SECONDS
ctest_ok=true
ASAN_OPTIONS=$asan_common:detect_stack_use_after_return=1 \
  ctest --test-dir "$build" --output-on-failure -j "$(nproc)" -E "$mpi_tests" >"$tmp/ctest.log" 2>&1 || ctest_ok=false
if $ctest_ok; then
  ASAN_OPTIONS=$asan_common:fast_unwind_on_malloc=0 \
    ctest --test-dir "$build" --output-on-failure --repeat until-pass:2 -R "$mpi_tests" >>"$tmp/ctest.log" 2>&1 ||
    ctest_ok=false
fi
grep -q -E '==[0-9]+==ERROR|runtime error:' "$tmp/ctest.log" && ctest_ok=false
$ctest_ok || fail "runtime tests under ASan+UBSan" "$tmp/ctest.log"
tests=0
for n in $(grep -Eo 'tests failed out of [0-9]+' "$tmp/ctest.log" | grep -Eo '[0-9]+$'); do tests=$((tests + n)); done
test_s=$((SECONDS - t))

# Each fuzz target over a copy of its seed corpus, in $tmp (nothing is
# written into the repository). A crash, sanitizer report, leak, timeout or
# running out of memory fails the step; the reproducer is printed in base64.
fuzzed=""
if [ "$fuzz_seconds" -gt 0 ]; then
  for exe in "$build"/bin/*_fuzz; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    corpus=fuzz/corpus/${name%_fuzz}
    mkdir -p "$tmp/$name/corpus" "$tmp/$name/artifacts"
    cp "$corpus"/* "$tmp/$name/corpus/" 2>/dev/null || true
    t=$SECONDS
    if ! (cd "$tmp/$name" && ASAN_OPTIONS=$asan_common "$exe" -max_total_time="$fuzz_seconds" \
            -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$tmp/$name/artifacts/" \
            corpus >"$tmp/$name/log" 2>&1); then
      for a in "$tmp/$name"/artifacts/*; do
        [ -f "$a" ] || continue
        say "$name: reproducer $(basename "$a") ($(stat -c %s "$a") bytes; first 4 KiB in base64):"
        head -c 4096 "$a" | base64 -w 100 | sed 's/^/  /'
      done
      fail "fuzz target $name (reproduce: base64 -d > crash; $exe crash)" "$tmp/$name/log"
    fi
    final_stat() { grep -Eo "stat::$1: *[0-9]+" "$tmp/$name/log" | grep -Eo '[0-9]+$' || echo "?"; }
    cov=$(grep -Eo 'cov: [0-9]+' "$tmp/$name/log" | tail -n1 | grep -Eo '[0-9]+' || echo "?")
    say "$name: $(final_stat number_of_executed_units) inputs in $((SECONDS - t)) s" \
        "($(final_stat average_exec_per_sec) exec/s, coverage $cov), no crash"
    fuzzed+=" $name"
  done
fi

say "OK in $((SECONDS - start)) s: build ${build_s} s; $tests runtime tests under ASan+UBSan in ${test_s} s;" \
    "fuzzed${fuzzed:- nothing} for ${fuzz_seconds} s each"
