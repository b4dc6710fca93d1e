# CMake package configuration of libvfiipc, nfy's client library:
#
#   find_package(vfiipc REQUIRED)
#   target_link_libraries(app PRIVATE vfiipc::vfiipc)          # libvfiipc.so
#   target_link_libraries(app PRIVATE vfiipc::vfiipc_static)   # libvfiipc.a
#
# Also sets vfiipc_INCLUDE_DIRS and vfiipc_LIBRARIES. Relocatable: every
# path is found from this file's place, <prefix>/lib/cmake/vfiipc/. On the
# terminal the library is /opt/nfy/lib/libvfiipc.so: installed programs
# need that directory in their rpath (CMAKE_INSTALL_RPATH) or the
# loader's path.

get_filename_component(_vfiipc_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)

include(CMakeFindDependencyMacro)
find_dependency(Threads)

if(NOT TARGET vfiipc::vfiipc)
  add_library(vfiipc::vfiipc SHARED IMPORTED)
  set_target_properties(vfiipc::vfiipc PROPERTIES
    IMPORTED_LOCATION "${_vfiipc_prefix}/lib/libvfiipc.so"
    IMPORTED_SONAME "libvfiipc.so"
    INTERFACE_INCLUDE_DIRECTORIES "${_vfiipc_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;rt")

  add_library(vfiipc::vfiipc_static STATIC IMPORTED)
  set_target_properties(vfiipc::vfiipc_static PROPERTIES
    IMPORTED_LOCATION "${_vfiipc_prefix}/lib/libvfiipc.a"
    INTERFACE_INCLUDE_DIRECTORIES "${_vfiipc_prefix}/include"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;rt;util;dl;m")
endif()

set(vfiipc_INCLUDE_DIRS "${_vfiipc_prefix}/include")
set(vfiipc_LIBRARIES vfiipc::vfiipc)
unset(_vfiipc_prefix)
