#include "policy/weight_upload.h"

#include <ATen/Parallel.h>

#include <cstring>

#ifdef AHA_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace aha {
namespace {

#ifdef AHA_WITH_CUDA
constexpr int64_t kSlotBytes = 64ll << 20;
constexpr int kSlots = 3;

// memcpy spread over LibTorch's intra-op threads (page faults on a mapped file included).
void parallel_memcpy(void* dst, const void* src, int64_t bytes) {
  constexpr int64_t grain = 2ll << 20;
  at::parallel_for(0, bytes, grain, [&](int64_t begin, int64_t end) {
    std::memcpy(static_cast<char*>(dst) + begin, static_cast<const char*>(src) + begin, end - begin);
  });
}

void upload_to_cuda(const std::vector<std::pair<torch::Tensor, torch::Tensor>>& copies) {
  const auto device = copies.front().first.device();
  c10::cuda::CUDAGuard device_guard(device);
  auto stream = c10::cuda::getStreamFromPool(false, device.index());
  c10::cuda::CUDAStreamGuard stream_guard(stream);
  std::vector<torch::Tensor> slots;
  std::vector<at::cuda::CUDAEvent> done(kSlots);
  for (int i = 0; i < kSlots; ++i) {
    slots.push_back(torch::empty({kSlotBytes}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true)));
  }
  int next = 0;
  for (const auto& [dst, src_any] : copies) {
    auto src = src_any.contiguous();
    // Same dtype: upload straight into the weight. Otherwise upload the raw bytes to a GPU
    // buffer of the file's dtype and convert there.
    torch::Tensor target = src.scalar_type() == dst.scalar_type() ? dst : torch::empty(src.sizes(), dst.options().dtype(src.scalar_type()));
    const int64_t total = src.nbytes();
    auto target_bytes = torch::from_blob(target.data_ptr(), {total}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
    const char* from = static_cast<const char*>(src.data_ptr());
    for (int64_t offset = 0; offset < total; offset += kSlotBytes) {
      const int64_t len = std::min(kSlotBytes, total - offset);
      auto& slot = slots[next];
      done[next].synchronize();  // the upload that last used this slot has finished
      parallel_memcpy(slot.data_ptr(), from + offset, len);
      target_bytes.narrow(0, offset, len).copy_(slot.narrow(0, 0, len), /*non_blocking=*/true);
      done[next].record(stream);
      next = (next + 1) % kSlots;
    }
    if (!target.is_same(dst)) dst.copy_(target, /*non_blocking=*/true);
  }
  stream.synchronize();
}
#endif

}  // namespace

void upload_weights(const std::vector<std::pair<torch::Tensor, torch::Tensor>>& copies) {
  if (copies.empty()) return;
  torch::NoGradGuard no_grad;
#ifdef AHA_WITH_CUDA
  if (copies.front().first.is_cuda()) {
    upload_to_cuda(copies);
    return;
  }
#endif
  for (const auto& [dst, src] : copies) dst.copy_(src);
}

}  // namespace aha
