#!/usr/bin/env bash
# Builds LinguaLinked and runs every test: the Release build, then the unit tests again
# under AddressSanitizer and UndefinedBehaviorSanitizer. Needs ../shared/data beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh build -DLL_BUILD_TOOLS=ON  # the tools too, so that they keep compiling
(cd build && ctest --output-on-failure -j "$(nproc)")

# The parsers, kernels and text code see untrusted input: run their tests sanitized too.
tools/bootstrap.sh build-asan -DLL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L unit)
