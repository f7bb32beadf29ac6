#!/usr/bin/env bash
# Drives a fresh `sailbulk sim` with the official Python client (sailthru-client, pinned in
# requirements.txt), installed into a virtual environment under target/.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${INTEROP_VENV:-target/interop-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/interop/requirements.txt

cargo build --quiet --bin sailbulk
# Where cargo put it (CARGO_TARGET_DIR moves the build out of target/).
bin=${CARGO_TARGET_DIR:-target}/debug/sailbulk
out=$(mktemp)
err=$(mktemp)
"$bin" sim --listen 127.0.0.1:0 --api-key interop-key --api-secret interop-secret \
    >"$out" 2>"$err" &
pid=$!
cleanup() {
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$out" "$err"
}
trap cleanup EXIT

url=
for _ in $(seq 100); do
    url=$(sed -n '1s/^listening on //p' "$out")
    [ -n "$url" ] && break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "interop: the simulator did not start:" >&2
    cat "$err" >&2
    exit 1
fi

status=0
SIM_URL=$url SIM_API_KEY=interop-key SIM_API_SECRET=interop-secret PYTHONUTF8=1 \
    "$venv/bin/python" tests/interop/sailthru_client_interop.py || status=$?
if [ "$status" -ne 0 ]; then
    echo "interop: the simulator's request log:" >&2
    cat "$err" >&2
fi
exit "$status"
