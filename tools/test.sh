#!/usr/bin/env bash
# Builds LinguaLinked and runs every test: the Release build, then the unit tests again
# under AddressSanitizer and UndefinedBehaviorSanitizer together with a short run of every fuzz
# target, the threaded tests under ThreadSanitizer, and the aarch64 build under qemu
# (tools/cross_aarch64.sh). Needs ../shared/data beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { echo "== $(date +%T) $*" >&2; }

stage "Release build and every test"
tools/bootstrap.sh build -DLL_BUILD_TOOLS=ON  # the tools too, so that they keep compiling
# The official `openai` client the server's test drives (tests/node, pinned by its lock file).
if command -v npm >/dev/null; then (cd tests/node && npm ci --no-audit --no-fund); fi
(cd build && ctest --output-on-failure -j "$(nproc)")

# The parsers, kernels and text code see untrusted input: run their tests sanitized too (and,
# at the end, fuzz each decoder briefly from its corpus). Built with clang, so the fuzz targets
# (libFuzzer) share the tests' objects.
# Only what runs there is built: the unit tests (tests/*_test.cc but *_e2e_test.cc) and the fuzz
# targets; the Release stage above installed the packages.
stage "ASan+UBSan build (clang), unit tests"
unit_tests=()
for t in tests/*_test.cc; do
  [[ $t == *_e2e_test.cc ]] || unit_tests+=("$(basename "$t" .cc)")
done
fuzz_targets=()
for f in fuzz/*_fuzz.cc; do fuzz_targets+=("$(basename "$f" .cc)"); done
# -O1 and line tables only: sanitizer reports keep their lines, the build takes less time.
cmake -S . -B build-asan -G Ninja -DLL_SANITIZE=ON -DLL_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-asan -j "$(nproc)" --target "${unit_tests[@]}" "${fuzz_targets[@]}"
(cd build-asan && ctest --output-on-failure -j "$(nproc)" -L unit)

# Threads meet in the thread pool (threaded kernels and segments), the transport (sockets
# served from a background thread), the head's generation run and a worker serving on a thread
# of its own while its segments load on others: only those tests are built.
# tools/tsan.supp silences libzmq's and libsodium's thread hand-offs, which the sanitizer cannot see.
stage "ThreadSanitizer build of the threaded tests"
tsan_tests=(matmul_test model_test split_test net_transport_e2e_test generation_run_test worker_roles_e2e_test)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DLL_SANITIZE_THREAD=ON >/dev/null
cmake --build build-tsan -j "$(nproc)" --target "${tsan_tests[@]}"
stage "threaded tests under ThreadSanitizer"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tools/tsan.supp"
(cd build-tsan && ctest --output-on-failure -j "$(nproc)" -R 'Thread|threaded|NetTransport|GenerationRun|WorkerRoles')
# The aarch64 build: its kernel, GGUF, tokenizer, model and split tests under qemu on a NEON and
# on an SVE2 CPU, the self-contained bundle with no arm64 library of this machine visible, and a
# cluster of x86-64 and aarch64 workers (MixedArchE2E, built in the Release build above).
tools/cross_aarch64.sh build
# Last, so that a finding does not hide the other stages' results.
stage "fuzz targets under ASan+UBSan"
tools/fuzz.sh build-asan 20
stage "done"
