#include "policy/parallel/weight_sync.h"

#include <torch/cuda.h>

#include <chrono>
#include <string>

#include "core/error.h"

namespace aha::parallel {
namespace {

int64_t bytes_of(const torch::Tensor& t) { return t.numel() * static_cast<int64_t>(t.element_size()); }

}  // namespace

std::vector<std::vector<size_t>> plan_buckets(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  require(bucket_bytes > 0, "weight sync: the bucket size must be > 0 bytes, got " + std::to_string(bucket_bytes));
  std::vector<std::vector<size_t>> buckets;
  int64_t filled = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    require(tensors[i].defined(), "weight sync: tensor " + std::to_string(i) + " is undefined");
    const int64_t b = bytes_of(tensors[i]);
    const bool fits = !buckets.empty() && filled + b <= bucket_bytes &&
                      tensors[buckets.back().front()].device() == tensors[i].device();
    if (fits) {
      buckets.back().push_back(i);
      filled += b;
    } else {
      buckets.push_back({i});
      filled = b;
    }
  }
  return buckets;
}

WeightSyncResult sync_weights(Communicator& comm, const std::vector<torch::Tensor>& tensors, int64_t version,
                              int root, int64_t bucket_bytes) {
  const auto start = std::chrono::steady_clock::now();
  const auto buckets = plan_buckets(tensors, bucket_bytes);
  const bool sender = comm.rank() == root;
  torch::NoGradGuard no_grad;
  WeightSyncResult result;
  comm.set_activity("weight sync: the policy version");
  auto v = torch::tensor({version}, torch::kInt64);
  comm.broadcast(v, root, "broadcast of the policy version");
  result.version = v.item<int64_t>();
  const auto device = comm.device();
  for (size_t k = 0; k < buckets.size(); ++k) {
    const auto& bucket = buckets[k];
    comm.set_activity("weight sync: bucket " + std::to_string(k + 1) + " of " + std::to_string(buckets.size()));
    // The bucket travels as bytes, so tensors of any dtype share it and every backend takes it.
    auto bytes = [](const torch::Tensor& t) { return t.detach().contiguous().reshape({-1}).view(torch::kUInt8); };
    int64_t size = 0;
    for (size_t i : bucket) size += bytes_of(tensors[i]);
    torch::Tensor buffer;
    if (sender) {
      std::vector<torch::Tensor> flat;
      for (size_t i : bucket) flat.push_back(bytes(tensors[i]).to(device));
      buffer = flat.size() == 1 ? flat.front() : torch::cat(flat);
    } else {
      buffer = torch::empty({size}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
    }
    comm.broadcast(buffer, root, "broadcast of weight bucket " + std::to_string(k + 1));
    if (!sender) {
      int64_t offset = 0;
      for (size_t i : bucket) {
        auto t = tensors[i].detach();
        const int64_t n = bytes_of(t);
        // A fresh copy: a slice at an odd offset cannot be viewed as a wider dtype.
        auto slice = buffer.narrow(0, offset, n);
        auto part = (slice.device() == t.device() ? slice.clone() : slice.to(t.device()))
                        .view(t.scalar_type())
                        .view(t.sizes());
        t.copy_(part);
        offset += n;
      }
    }
    result.bytes += buffer.numel() * static_cast<int64_t>(buffer.element_size());
  }
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
  result.buckets = static_cast<int64_t>(buckets.size());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace aha::parallel
