# SPDX-License-Identifier: Apache-2.0
# Install and export rules (docs/install.md), included by the top-level
# CMakeLists.txt once every library target exists.
#
# One build installs both kinds of library: the static ones, and shared ones
# (SONAME libfabric_<module>.so.0) linked from the same objects when
# FABRIC_BUILD_SHARED is ON (the default). With BUILD_SHARED_LIBS=ON the
# libraries themselves are shared and no static ones are built. Each kind
# has its own export file (fabric-static-targets.cmake,
# fabric-shared-targets.cmake) and install component (fabric_static,
# fabric_shared); fabricConfig.cmake loads one of them. Headers, the package
# config and fabric.pc are component fabric_dev, the binaries fabric_bin.
include(CMakePackageConfigHelpers)

# Exported as fabric::<module>: the four a program links against and the
# modules they depend on.
set(FABRIC_EXPORTED_MODULES
  base codec spool peers discovery node work_queue pubsub reqrep)
set(FABRIC_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/fabric")

# fabric_install_libraries(KIND TARGETS...): installs KIND ("static" or
# "shared") libraries in component fabric_KIND with their export file.
function(fabric_install_libraries kind)
  install(TARGETS ${ARGN}
    EXPORT fabric-${kind}-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fabric_${kind}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fabric_${kind})
  install(EXPORT fabric-${kind}-targets
    NAMESPACE fabric::
    DESTINATION ${FABRIC_CMAKE_INSTALL_DIR}
    COMPONENT fabric_${kind})
endfunction()

set(module_targets "")
foreach(module IN LISTS FABRIC_EXPORTED_MODULES)
  set_target_properties(fabric_${module} PROPERTIES
    EXPORT_NAME ${module}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}
    INSTALL_RPATH "$ORIGIN")  # used when shared (BUILD_SHARED_LIBS)
  list(APPEND module_targets fabric_${module})
endforeach()

if(BUILD_SHARED_LIBS)
  fabric_install_libraries(shared ${module_targets})
else()
  fabric_install_libraries(static ${module_targets})
endif()

# FABRIC_BUILD_SHARED: the static libraries' objects are compiled as PIC and
# linked a second time into shared twins (fabric_<module>_shared, installed
# as libfabric_<module>.so.0), which costs links, not compiles. Each twin
# has its static library's link interface with fabric_X replaced by
# fabric_X_shared and the static-only $<LINK_ONLY:...> entries dropped.
if(NOT BUILD_SHARED_LIBS AND FABRIC_BUILD_SHARED)
  set(shared_targets "")
  set(module_regex "^fabric_(base|codec|spool|peers|discovery|node|work_queue|pubsub|reqrep)$")
  foreach(module IN LISTS FABRIC_EXPORTED_MODULES)
    set(static_target fabric_${module})
    set(shared_target fabric_${module}_shared)
    set_target_properties(${static_target} PROPERTIES
      POSITION_INDEPENDENT_CODE ON)
    add_library(${shared_target} SHARED $<TARGET_OBJECTS:${static_target}>)
    get_target_property(link ${static_target} LINK_LIBRARIES)
    get_target_property(interface ${static_target} INTERFACE_LINK_LIBRARIES)
    get_target_property(includes ${static_target}
                        INTERFACE_INCLUDE_DIRECTORIES)
    foreach(list_name IN ITEMS link interface)
      if(NOT ${list_name})
        set(${list_name} "")
      endif()
      list(TRANSFORM ${list_name} REPLACE "${module_regex}" "\\0_shared")
    endforeach()
    list(FILTER interface EXCLUDE REGEX "^\\$<LINK_ONLY:")
    target_link_libraries(${shared_target} PRIVATE ${link})
    set_target_properties(${shared_target} PROPERTIES
      INTERFACE_LINK_LIBRARIES "${interface}"
      LINKER_LANGUAGE CXX
      OUTPUT_NAME fabric_${module}
      # Installed, each finds the fabric libraries it needs beside itself,
      # whatever the prefix (a program's RUNPATH covers only its own).
      INSTALL_RPATH "$ORIGIN"
      EXPORT_NAME ${module}
      VERSION ${PROJECT_VERSION}
      SOVERSION ${PROJECT_VERSION_MAJOR})
    if(includes)
      set_target_properties(${shared_target} PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${includes}")
    endif()
    list(APPEND shared_targets ${shared_target})
  endforeach()
  fabric_install_libraries(shared ${shared_targets})
endif()

# The public headers: what <fabric/node.h>, <fabric/plugin.h> (the extension
# point behind Node::AttachPlugin) and the pattern headers include, and
# nothing else. No codec/, internal/ or zmq/msgpack header is reachable from
# them; tests/install/install_test.sh checks the installed tree.
install(FILES
    ${CMAKE_CURRENT_LIST_DIR}/types.h
    ${CMAKE_CURRENT_LIST_DIR}/limits.h
    ${CMAKE_CURRENT_LIST_DIR}/node.h
    ${CMAKE_CURRENT_LIST_DIR}/node_options.h
    ${CMAKE_CURRENT_LIST_DIR}/plugin.h
    ${CMAKE_CURRENT_LIST_DIR}/log.h
    "${FABRIC_GENERATED_INCLUDE_DIR}/fabric/version.h"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric
  COMPONENT fabric_dev)
install(FILES
    ${CMAKE_CURRENT_LIST_DIR}/base/clock.h
    ${CMAKE_CURRENT_LIST_DIR}/base/node_id.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric/base
  COMPONENT fabric_dev)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/peers/peer_info.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric/peers
  COMPONENT fabric_dev)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/spool/spool.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric/spool
  COMPONENT fabric_dev)
