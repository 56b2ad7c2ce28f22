# WasmGTest.cmake — GoogleTest (and GoogleMock) built from Debian's sources
# (/usr/src/googletest, package `googletest`) for the wasm32-wasi build.
#
# wasm32-wasi has no exceptions, threads or fd redirection, so gtest is built
# with GTEST_HAS_EXCEPTIONS=0, GTEST_HAS_STREAM_REDIRECTION=0, pthreads off and
# -fno-exceptions forced onto its targets (its own CMake asks for -fexceptions).
# Exports the same imported-target names find_package(GTest) gives natively:
# GTest::gtest, GTest::gtest_main, GTest::gmock, GTest::gmock_main.
include_guard(GLOBAL)

set(CAIRN_GTEST_SOURCE_DIR "/usr/src/googletest" CACHE PATH "GoogleTest source tree")
if(NOT EXISTS "${CAIRN_GTEST_SOURCE_DIR}/CMakeLists.txt")
  message(FATAL_ERROR "GoogleTest sources not found in ${CAIRN_GTEST_SOURCE_DIR}: run scripts/install-deps")
endif()

set(gtest_disable_pthreads ON CACHE BOOL "" FORCE)
set(gtest_force_shared_crt OFF CACHE BOOL "" FORCE)
set(BUILD_GMOCK ON CACHE BOOL "" FORCE)
set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)

# gtest is third-party code: keep our -Werror and warning set away from it.
get_directory_property(_cairn_saved_options COMPILE_OPTIONS)
set_directory_properties(PROPERTIES COMPILE_OPTIONS "")
add_subdirectory("${CAIRN_GTEST_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/third_party/googletest" EXCLUDE_FROM_ALL)
set_directory_properties(PROPERTIES COMPILE_OPTIONS "${_cairn_saved_options}")

foreach(_t gtest gtest_main gmock gmock_main)
  get_target_property(_flags ${_t} COMPILE_FLAGS)
  if(_flags)
    string(REPLACE "-fexceptions" "-fno-exceptions" _flags "${_flags}")
    set_target_properties(${_t} PROPERTIES COMPILE_FLAGS "${_flags}")
  endif()
  target_compile_options(${_t} PRIVATE -fno-exceptions -w)
  target_compile_definitions(${_t} PUBLIC GTEST_HAS_EXCEPTIONS=0 GTEST_HAS_STREAM_REDIRECTION=0)
endforeach()

# GoogleTest >= 1.11 defines these aliases itself; older sources do not.
foreach(_t gtest gtest_main gmock gmock_main)
  if(NOT TARGET GTest::${_t})
    add_library(GTest::${_t} ALIAS ${_t})
  endif()
endforeach()
