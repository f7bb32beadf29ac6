# Shared by the benchmark scripts (sourced, not run): settings, the build, test data, timing.
#
# Needs $root (the repository). Sets runs (from RUNS, default 3), dir (from BENCH_DIR, default
# ${TMPDIR:-/tmp}/sailbulk-bench; created) and bin (where the release build puts its programs).
runs=${RUNS:-3}
dir=${BENCH_DIR:-${TMPDIR:-/tmp}/sailbulk-bench}
bin=$root/target/release
mkdir -p "$dir"

# build ARGS...: a quiet release build of the packages and examples ARGS name (`-p sailbulk`).
build() {
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" "$@"
}

# generate FILE ARGS...: writes the output of `gen_updates ARGS` to FILE, unless FILE is already
# there; through a temporary name, so an interrupted run leaves no partial FILE behind.
generate() {
  local file=$1
  shift
  if [[ -s $file ]]; then return; fi
  echo "generating $file ..." >&2
  "$bin/examples/gen_updates" "$@" > "$file.tmp"
  mv "$file.tmp" "$file"
}

# measure NAME CMD...: runs CMD $runs times (after the function `before_run`, if defined), and
# records in secs[NAME] the median wall time and in rss[NAME] the largest peak RSS (KB).
# Declares secs, rss and order.
declare -A secs rss
order=()
measure() {
  local name=$1
  shift
  local times=() peak=0 t
  for _ in $(seq "$runs"); do
    if declare -F before_run > /dev/null; then before_run; fi
    /usr/bin/time -f '%e %M' -o "$dir/time.out" "$@" > /dev/null 2> /dev/null || true
    t=$(tail -n 1 "$dir/time.out")
    times+=("${t% *}")
    ((${t#* } > peak)) && peak=${t#* }
  done
  secs[$name]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  rss[$name]=$peak
  order+=("$name")
}
