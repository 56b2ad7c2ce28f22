# Settings for the pure layers (model, store, core, ...): no exceptions, ever.
# The same flags apply natively and on wasm32, so a `throw` in a pure module
# fails the native build too.
#
# cairn_pure_library(name [excluded.cc ...]) builds every *.cc in the calling
# directory (globbed, re-checked at build time) into a static library.
function(cairn_pure_library name)
  file(GLOB _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  set(_exclude ${ARGN})
  foreach(_ex IN LISTS _exclude)
    list(FILTER _srcs EXCLUDE REGEX "/${_ex}$")
  endforeach()
  if(NOT _srcs)
    # A layer may be headers-only while it is being written; keep it linkable.
    set(_stub ${CMAKE_CURRENT_BINARY_DIR}/${name}_empty.cc)
    file(CONFIGURE OUTPUT ${_stub} CONTENT "// generated: ${name} has no .cc files yet\n")
    set(_srcs ${_stub})
  endif()
  add_library(${name} STATIC ${_srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_include_directories(${name} SYSTEM PUBLIC ${CAIRN_RAPIDJSON_INCLUDE_DIR})
  target_compile_options(${name} PRIVATE -fno-exceptions)
endfunction()
