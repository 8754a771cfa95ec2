#!/usr/bin/env bash
# Builds LinguaLinked for 64-bit ARM Linux (phones, Raspberry Pi) on an x86-64 Debian machine and
# tests it under qemu's user-mode emulator:
#  1. installs the cross compiler, qemu-user and the arm64 multiarch -dev packages (once; as root
#     or through sudo, as is step 4's mount namespace);
#  2. cross-builds `lingualinked` and the tests below in build-aarch64 (cmake/aarch64-linux-gnu.cmake);
#  3. runs those tests under qemu-aarch64 twice, on a Cortex-A72 (NEON only) and on qemu's `max`
#     CPU (SVE and SVE2), checks that the row operations ran on SVE2 and SVE there, and that `run`
#     on stories260K gives the reference text on both;
#  4. makes the self-contained bundle build-aarch64/bundle (lingualinked, its arm64 libraries and
#     the dynamic loader, started by tools/bundle_launcher.sh) and runs `run` on stories260K with it
#     in a mount namespace that hides every arm64 library of this machine;
#  5. runs MixedArchE2E: an x86-64 worker and the bundle as an aarch64 worker under qemu, profiled,
#     planned and driven by an x86-64 head (X86_BUILD_DIR, configured with LL_AARCH64_BUNDLE).
# Usage: tools/cross_aarch64.sh [X86_BUILD_DIR]   (default: build)
#
# Under qemu run the tests of the code that differs between x86-64 and aarch64, or depends on
# what the architecture leaves open (char signedness, alignment, the SIMD target Highway picks):
# the SIMD kernels against their scalar twins on every target the CPU has (matmul_test,
# ops_test, quant_blocks_32_test), GGUF parsing (gguf_test), the tokenizers (tokenizer_test),
# stories260K's greedy text against llama2.c's (model_test) and split equivalence (split_test).
# The other tests exercise the same portable code as on x86-64 (sockets, processes, the planner)
# and would cost CI minutes it does not have under emulation; the mixed cluster covers the aarch64
# worker's side of the protocol.
set -euo pipefail
cd "$(dirname "$0")/.."
x86_build=${1:-build}
stage() { echo "== $(date +%T) aarch64: $*" >&2; }
fail() { echo "cross_aarch64: $*" >&2; exit 1; }
as_root=()
[[ $(id -u) -eq 0 ]] || as_root=(sudo)

qemu_tests=(matmul_test ops_test quant_blocks_32_test gguf_test tokenizer_test model_test split_test)
# Only those are built here (ctest names every other one *_NOT_BUILT; ServeNode.* drive a server
# with node). Every cut of up to six segments is left to the x86-64 build, as it takes 9 minutes
# emulated (38 s on x86-64); split_test's multithreaded segments and three shards of stories260K
# check aarch64 segments.
qemu_excluded='_NOT_BUILT$|^ServeNode\.|^SplitEquivalence\..*EveryCutUpToSixSegments$'
stories=$(realpath ../shared/data/models/stories260K/stories260K.gguf)
reference=$(realpath ../shared/data/reference/stories260K/greedy_t0_n200.txt)
same_as_reference() { cmp -s <(cat "$reference"; echo) "$1"; }  # `run` ends the text with a newline

stage "packages"
packages=(g++-aarch64-linux-gnu qemu-user nlohmann-json3-dev libcli11-dev)
for p in libhwy-dev libfmt-dev libgtest-dev libzmq3-dev libprotobuf-dev libsodium-dev coinor-libcbc-dev \
         libcpp-httplib-dev libicu-dev; do
  packages+=("$p:arm64")
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  dpkg --print-foreign-architectures | grep -qx arm64 || "${as_root[@]}" dpkg --add-architecture arm64
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stage "build (${qemu_tests[*]} lingualinked)"
cmake -S . -B build-aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  >/dev/null
cmake --build build-aarch64 -j "$(nproc)" --target lingualinked "${qemu_tests[@]}"

