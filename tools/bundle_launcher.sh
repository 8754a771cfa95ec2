#!/bin/sh
# Starts lingualinked from its bundle (tools/cross_aarch64.sh makes it): the bundled dynamic
# loader loads the bundled libraries only, so the bundle runs on any aarch64 Linux (a Raspberry Pi,
# an Android phone in Termux or `adb shell`), whatever libraries that system has or lacks.
# LINGUALINKED_EMULATOR names a program that runs aarch64 programs on another machine, e.g.
# `qemu-aarch64` on an x86-64 PC without binfmt_misc.
dir=$(dirname "$(readlink -f "$0")")
# The program's own executable is the loader: what it starts again (demo's workers) starts here.
export LINGUALINKED_LAUNCHER="$dir/lingualinked"
exec $LINGUALINKED_EMULATOR "$dir/lib/ld-linux-aarch64.so.1" --inhibit-cache --library-path "$dir/lib" \
  --argv0 "$0" "$dir/lingualinked.bin" "$@"
