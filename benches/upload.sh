#!/usr/bin/env bash
# End-to-end benchmark of `sailbulk upload` against `sailbulk sim` on loopback.
#
# Generates a deterministic update file (default 900M, 900 MiB: an update job takes at most 10^9 bytes),
# starts the simulator (release build, jobs held pending so that only the transfer is measured),
# then measures in one run and on the same warm page cache:
#   - `wc -l` on the file (the floor),
#   - curl sending the same file as a signed multipart upload (the baseline: a plain HTTP client
#     with the body streamed from disk),
#   - `sailbulk upload --no-validate` (hashing for the journal, streamed multipart upload),
#   - `sailbulk upload` (every line validated first, then the same).
# The commands run in RUNS rounds (default 3), each round running every command once; the journal
# is removed before each run so that every run sends. The table shows the median wall time, MB/s,
# the ratios to `wc -l` and to curl (each the median of the ratios within a round), and the peak
# RSS of the uploading process.
#
# Usage: benches/upload.sh [SIZE]; environment: RUNS, BENCH_DIR as for benches/validate.sh.
set -euo pipefail

size=${1:-900M}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v curl > /dev/null || { echo "benches/upload.sh needs curl for its baseline" >&2; exit 2; }
# shellcheck source=benches/measure.sh
source "$root/benches/measure.sh"

build -p sailbulk
build -p sailbulk-parse --example gen_updates
file=$dir/upload-$size.json
generate "$file" --seed 7 --bytes "$size"
cat "$file" > /dev/null

key=bench-key
secret=bench-secret
state=$dir/sim-state
rm -rf "$state"
"$bin/sailbulk" sim --listen 127.0.0.1:0 --api-key "$key" --api-secret "$secret" --quiet \
  --state "$state" --job-delay 1h --rate-limit 'POST:/job=100000' > "$dir/sim.out" 2> "$dir/sim.err" &
sim=$!
trap 'kill -INT $sim 2> /dev/null || true; wait $sim 2> /dev/null || true; rm -rf "$state"' EXIT
url=
for _ in $(seq 100); do
  url=$(sed -n '1s/^listening on //p' "$dir/sim.out")
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n $url ]] || { cat "$dir/sim.err" >&2; exit 2; }
printf '%s\n' "$secret" > "$dir/secret"

# The signature the official clients compute: md5 of the secret and the sorted values.
json='{"job":"update"}'
sig=$(printf '%s' "$secret$(printf '%s\n' "$key" json "$json" | LC_ALL=C sort | tr -d '\n')" | md5sum | cut -d' ' -f1)

before_run() { rm -f "$dir/upload-journal.json" "$state"/files/*; }

measure "wc -l" wc -l "$file"
measure "curl, signed multipart upload" curl -sS -o /dev/null --fail \
  -F "api_key=$key" -F format=json -F "json=$json" -F "sig=$sig" -F "file=@$file" "$url/job"
measure "sailbulk upload --no-validate" "$bin/sailbulk" upload --no-validate --no-progress \
  --api-url "$url" --api-key "$key" --api-secret-file "$dir/secret" "$file"
measure "sailbulk upload (validating)" "$bin/sailbulk" upload --no-progress \
  --api-url "$url" --api-key "$key" --api-secret-file "$dir/secret" "$file"
run_all
rm -f "$dir/upload-journal.json"

bytes=$(stat -c %s "$file")
printf '\ninput: %s (%d bytes, %d lines); median of %d rounds\n\n' "$file" "$bytes" "$(wc -l < "$file")" "$runs"
printf '| %-32s | %8s | %8s | %9s | %9s | %9s |\n' command seconds "MB/s" "x wc -l" "x curl" "peak RSS"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" ---------- ---------- ----------- ----------- -----------
for name in "${order[@]}"; do
  awk -v n="$name" -v s="${secs[$name]}" -v b="$bytes" -v w="$(ratio "$name" "wc -l")" \
    -v c="$(ratio "$name" "curl, signed multipart upload")" -v r="${rss[$name]}" 'BEGIN {
    printf "| %-32s | %8.2f | %8.0f | %9.1f | %9.2f | %6.0f MB |\n", n, s, (s > 0 ? b / s / 1e6 : 0), w, c, r / 1024
  }'
done
