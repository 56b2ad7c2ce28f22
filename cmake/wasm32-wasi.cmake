# wasm32-wasi.cmake — CMake toolchain for the wasm32-wasi build of the pure layers.
#
# Uses Debian's clang-14 + lld-14 with wasi-libc and the wasm32 libc++/libc++abi
# (packages clang-14 lld-14 wasi-libc libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
# libclang-rt-14-dev-wasm32; see scripts/install-deps). Test binaries run under
# Node's WASI through scripts/wasm-run.mjs, so `ctest` works unchanged.
#
# Header hygiene: with `--sysroot=/usr`, clang searches /usr/include after
# /usr/include/wasm32-wasi, so a host header (glibc, OpenSSL, sqlite3.h, ...)
# would silently leak into the wasm build. Instead we point the sysroot at a
# small shim directory that holds only the wasm32-wasi include and lib trees.
# Third-party header-only libraries are added explicitly (rapidjson: see
# CAIRN_RAPIDJSON_INCLUDE_DIR in the top-level CMakeLists.txt).
#
# Usage: cmake -G Ninja -B build-wasm -DCMAKE_TOOLCHAIN_FILE=cmake/wasm32-wasi.cmake \
#          -DCAIRN_PURE_ONLY=ON -DCMAKE_BUILD_TYPE=Release
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")  # Platform/WASI.cmake

set(CAIRN_WASI_TARGET wasm32-wasi)
set(CAIRN_WASI_HOST_INCLUDE /usr/include/wasm32-wasi)
set(CAIRN_WASI_HOST_LIB /usr/lib/wasm32-wasi)

find_program(CAIRN_WASI_CLANG NAMES clang-14 REQUIRED)
find_program(CAIRN_WASI_CLANGXX NAMES clang++-14 REQUIRED)
# clang runs wasm-ld itself (-fuse-ld=lld); checked here for a clear error.
find_program(CAIRN_WASI_LLD NAMES wasm-ld-14 REQUIRED)
# GNU ar cannot index wasm objects; the LLVM tools (package llvm-14) can.
find_program(CAIRN_WASI_AR NAMES llvm-ar-14 REQUIRED)
find_program(CAIRN_WASI_RANLIB NAMES llvm-ranlib-14 REQUIRED)
find_program(CAIRN_NODE NAMES node nodejs REQUIRED)
set(CMAKE_C_COMPILER "${CAIRN_WASI_CLANG}")
set(CMAKE_CXX_COMPILER "${CAIRN_WASI_CLANGXX}")
set(CMAKE_AR "${CAIRN_WASI_AR}" CACHE FILEPATH "archiver for wasm32")
set(CMAKE_RANLIB "${CAIRN_WASI_RANLIB}" CACHE FILEPATH "ranlib for wasm32")
set(CMAKE_C_COMPILER_TARGET ${CAIRN_WASI_TARGET})
set(CMAKE_CXX_COMPILER_TARGET ${CAIRN_WASI_TARGET})

if(NOT EXISTS "${CAIRN_WASI_HOST_INCLUDE}/stdio.h" OR NOT EXISTS "${CAIRN_WASI_HOST_INCLUDE}/c++/v1/vector")
  message(FATAL_ERROR "wasm32-wasi headers missing under ${CAIRN_WASI_HOST_INCLUDE}: run scripts/install-deps")
endif()

# The sysroot shim lives in the build tree. try_compile() projects re-read this
# file from their own binary dirs, so forward the chosen path to them.
if(NOT CAIRN_WASI_SYSROOT)
  set(CAIRN_WASI_SYSROOT "${CMAKE_BINARY_DIR}/wasi-sysroot")
endif()
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES CAIRN_WASI_SYSROOT)
if(NOT EXISTS "${CAIRN_WASI_SYSROOT}/lib/wasm32-wasi")
  file(MAKE_DIRECTORY "${CAIRN_WASI_SYSROOT}/include" "${CAIRN_WASI_SYSROOT}/lib")
  file(CREATE_LINK "${CAIRN_WASI_HOST_INCLUDE}" "${CAIRN_WASI_SYSROOT}/include/wasm32-wasi" SYMBOLIC)
  file(CREATE_LINK "${CAIRN_WASI_HOST_LIB}" "${CAIRN_WASI_SYSROOT}/lib/wasm32-wasi" SYMBOLIC)
endif()
set(CMAKE_SYSROOT "${CAIRN_WASI_SYSROOT}")

# No exceptions anywhere in the wasm build (libc++ for wasm32 has none either):
# a `throw` fails to compile, and library calls that would throw abort instead.
set(CMAKE_C_FLAGS_INIT "")
set(CMAKE_CXX_FLAGS_INIT "-fno-exceptions")
# (Release means -O2 here; see Platform/WASI.cmake.)
# The default WASI stack is 64 KiB; gtest and deep recursion in parsers need more.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-fuse-ld=lld -Wl,-z,stack-size=1048576")

# Run .wasm test binaries through Node's WASI (ctest and add_test use this).
cmake_path(ABSOLUTE_PATH CMAKE_CURRENT_LIST_DIR NORMALIZE OUTPUT_VARIABLE _cairn_cmake_dir)
cmake_path(GET _cairn_cmake_dir PARENT_PATH _cairn_root)
set(CMAKE_CROSSCOMPILING_EMULATOR "${CAIRN_NODE};${_cairn_root}/scripts/wasm-run.mjs")

set(CMAKE_FIND_ROOT_PATH "${CAIRN_WASI_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
