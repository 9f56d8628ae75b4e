#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each and prints, per target, the
# executions and the crashes. Usage: scripts/fuzz.sh SECONDS [TARGET...]
#
# cargo-fuzz needs a nightly toolchain: it is installed with rustup if missing (and
# cargo-fuzz with `cargo install`), and the script says so. New inputs the fuzzer finds
# go to target/fuzz-corpus/<target> (not committed); the committed seeds in
# fuzz/corpus/<target> are read. A crash's input is copied to fuzz/corpus/<target>/ as
# crash-<name>, where the normal suite replays it (src/fuzzing.rs, tests/api/fuzz_corpus.rs).
set -euo pipefail
secs=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")/.."
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
echo "== building ${#targets[@]} targets (nightly, address sanitizer)"
(cd fuzz && cargo +nightly fuzz build -O) >/dev/null
summary=()
status=0
for t in "${targets[@]}"; do
  work="target/fuzz-corpus/$t"
  mkdir -p "$work" "fuzz/artifacts/$t"
  log="target/fuzz-$t.log"
  echo "== $t for ${secs}s (log: $log)"
  set +e
  (cd fuzz && cargo +nightly fuzz run -O "$t" "../$work" "corpus/$t" -- \
      -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1) >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
  for c in $(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \)); do
    cp "$c" "fuzz/corpus/$t/$(basename "$c")"
  done
  corpus=$(find "$work" -type f | wc -l)
  summary+=("$t: ${execs:-?} executions, $crashes crashes, corpus $corpus inputs, exit $rc")
  [ "$rc" = 0 ] && [ "$crashes" = 0 ] || status=1
done
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit $status
