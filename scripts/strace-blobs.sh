#!/usr/bin/env bash
# Evidence for "every acknowledged byte is on disk" with records above sled's inline
# limit: runs examples/blob_durability_probe under strace and prints, for the one large
# record's cycle, the blob file being created and written, its fsync, the fsync of
# blobs/, the fdatasync of sled's log, and only then the writer waking the appender.
#
#   scripts/strace-blobs.sh            # installs strace from Debian if missing
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { apt-get update -qq && apt-get install -y -qq strace; }
cargo build -q --example blob_durability_probe
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== the probe, all write sizes"
target/debug/examples/blob_durability_probe "$work/all"
echo "== strace -f -e trace=openat,pwrite64,write,fsync,fdatasync,sync_file_range (one 300 KiB record)"
PROBE_ONLY_LARGE=1 strace -f -e trace=openat,pwrite64,write,fsync,fdatasync,sync_file_range \
  -o "$work/trace" target/debug/examples/blob_durability_probe "$work/large" >/dev/null
# From sled's log being opened to the first wake-up after the log's fdatasync.
awk -v d="$work/large/sled" '
  index($0, d "/db") && /O_RDWR/ {on=1}
  on {print substr($0, 1, 150)}
  on && /fdatasync/ {synced=1}
  synced && /write\(4,|write\([0-9]+, "\\1\\0\\0\\0/ {exit}
' "$work/trace" | sed "s|$work/large|DATA|g"
