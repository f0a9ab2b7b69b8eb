# One interface target for LibTorch so every consumer gets the same flags.
# Debian's libtorch-dev is CPU-only; a CUDA LibTorch (e.g. a PyTorch wheel's share/cmake/Torch) is picked up
# through Torch_DIR, and then CLOQ_HAVE_CUDA is defined and the CUDA toolkit is enabled when found.
add_library(cloq_torch INTERFACE)
add_library(cloq::torch ALIAS cloq_torch)
target_link_libraries(cloq_torch INTERFACE ${TORCH_LIBRARIES})
separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(cloq_torch INTERFACE ${_torch_flags})
set(CLOQ_HAVE_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES OR CUDA_FOUND)
  set(CLOQ_HAVE_CUDA ON)
  target_compile_definitions(cloq_torch INTERFACE CLOQ_HAVE_CUDA=1)
endif()
message(STATUS "CLoQ: LibTorch ${Torch_VERSION} at ${Torch_DIR}, CUDA: ${CLOQ_HAVE_CUDA}")
