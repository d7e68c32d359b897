#include "policy/model/weight_upload.h"


#include <future>
#include <map>
#include <thread>

#include "core/thread_pool.h"

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
constexpr int64_t kReadGrain = 8ll << 20;  // bytes per pread call

// Uploads the bytes [begin, end) of the file's data section into device memory `out`. The
// reads use a thread team of our own rather than LibTorch's intra-op pool, whose size follows
// OMP_NUM_THREADS (1 in some GPU images, which made this a single-threaded read).
void stream_file_to_device(const SafetensorsFile& file, uint64_t begin, uint64_t end, uint8_t* out,
                           c10::cuda::CUDAStream stream, std::vector<torch::Tensor>& slots,
                           std::vector<at::cuda::CUDAEvent>& done, ThreadPool& readers) {
  int next = 0;
  const uint64_t base = file.data_start();
  for (uint64_t offset = begin; offset < end; offset += kSlotBytes) {
    const int64_t len = std::min<int64_t>(kSlotBytes, end - offset);
    auto* slot = static_cast<uint8_t*>(slots[next].data_ptr());
    done[next].synchronize();  // the upload that last used this slot has finished
    std::vector<std::future<void>> reads;
    for (int64_t a = 0; a < len; a += kReadGrain) {
      const int64_t n = std::min(kReadGrain, len - a);
      reads.push_back(readers.submit([&file, slot, a, n, at = base + offset + a] { file.mapped().read_at(at, slot + a, n); }));
    }
    for (auto& r : reads) r.get();  // rethrows a failed read
    AT_CUDA_CHECK(cudaMemcpyAsync(out + (offset - begin), slot, len, cudaMemcpyHostToDevice, stream.stream()));
    done[next].record(stream);
    next = (next + 1) % kSlots;
  }
}

void upload_to_cuda(const std::vector<WeightCopy>& copies) {
  const auto device = copies.front().destination.device();
  c10::cuda::CUDAGuard device_guard(device);
  auto stream = c10::cuda::getStreamFromPool(false, device.index());
  c10::cuda::CUDAStreamGuard stream_guard(stream);
  std::vector<torch::Tensor> slots;
  std::vector<at::cuda::CUDAEvent> done(kSlots);
  for (int i = 0; i < kSlots; ++i) {
    slots.push_back(torch::empty({kSlotBytes}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true)));
  }
  ThreadPool readers(std::min<size_t>(16, std::max(1u, std::thread::hardware_concurrency())));
  std::map<const SafetensorsFile*, std::vector<const WeightCopy*>> by_file;
  for (const auto& c : copies) by_file[c.file].push_back(&c);
  for (const auto& [file, items] : by_file) {
    uint64_t begin = UINT64_MAX, end = 0;
    for (const auto* c : items) {
      begin = std::min(begin, c->entry->begin);
      end = std::max(end, c->entry->end);
    }
    auto buffer = torch::empty({static_cast<int64_t>(end - begin)},
                               torch::TensorOptions().dtype(torch::kUInt8).device(device));
    stream_file_to_device(*file, begin, end, buffer.data_ptr<uint8_t>(), stream, slots, done, readers);
    for (const auto* c : items) {
      const auto& e = *c->entry;
      auto bytes = buffer.narrow(0, e.begin - begin, e.end - e.begin);
      // Reinterpreting bytes needs an offset aligned to the element size; safetensors does
      // not promise one, so copy unaligned tensors to a fresh (aligned) buffer first.
      if ((e.begin - begin) % c10::elementSize(e.scalar_type) != 0) bytes = bytes.clone();
      auto values = bytes.view(e.scalar_type).view(e.shape);
      c->destination.copy_(values, /*non_blocking=*/true);
    }
    stream.synchronize();  // before `buffer` is freed
  }
}
#endif

}  // namespace

void upload_weights(const std::vector<WeightCopy>& copies) {
  if (copies.empty()) return;
  torch::NoGradGuard no_grad;
#ifdef AHA_WITH_CUDA
  if (copies.front().destination.is_cuda()) {
    upload_to_cuda(copies);
    return;
  }
#endif
  for (const auto& c : copies) c.destination.copy_(c.file->view(c.entry->name));
}

}  // namespace aha
