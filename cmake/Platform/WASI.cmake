# Platform/WASI.cmake — platform description for wasm32-wasi.
#
# CMake 3.25 ships no WASI platform module; the toolchain file
# (cmake/wasm32-wasi.cmake) puts this directory on CMAKE_MODULE_PATH so that
# CMAKE_SYSTEM_NAME=WASI resolves here instead of warning "System is unknown".
# WASI preview1 has static linking only and produces .wasm command modules.
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_STATIC_LIBRARY_PREFIX "lib")
set(CMAKE_STATIC_LIBRARY_SUFFIX ".a")
set(CMAKE_SYSTEM_INCLUDE_PATH /include)
set(CMAKE_SYSTEM_LIBRARY_PATH /lib)

# This file is included again after Compiler/Clang-*.cmake, which appends
# "-O3 -DNDEBUG" to the Release defaults; wasm Release builds use -O2 (smaller
# modules, the configuration known to work here).
set(CMAKE_C_FLAGS_RELEASE_INIT "-O2 -DNDEBUG")
set(CMAKE_CXX_FLAGS_RELEASE_INIT "-O2 -DNDEBUG")
