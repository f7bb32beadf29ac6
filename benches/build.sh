#!/usr/bin/env bash
# End-to-end benchmark of `sailbulk convert` and `sailbulk split`.
#
# Generates a deterministic CSV (default 1 GiB, ~115-byte rows with quoted fields, embedded
# newlines, unicode, leading-zero zips) and an update file of the same size, then measures in one
# run and on the same warm page cache:
#   - `wc -l` on each (the floor),
#   - the csv crate on one thread writing NDJSON (the baseline), and `mlr --icsv --ojsonl cat`
#     when miller is installed,
#   - `sailbulk convert` (mapping, type inference, and every record checked by the validator),
#     and with --no-verify (fields checked as written, no second pass of the validator),
#   - the baseline and `sailbulk convert` again writing to a tmpfs (/dev/shm), where no disk is
#     written (`convert` syncs its output, the baseline does not),
#   - `sailbulk split --max-bytes 100MB` with and without validation, beside two floors for
#     any tool that writes the bytes again: `cp` into the page cache, and `cp` then `sync` of
#     the copy (durable, as split's parts are: each is synced before it is renamed into place),
#     and GNU `split -C 100m` (not synced) when it is installed.
# The commands run in RUNS rounds (default 3), each round running every command once; the table
# shows the median wall time, MB/s of input, the ratio to `wc -l` on the same input (the median
# of the ratios within a round), and the peak RSS.
#
# Usage: benches/build.sh [SIZE]; environment: RUNS, BENCH_DIR as for benches/validate.sh.
set -euo pipefail

size=${1:-1G}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=benches/measure.sh
source "$root/benches/measure.sh"

build -p sailbulk
build -p sailbulk-parse --example gen_updates
build -p sailbulk-build --example csv_baseline
csv=$dir/profiles-$size.csv
json=$dir/updates-$size.json
generate "$csv" --format csv --bytes "$size" --seed 42
generate "$json" --bytes "$size" --seed 42
out=$dir/out
cat "$csv" "$json" > /dev/null

# Where the tmpfs rows write (see below).
mem=/dev/shm/sailbulk-bench-out.json
before_run() { rm -rf "$out" "$out.json" "$mem"; }
declare -A base
# on INPUT NAME CMD...: measure, remembering which input the ratio to `wc -l` is against.
on() {
  base[$2]=$1
  measure "${@:2}"
}

on csv "wc -l (csv)" wc -l "$csv"
on csv "csv crate, 1 thread, NDJSON" sh -c "'$bin/examples/csv_baseline' '$csv' > '$out.json'"
if command -v mlr > /dev/null; then
  on csv "mlr --icsv --ojsonl cat" sh -c "mlr --icsv --ojsonl cat '$csv' > '$out.json'"
fi
on csv "sailbulk convert" "$bin/sailbulk" convert "$csv" -o "$out.json"
on csv "sailbulk convert --no-verify" "$bin/sailbulk" convert --no-verify "$csv" -o "$out.json"
# The same two into memory (a tmpfs), where no disk is written: what the CPU alone allows.
# (`convert` syncs its output, the baseline does not, so on disk the two also differ by that.)
if [[ -d /dev/shm && -w /dev/shm && $(stat -f -c %T /dev/shm) == tmpfs ]]; then
  on csv "csv crate, NDJSON to tmpfs" sh -c "'$bin/examples/csv_baseline' '$csv' > '$mem'"
  on csv "sailbulk convert to tmpfs" "$bin/sailbulk" convert "$csv" -o "$mem"
fi
on json "wc -l (json)" wc -l "$json"
on json "cp (page cache only)" cp "$json" "$out.json"
on json "cp, then sync the copy" sh -c "cp '$json' '$out.json' && sync '$out.json'"
if split --version 2> /dev/null | grep -q GNU; then
  on json "GNU split -C 100m (not synced)" sh -c "mkdir -p '$out' && split -C 100m '$json' '$out/x'"
fi
on json "sailbulk split --no-validate" "$bin/sailbulk" split --no-validate --max-bytes 100MB "$json" -o "$out"
on json "sailbulk split (validating)" "$bin/sailbulk" split --skip-invalid --max-bytes 100MB "$json" -o "$out"
run_all
rm -rf "$out" "$out.json" "$mem"

printf '\ninputs: %s (%d bytes), %s (%d bytes); median of %d rounds\n\n' "$csv" "$(stat -c %s "$csv")" "$json" "$(stat -c %s "$json")" "$runs"
printf '| %-32s | %8s | %8s | %9s | %9s |\n' command seconds "MB/s" "x wc -l" "peak RSS"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" ---------- ---------- ----------- -----------
for name in "${order[@]}"; do
  input=${base[$name]}
  if [[ $input == csv ]]; then file=$csv; wc="wc -l (csv)"; else file=$json; wc="wc -l (json)"; fi
  awk -v n="$name" -v s="${secs[$name]}" -v b="$(stat -c %s "$file")" -v w="$(ratio "$name" "$wc")" -v r="${rss[$name]}" 'BEGIN {
    printf "| %-32s | %8.2f | %8.0f | %9.1f | %6.0f MB |\n", n, s, (s > 0 ? b / s / 1e6 : 0), w, r / 1024
  }'
done
for name in "sailbulk split --no-validate" "sailbulk split (validating)"; do
  awk -v n="$name" -v r="$(ratio "$name" "cp, then sync the copy")" 'BEGIN { printf "%s takes %.2fx the time of a synced cp of its input\n", n, r }'
done
if [[ -n ${secs["sailbulk convert to tmpfs"]:-} ]]; then
  awk -v r="$(ratio "csv crate, NDJSON to tmpfs" "sailbulk convert to tmpfs")" 'BEGIN { printf "sailbulk convert to tmpfs runs at %.2fx the speed of the csv crate to tmpfs\n", r }'
fi
for name in "sailbulk convert" "sailbulk convert --no-verify"; do
  awk -v n="$name" -v r="$(ratio "csv crate, 1 thread, NDJSON" "$name")" 'BEGIN { printf "%s runs at %.2fx the speed of the single-threaded csv crate\n", n, r }'
done
printf 'each round, in seconds:\n'
for name in "${order[@]}"; do printf '  %-32s %s\n' "$name" "${took[$name]}"; done