install(FILES
    ${PROJECT_SOURCE_DIR}/patterns/work_queue/producer.h
    ${PROJECT_SOURCE_DIR}/patterns/work_queue/task.h
    ${PROJECT_SOURCE_DIR}/patterns/work_queue/worker.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric/work_queue
  COMPONENT fabric_dev)
install(FILES
    ${PROJECT_SOURCE_DIR}/patterns/pubsub/message.h
    ${PROJECT_SOURCE_DIR}/patterns/pubsub/publisher.h
    ${PROJECT_SOURCE_DIR}/patterns/pubsub/subscriber.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric/pubsub
  COMPONENT fabric_dev)
install(FILES
    ${PROJECT_SOURCE_DIR}/patterns/reqrep/client.h
    ${PROJECT_SOURCE_DIR}/patterns/reqrep/server.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fabric/reqrep
  COMPONENT fabric_dev)

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/fabricConfig.cmake.in
  "${PROJECT_BINARY_DIR}/fabricConfig.cmake"
  INSTALL_DESTINATION ${FABRIC_CMAKE_INSTALL_DIR})
# 0.x: a new minor version may break the API, so only 0.1.* satisfies 0.1.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/fabricConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/fabricConfig.cmake"
    "${PROJECT_BINARY_DIR}/fabricConfigVersion.cmake"
  DESTINATION ${FABRIC_CMAKE_INSTALL_DIR}
  COMPONENT fabric_dev)

# fabric.pc: relocatable (the prefix is found from the file's own place), so
# `cmake --install --prefix DIR` needs no reconfigure.
set(FABRIC_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
set(FABRIC_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
if(NOT IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  file(RELATIVE_PATH FABRIC_PC_TO_PREFIX
    "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" FABRIC_PC_TO_PREFIX "${FABRIC_PC_TO_PREFIX}")
  set(FABRIC_PC_PREFIX "\${pcfiledir}/${FABRIC_PC_TO_PREFIX}")
  set(FABRIC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  if(NOT IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(FABRIC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
else()
  set(FABRIC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/fabric.pc.in
  "${PROJECT_BINARY_DIR}/fabric.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/fabric.pc"
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT fabric_dev)
# The binaries `fabric` and `fabric-relay` are installed by tools/.
