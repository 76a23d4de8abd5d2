#!/usr/bin/env bash
# Measures the platform's per-request overhead with wrk (Debian package `wrk`):
# the host's native /health route against a no-op plugin route (hello /ping) and a
# catalog read (/api/v1/categories: one SQL query in the plugin), with the plugins in
# "fresh" and in "reuse" instance mode. Loopback only, bounded in time.
# Usage: scripts/overhead.sh [seconds per run, default 5] [connections, default 32]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
CONNS=${2:-32}
command -v wrk >/dev/null || { echo "install wrk (apt-get install -y wrk)" >&2; exit 1; }
cargo build -q --release -p kirana
cargo build -q --release --target wasm32-wasip2 -p hello -p catalog -p auth -p cart

rps() { wrk -t2 -c"$CONNS" -d"${SECS}s" --latency "$1" | awk '/Requests\/sec/ {print $2} / 50%/ {p50=$2} / 99%/ {p99=$2} END {print p50, p99}' | paste -sd' '; }

for mode in fresh reuse; do
  dir=$(mktemp -d)
  cat > "$dir/k.toml" <<TOML
listen = "127.0.0.1:18181"
data_dir = "$dir/data"
log_level = "warn"
[plugins.auth]
instances = "$mode"
[plugins.catalog]
instances = "$mode"
[plugins.cart]
instances = "$mode"
[plugins.hello]
file = "hello.wasm"
instances = "$mode"
TOML
  ./target/release/kirana serve --config "$dir/k.toml" >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18181/ready >/dev/null && break; sleep 0.1; done
  base=$(rps http://127.0.0.1:18181/health)
  ping=$(rps http://127.0.0.1:18181/api/v1/hello/ping)
  cats=$(rps http://127.0.0.1:18181/api/v1/categories)
  kill $pid; wait $pid 2>/dev/null || true
  rm -rf "$dir"
  read -r b_rps b_50 b_99 <<<"$base"
  read -r p_rps p_50 p_99 <<<"$ping"
  read -r c_rps c_50 c_99 <<<"$cats"
  printf '%-6s native /health      %10s req/s  p50 %8s  p99 %8s\n' "$mode" "$b_rps" "$b_50" "$b_99"
  printf '%-6s plugin /hello/ping  %10s req/s  p50 %8s  p99 %8s  = %.2fx native\n' "$mode" "$p_rps" "$p_50" "$p_99" "$(echo "$p_rps / $b_rps" | bc -l)"
  printf '%-6s plugin /categories  %10s req/s  p50 %8s  p99 %8s  = %.2fx native\n' "$mode" "$c_rps" "$c_50" "$c_99" "$(echo "$c_rps / $b_rps" | bc -l)"
done
