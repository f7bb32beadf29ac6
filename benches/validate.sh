#!/usr/bin/env bash
# End-to-end benchmark of `sailbulk validate` on a generated update file.
#
# Generates a deterministic update file (default 1 GiB, ~200-byte lines: vars of several types,
# nested vars, lists, optouts, ids with keys, unicode) and a gzip copy, then measures, in one run
# and on the same warm page cache:
#   - `wc -l` (the floor: reading the bytes),
#   - serde_json parsing every line into a Value on two threads (the baseline: JSON syntax only,
#     no rules), and for comparison serde_json's weaker IgnoredAny, sonic-rs and simd-json,
#   - `sailbulk validate` with 1 and 2 threads (every rule, line and column positions),
#   - decompression alone with the validator's gzip backend, and `sailbulk validate` on the .gz.
# The commands run in RUNS rounds (default 3), each round running every command once; the table
# shows the median wall time, MB/s (10^6 bytes of uncompressed input per second), the ratios to
# `wc -l` and to serde_json (each the median of the ratios within a round), and the peak RSS.
#
# Usage: benches/validate.sh [SIZE] (SIZE as the generator takes it: 1G, 256M, ...)
# Environment: RUNS (default 3), BENCH_DIR (default ${TMPDIR:-/tmp}/sailbulk-bench).
set -euo pipefail

size=${1:-1G}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/measure.sh
source "$root/benches/measure.sh"

build -p sailbulk
build -p sailbulk-parse --example gen_updates --example json_baseline --example gunzip_count
data=$dir/updates-$size.json
generate "$data" --bytes "$size" --seed 42
if [[ ! -s $data.gz ]]; then
  echo "compressing $data ..." >&2
  gzip -1 -c "$data" > "$data.gz.tmp"
  mv "$data.gz.tmp" "$data.gz"
fi
bytes=$(stat -c %s "$data")
cat "$data" "$data.gz" > /dev/null # warm the page cache

measure "wc -l" wc -l "$data"
measure "serde_json, every line, 2 threads" "$bin/examples/json_baseline" serde_json "$data" 2
measure "serde_json IgnoredAny (weaker), 2 threads" "$bin/examples/json_baseline" serde_json-ignored "$data" 2
measure "sonic-rs, every line, 2 threads" "$bin/examples/json_baseline" sonic-rs "$data" 2
measure "simd-json, every line, 2 threads" "$bin/examples/json_baseline" simd-json "$data" 2
measure "sailbulk validate --threads 1" "$bin/sailbulk" validate --threads 1 "$data"
measure "sailbulk validate --threads 2" "$bin/sailbulk" validate --threads 2 "$data"
measure "gzip decompression alone (zlib-rs)" "$bin/examples/gunzip_count" "$data.gz"
measure "sailbulk validate file.gz --threads 2" "$bin/sailbulk" validate --threads 2 "$data.gz"
run_all

serde="serde_json, every line, 2 threads"
printf '\ninput: %s, %d bytes, %s lines; median of %d rounds\n\n' "$data" "$bytes" "$(wc -l < "$data")" "$runs"
printf '| %-42s | %8s | %8s | %9s | %9s | %9s |\n' command seconds "MB/s" "x wc -l" "x serde" "peak RSS"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..44})" ---------- ---------- ----------- ----------- -----------
for name in "${order[@]}"; do
  s=${secs[$name]}
  awk -v n="$name" -v s="$s" -v b="$bytes" -v w="$(ratio "$name" "wc -l")" -v j="$(ratio "$name" "$serde")" -v r="${rss[$name]}" 'BEGIN {
    printf "| %-42s | %8.2f | %8.0f | %9.1f | %9.2f | %6.0f MB |\n", n, s, (s > 0 ? b / s / 1e6 : 0), w, j, r / 1024
  }'
done
gz=$(ratio "gzip decompression alone (zlib-rs)" "sailbulk validate file.gz --threads 2")
awk -v r="$gz" 'BEGIN { printf "\ngzip input runs at %.0f%% of the speed of decompression alone\n", 100 * r }'
printf 'each round, in seconds:\n'
for name in "${order[@]}"; do printf '  %-42s %s\n' "$name" "${took[$name]}"; done
