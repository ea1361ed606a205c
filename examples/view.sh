#!/usr/bin/env bash
# The demo behind `make view`: the reference receiver with its web UI on
# loopback, and examples/basic profiled with every profile type (and a
# goroutine leak, so that a leak alert shows) for VIEW_DURATION (default
# 60 s, one cycle every 2 s), uploading over HTTPS to the receiver and
# writing its OutputDir. The UI shows both and follows the run live; it
# keeps serving after the run until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
DATA=pprofio-view
DURATION=${VIEW_DURATION:-60s}
ADDR=${VIEW_ADDR:-127.0.0.1:0}
rm -rf "$DATA"
mkdir -p "$DATA/receiver"

echo "== building the reference receiver"
(cd examples/ingest-server && $GO build -o "../../$DATA/receiver/ingest-server" .)
"$DATA/receiver/ingest-server" -addr 127.0.0.1:0 -api-key demo-key -data "$DATA/received" \
    -ca-out "$DATA/receiver/ca.pem" -ready-file "$DATA/receiver/url" \
    -ui-addr "$ADDR" -ui-local "$DATA/local" >"$DATA/receiver/log" 2>&1 &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -s "$DATA/receiver/url" ] && break; sleep 0.1; done
url=$(cat "$DATA/receiver/url")
ui=$(grep -o 'UI on http://[^ ]*' "$DATA/receiver/log" | head -1 | cut -d' ' -f3)
echo "== receiver listening on $url"
echo
echo "   web UI: $ui"
echo

echo "== running examples/basic for $DURATION (every profile type, one cycle every 2 s, leaking goroutines)"
$GO run ./examples/basic -duration "$DURATION" -rate 2s -cpu 1s -out "./$DATA/local" \
    -profiles cpu,heap,goroutine,mutex,block -leak 20 \
    -ingest-url "$url" -ca-file "$DATA/receiver/ca.pem" -api-key demo-key -spool-dir "$DATA/spool"

echo
echo "== the run is over; the web UI keeps serving its data at $ui (Ctrl-C to stop)"
wait $receiver
