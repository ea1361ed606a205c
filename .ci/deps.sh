#!/usr/bin/env bash
# Installs what building, testing and demonstrating pprofio needs, if it is
# missing: Debian's C libraries and tools, a headless browser for the UI
# tests, and a check that Go is present.
set -euo pipefail

# libcurl4 and ca-certificates are what examples/deploy/Dockerfile's runtime
# stage installs; tests/deploy assembles its minimal roots from them.
# chromium loads the web UI in tests/viewer (headless); graphviz draws
# pprof's graph view in it.
pkgs=(gcc make pkg-config zlib1g-dev libcurl4-openssl-dev libprotobuf-c-dev
      protobuf-c-compiler libcriterion-dev libcurl4 ca-certificates
      chromium fonts-dejavu-core graphviz)

if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if ((${#missing[@]} > 0)); then
        echo "deps: installing ${missing[*]}"
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    echo "deps: not a Debian system; install the equivalents of: ${pkgs[*]}" >&2
fi

if ! command -v go >/dev/null 2>&1; then
    echo "deps: the Go toolchain (1.22 or newer) is required; put it on PATH (it is looked for in /usr/local/go/bin too)" >&2
    exit 1
fi
for lib in zlib libcurl libprotobuf-c; do
    pkg-config --exists "$lib" || { echo "deps: pkg-config cannot find $lib" >&2; exit 1; }
done
