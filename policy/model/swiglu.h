// The MLP's gated product silu(gate) * up (Qwen, Llama and DeepSeek MLPs and experts), equal bit
// for bit to LibTorch's torch::silu(gate) * up. On CUDA (bf16, fp16 or float32, contiguous
// operands of one dtype) forward and backward are one launch each (cuda_swiglu.h), and backward
// keeps gate and up only (silu(gate) is recomputed); elsewhere LibTorch's ops.
#pragma once
#include <torch/types.h>

namespace aha {

// gate and up of one shape [..., I].
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);
// gate_up [..., 2I]: the gate's I columns, then up's (a concatenated projection) -> [..., I].
torch::Tensor swiglu_concatenated(const torch::Tensor& gate_up);
// Always LibTorch's ops: the reference that the CUDA kernels are tested against.
torch::Tensor swiglu_unfused(const torch::Tensor& gate, const torch::Tensor& up);

}  // namespace aha
