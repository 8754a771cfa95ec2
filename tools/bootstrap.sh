#!/usr/bin/env bash
# Installs the Debian packages LinguaLinked builds with (once) and builds it.
# Usage: tools/bootstrap.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libhwy-dev libfmt-dev nlohmann-json3-dev libcli11-dev
          libspdlog-dev libgtest-dev clang libclang-rt-14-dev libbenchmark-dev libzmq3-dev cppzmq-dev protobuf-compiler
          libprotobuf-dev libsodium-dev coinor-libcbc-dev libcpp-httplib-dev iproute2 libicu-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm run the server's test with the official `openai` client (any packaging of them will do).
command -v npm >/dev/null || missing+=(nodejs npm)
# chromium runs the web page's test, headless (driven by puppeteer-core from tests/node).
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_dir=${1:-build}
shift || true
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
