# Finds LibTorch and defines the imported target aha::torch.
#
# Where LibTorch comes from, first match wins:
#   1. Torch_DIR or the LIBTORCH environment variable (a LibTorch unpacked by the user),
#   2. CMAKE_PREFIX_PATH (the GPU machine passes its Python's torch here),
#   3. the project-local virtual environment .venv made by scripts/setup.sh.
#
# AHA_CUDA=AUTO builds with CUDA when a GPU is visible (nvidia-smi lists one) and LibTorch
# was built with CUDA. Without CUDA we link libtorch_cpu and libc10 directly, so that
# pip's CUDA wheel works on a machine with no CUDA libraries beyond cudart/cupti (which
# the set-up script installs as small wheels): libtorch.so would drag in libtorch_cuda.
set(AHA_CUDA "AUTO" CACHE STRING "Build with CUDA: ON, OFF or AUTO (on when a GPU is visible)")

if(NOT Torch_DIR AND DEFINED ENV{LIBTORCH})
  set(Torch_DIR "$ENV{LIBTORCH}/share/cmake/Torch")
endif()
if(NOT Torch_DIR)
  file(GLOB _venv_torch "${CMAKE_SOURCE_DIR}/.venv/lib/python3*/site-packages/torch/share/cmake/Torch")
  find_path(_torch_config_dir TorchConfig.cmake PATH_SUFFIXES share/cmake/Torch Torch HINTS ${_venv_torch})
  if(_torch_config_dir)
    set(Torch_DIR "${_torch_config_dir}")
  endif()
endif()
if(NOT Torch_DIR OR NOT EXISTS "${Torch_DIR}/TorchConfig.cmake")
  message(FATAL_ERROR "LibTorch not found. Run scripts/setup.sh (it installs torch==2.11.0 into .venv), "
                      "or set LIBTORCH / -DTorch_DIR=<libtorch>/share/cmake/Torch.")
endif()
get_filename_component(AHA_TORCH_PREFIX "${Torch_DIR}/../../.." ABSOLUTE)
# LibTorch's version from its package file (the CPU path below never calls find_package), for
# the test of `aha --version`, which prints the headers' TORCH_VERSION.
file(STRINGS "${Torch_DIR}/TorchConfigVersion.cmake" _torch_version_line REGEX "set\\(PACKAGE_VERSION \"")
string(REGEX REPLACE ".*\"([^\"]+)\".*" "\\1" AHA_TORCH_VERSION "${_torch_version_line}")

if(AHA_CUDA STREQUAL "AUTO")
  execute_process(COMMAND nvidia-smi -L RESULT_VARIABLE _smi OUTPUT_VARIABLE _smi_out ERROR_QUIET)
  if(_smi EQUAL 0 AND _smi_out MATCHES "GPU" AND EXISTS "${AHA_TORCH_PREFIX}/lib/libtorch_cuda.so")
    set(AHA_WITH_CUDA ON)
  else()
    set(AHA_WITH_CUDA OFF)
  endif()
else()
  set(AHA_WITH_CUDA ${AHA_CUDA})
endif()

add_library(aha::torch INTERFACE IMPORTED)
if(AHA_WITH_CUDA)
  if(NOT CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  set(TORCH_CUDA_ARCH_LIST "9.0" CACHE STRING "")
  # Our own kernels (rollout/*.cu) are compiled only in this configuration. nvcc from PATH or
  # CUDACXX, else the toolkit's usual place.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS "/usr/local/cuda/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc")
  endif()
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(Torch REQUIRED)
  # Keep libtorch_cuda linked even though no symbol of it is named: without it LibTorch
  # registers no CUDA backend and torch::cuda::is_available() is false.
  target_link_options(aha::torch INTERFACE "LINKER:--no-as-needed")
  target_link_libraries(aha::torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_definitions(aha::torch INTERFACE AHA_WITH_CUDA=1)
  message(STATUS "aha: LibTorch with CUDA from ${AHA_TORCH_PREFIX}")
else()
  find_library(AHA_TORCH_CPU_LIB torch_cpu PATHS "${AHA_TORCH_PREFIX}/lib" NO_DEFAULT_PATH REQUIRED)
  find_library(AHA_C10_LIB c10 PATHS "${AHA_TORCH_PREFIX}/lib" NO_DEFAULT_PATH REQUIRED)
  target_include_directories(aha::torch SYSTEM INTERFACE
    "${AHA_TORCH_PREFIX}/include" "${AHA_TORCH_PREFIX}/include/torch/csrc/api/include")
  target_link_libraries(aha::torch INTERFACE ${AHA_TORCH_CPU_LIB} ${AHA_C10_LIB})
  target_compile_definitions(aha::torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
  # libtorch_cpu's RPATH points into the wheel's nvidia/ folder; keep ours pointing at torch/lib.
  set(CMAKE_BUILD_RPATH "${AHA_TORCH_PREFIX}/lib" CACHE STRING "" FORCE)
  message(STATUS "aha: LibTorch CPU-only from ${AHA_TORCH_PREFIX}")
endif()