# The emulator's CPU comes from QEMU_CPU (the toolchain file's emulator and the bundle's both read it).
for cpu in cortex-a72 max; do
  stage "tests under qemu-aarch64 -cpu $cpu"
  (cd build-aarch64 && QEMU_CPU=$cpu ctest --output-on-failure -j "$(nproc)" -E "$qemu_excluded")
  # The row operations and attention run on every target the CPU has: SVE2 and SVE as well as
  # NEON on `max` (ops_test reports which it ran). The matrix products run NEON on both: their
  # tiles keep arrays of vectors, which SVE's sizeless vectors cannot be (src/kernels/matmul_simd.cc),
  # and `run` names the matrix products' target.
  [[ $cpu == max ]] && want_ops="SVE2 SVE NEON" || want_ops="NEON"
  QEMU_CPU=$cpu qemu-aarch64 build-aarch64/tests/ops_test --gtest_filter=OpsTest.MatchScalarOnEveryTarget \
    --gtest_output=xml:build-aarch64/ops-$cpu.xml >/dev/null || fail "ops_test on $cpu failed"
  grep -q "name=\"targets\" value=\"$want_ops\"" build-aarch64/ops-$cpu.xml ||
    fail "$cpu: the row operations did not run on $want_ops: $(grep -o 'name="targets" value="[^"]*"' build-aarch64/ops-$cpu.xml)"
  QEMU_CPU=$cpu qemu-aarch64 build-aarch64/lingualinked run -m "$stories" --temp 0 -n 200 \
    >build-aarch64/run-$cpu.out 2>build-aarch64/run-$cpu.err || fail "run on $cpu: $(cat build-aarch64/run-$cpu.err)"
  grep -q "threads (NEON)" build-aarch64/run-$cpu.err || fail "$cpu: the matrix products are not NEON: $(head -1 build-aarch64/run-$cpu.err)"
  same_as_reference build-aarch64/run-$cpu.out || fail "$cpu: run's text is not the reference"
  echo "$cpu: row operations on $want_ops, matrix products on NEON; run's text equals the reference" >&2
done

stage "self-contained bundle"
bundle=build-aarch64/bundle
rm -rf "$bundle" && mkdir -p "$bundle/lib"
aarch64-linux-gnu-strip -o "$bundle/lingualinked.bin" build-aarch64/lingualinked
install -m 755 tools/bundle_launcher.sh "$bundle/lingualinked"
# Every library the binary needs, and theirs: the cross compiler's runtime (libc, libstdc++, the
# loader) first, then the arm64 multiarch packages'.
library_dirs=(/usr/aarch64-linux-gnu/lib /usr/lib/aarch64-linux-gnu)
copy_needed() {
  local name dir
  for name in $(aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [[ -e $bundle/lib/$name ]] && continue
    for dir in "${library_dirs[@]}" ""; do
      [[ -n $dir ]] || fail "$1 needs $name, which is in none of ${library_dirs[*]}"
      [[ -e $dir/$name ]] && break
    done
    cp -L "$dir/$name" "$bundle/lib/$name"
    copy_needed "$bundle/lib/$name"
  done
}
copy_needed "$bundle/lingualinked.bin"
cp -L /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$bundle/lib/"
echo "$bundle: $(ls "$bundle/lib" | wc -l) libraries, $(du -sh "$bundle" | cut -f1)" >&2

# This machine's arm64 libraries (multiarch, the cross runtime, the loader) hidden by empty
# mounts, QEMU_LD_PREFIX and LD_LIBRARY_PATH empty: only the bundle's own files can load.
"${as_root[@]}" unshare -m bash -c '
  set -e
  mount -t tmpfs none /usr/lib/aarch64-linux-gnu
  mount -t tmpfs none /usr/aarch64-linux-gnu
  ! test -e /lib/ld-linux-aarch64.so.1  # the system loader, a link into the hidden folder
  QEMU_LD_PREFIX= LD_LIBRARY_PATH= LINGUALINKED_EMULATOR=qemu-aarch64 "$0" run -m "$1" --temp 0 -n 200
' "$bundle/lingualinked" "$stories" >build-aarch64/bundle-run.out 2>build-aarch64/bundle-run.err ||
  fail "the bundle's run: $(cat build-aarch64/bundle-run.err)"
same_as_reference build-aarch64/bundle-run.out || fail "the bundle's text is not the reference"
echo "the bundle, with no arm64 library of this machine visible, prints the reference text" >&2

stage "mixed cluster: x86-64 head and worker, aarch64 worker under qemu"
cmake -S . -B "$x86_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLL_AARCH64_BUNDLE="$PWD/$bundle" >/dev/null
cmake --build "$x86_build" -j "$(nproc)" --target lingualinked mixed_arch_e2e_test
(cd "$x86_build" && ctest --output-on-failure -R MixedArchE2E)
stage "done"
