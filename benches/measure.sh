# Shared by the benchmark scripts (sourced, not run).
#
# measure NAME CMD...: runs CMD $runs times (after the function `before_run`, if defined), and
# records in secs[NAME] the median wall time and in rss[NAME] the largest peak RSS (KB).
# Needs: $runs, $dir; declares secs, rss and order.
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
