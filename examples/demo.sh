#!/usr/bin/env bash
# The demo behind `make demo`: examples/basic profiled for 30 s with a 5 s
# cycle, its profiles written to ./pprofio-data AND uploaded over HTTPS to
# the reference receiver (examples/ingest-server) on loopback, which keeps
# them in ./pprofio-data/received. Then `go tool pprof -top` of one CPU and
# one heap profile.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
DATA=pprofio-data
rm -rf "$DATA"
mkdir -p "$DATA/receiver"

echo "== building the reference receiver"
(cd examples/ingest-server && $GO build -o "../../$DATA/receiver/ingest-server" .)
"$DATA/receiver/ingest-server" -addr 127.0.0.1:0 -api-key demo-key -data "$DATA/received" \
    -ca-out "$DATA/receiver/ca.pem" -ready-file "$DATA/receiver/url" >"$DATA/receiver/log" 2>&1 &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$DATA/receiver/url" ] && break; sleep 0.1; done
url=$(cat "$DATA/receiver/url")
echo "== receiver listening on $url"

echo "== running examples/basic for 30 s (one cycle every 5 s, a 2 s CPU window)"
$GO run ./examples/basic -duration 30s -rate 5s -cpu 2s -out "./$DATA" \
    -ingest-url "$url" -ca-file "$DATA/receiver/ca.pem" -api-key demo-key -spool-dir "$DATA/spool"

kill $receiver 2>/dev/null || true
wait $receiver 2>/dev/null || true

echo
echo "== written locally:"
find "$DATA/basic" -name '*.pb.gz' | sort
echo
echo "== received by the ingest server over HTTPS:"
find "$DATA/received" -name '*.pb.gz' | sort

cpu=$(ls "$DATA"/basic/cpu/*.pb.gz | head -1)
heap=$(ls "$DATA"/received/basic/heap/*.pb.gz | head -1)
echo
echo "== go tool pprof -top $cpu"
$GO tool pprof -top -nodecount=12 "$cpu"
echo
echo "== go tool pprof -top -sample_index=alloc_space $heap"
$GO tool pprof -top -nodecount=12 -sample_index=alloc_space "$heap"
