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

# measure NAME CMD...: registers CMD under NAME; `run_all` then runs every registered command.
# run_all: runs the commands in rounds, each round running every command once in the order they
# were registered (after the function `before_run`, if defined), $runs rounds in all. On a shared
# machine the load changes from minute to minute: interleaved, every command meets the same
# spells of it, where back-to-back runs would leave one command all the slow ones. Records in
# secs[NAME] the median wall time, in rss[NAME] the largest peak RSS (KB), and in took[NAME] the
# time of each round.
# ratio NAME BASE: the median over the rounds of NAME's time over BASE's in the same round (a
# ratio steadier than that of the two medians when the load drifts).
# Declares secs, rss, took and order.
declare -A secs rss took cmds
order=()
measure() {
  local name=$1
  shift
  cmds[$name]=$(printf '%q ' "$@")
  order+=("$name")
}
run_all() {
  local name t round
  for name in "${order[@]}"; do
    took[$name]=""
    rss[$name]=0
  done
  for round in $(seq "$runs"); do
    echo "round $round of $runs ..." >&2
    for name in "${order[@]}"; do
      if declare -F before_run > /dev/null; then before_run; fi
      eval "set -- ${cmds[$name]}"
      /usr/bin/time -f '%e %M' -o "$dir/time.out" "$@" > /dev/null 2> /dev/null || true
      t=$(tail -n 1 "$dir/time.out")
      took[$name]+="${t% *} "
      ((${t#* } > ${rss[$name]})) && rss[$name]=${t#* }
    done
  done
  for name in "${order[@]}"; do
    secs[$name]=$(printf '%s\n' ${took[$name]} | median)
  done
}
ratio() {
  paste <(printf '%s\n' ${took[$1]}) <(printf '%s\n' ${took[$2]}) | awk '{print ($2 > 0 ? $1 / $2 : 0)}' | median
}
# median: the median of the numbers on standard input, one per line.
median() {
  sort -g | awk '{a[NR]=$1} END {print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'
}
