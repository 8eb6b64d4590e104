#!/usr/bin/env bash
# `make run`: the bundled mock provider on 127.0.0.1:9001 and the gateway on
# conf/tollgate.toml (or $TOLLGATE_CONFIG) in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TOLLGATE_BIN_DIR:-target/release}
CONFIG=${TOLLGATE_CONFIG:-conf/tollgate.toml}

mock_pid=""
if grep -q '127.0.0.1:9001' "$CONFIG"; then
  "$BIN/tollgate-mock" --listen 127.0.0.1:9001 --threads 2 &
  mock_pid=$!
  trap 'kill $mock_pid 2>/dev/null || true' EXIT
fi
"$BIN/tollgate" run -c "$CONFIG"
