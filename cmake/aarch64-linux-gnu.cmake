# Cross build for 64-bit ARM Linux (phones, Raspberry Pi) with Debian's g++-aarch64-linux-gnu and
# the arm64 multiarch -dev packages (tools/cross_aarch64.sh installs both and uses this file).
# Tests run through qemu-aarch64: ctest and gtest's test discovery prefix the emulator, and the
# emulated CPU is chosen by QEMU_CPU (e.g. cortex-a72 for NEON only, max for SVE and SVE2).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Libraries and CMake package files of the arm64 multiarch packages: /usr/lib/aarch64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# Programs run at build time (protoc) are the host's; libraries and headers the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# pkg-config reads only the arm64 .pc files (and the architecture-independent ones).
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# The arm64 multiarch libc (a dependency of the -dev packages) puts the loader where qemu looks.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
