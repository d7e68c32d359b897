# Helpers so that each folder's CMakeLists.txt stays a few lines long.

set(AHA_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# aha_add_library(<name> [USES lib...] [TORCH]): aha_<name> from every .cpp in the calling folder.
# The name is the folder's path with '_' for '/' (policy/model -> aha_policy_model).
# TORCH links LibTorch and reuses the one precompiled LibTorch header (build time on 2 cores).
function(aha_add_library folder)
  cmake_parse_arguments(ARG "TORCH" "" "USES" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*.cpp")
  if(NOT sources)  # a folder with headers only so far
    add_library(aha_${folder} INTERFACE)
    target_include_directories(aha_${folder} INTERFACE "${PROJECT_SOURCE_DIR}")
    target_link_libraries(aha_${folder} INTERFACE ${ARG_USES})
    return()
  endif()
  add_library(aha_${folder} STATIC ${sources})
  target_include_directories(aha_${folder} PUBLIC "${PROJECT_SOURCE_DIR}")
  target_compile_options(aha_${folder} PRIVATE ${AHA_WARNINGS})
  target_link_libraries(aha_${folder} PUBLIC ${ARG_USES})
  if(ARG_TORCH)
    aha_use_torch(aha_${folder})
  endif()
endfunction()

# aha_add_cuda_kernels(<name> <file.cu>...): in a CUDA build only, aha_<name>_cuda from the
# given CUDA sources, linked into aha_<name> (whose .cpp files call it under AHA_WITH_CUDA).
# The sources include no LibTorch, and share LibTorch's CUDA runtime library rather than a
# static copy.
function(aha_add_cuda_kernels folder)
  if(NOT AHA_WITH_CUDA)
    return()
  endif()
  add_library(aha_${folder}_cuda STATIC ${ARGN})
  target_include_directories(aha_${folder}_cuda PRIVATE "${PROJECT_SOURCE_DIR}")
  set_target_properties(aha_${folder}_cuda PROPERTIES CUDA_RUNTIME_LIBRARY Shared POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(aha_${folder} PRIVATE aha_${folder}_cuda)
endfunction()

# One shared precompiled header for every target that includes LibTorch.
function(aha_use_torch target)
  target_link_libraries(${target} PUBLIC aha::torch)
  if(NOT TARGET aha_torch_pch)
    add_library(aha_torch_pch OBJECT "${PROJECT_SOURCE_DIR}/cmake/torch_pch.cpp")
    target_link_libraries(aha_torch_pch PUBLIC aha::torch)
    target_include_directories(aha_torch_pch PUBLIC "${PROJECT_SOURCE_DIR}")
    target_compile_options(aha_torch_pch PRIVATE ${AHA_WARNINGS})
    target_precompile_headers(aha_torch_pch PRIVATE "${PROJECT_SOURCE_DIR}/cmake/torch_pch.h")
  endif()
  target_precompile_headers(${target} REUSE_FROM aha_torch_pch)
  target_compile_options(${target} PRIVATE ${AHA_WARNINGS})
endfunction()

# aha_add_test_suite(<name> USES lib... [TORCH]): test_<name>, one GoogleTest binary from the
# calling folder's *.cpp (tests/policy/model -> test_policy_model); its tests carry the label
# <name>, so `ctest -L policy` runs every policy sub-library's tests.
function(aha_add_test_suite folder)
  cmake_parse_arguments(ARG "TORCH" "" "USES" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*.cpp")
  if(NOT sources)
    return()
  endif()
  set(target test_${folder})
  add_executable(${target} ${sources})
  target_link_libraries(${target} PRIVATE ${ARG_USES} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${target} PRIVATE
    AHA_SOURCE_DIR="${PROJECT_SOURCE_DIR}" AHA_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(ARG_TORCH)
    aha_use_torch(${target})
  else()
    target_compile_options(${target} PRIVATE ${AHA_WARNINGS})
  endif()
  include(GoogleTest)
  gtest_discover_tests(${target} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS ${folder})
endfunction()
