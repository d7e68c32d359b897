// policy/model/device_memory.h: what a device can still give, checked against the host's own
// account (/proc/meminfo) and, on CUDA, the driver's, including before the process's first CUDA
// allocation, when LibTorch's caching allocator is not initialised yet (its statistics throw
// then: every GPU run's first sizing check met that).
#include "policy/model/device_memory.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <fstream>
#include <string>

namespace aha {
namespace {

TEST(DeviceMemory, HostBytesAreMemAvailable) {
  std::ifstream meminfo("/proc/meminfo");
  int64_t kib = -1;
  for (std::string key; meminfo >> key;)
    if (key == "MemAvailable:") {
      meminfo >> kib;
      break;
    }
  ASSERT_GT(kib, 0);
  const auto bytes = available_host_bytes();
  ASSERT_TRUE(bytes.has_value());
  // Both are read moments apart while other processes run: within 1 GiB of each other.
  EXPECT_NEAR(double(*bytes), double(kib) * 1024, double(1LL << 30));
  EXPECT_EQ(allocatable_bytes(torch::kCPU).has_value(), true);
  EXPECT_FALSE(available_device_bytes(torch::kCPU).has_value());
}

TEST(DeviceMemory, CudaBytesBeforeAndAfterTheFirstAllocation) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Device cuda(torch::kCUDA, 0);
  // In a binary run alone (ctest runs this suite's tests in one process, so run it with
  // --gtest_filter=DeviceMemory.* to be sure) nothing has touched CUDA yet.
  const auto before = available_device_bytes(cuda);
  ASSERT_TRUE(before.has_value());
  EXPECT_GT(*before, int64_t{1} << 30);
  // A 1 GiB tensor takes about that much from what is available; freed, it stays in the
  // caching allocator and counts as available again.
  auto block = torch::empty({int64_t{1} << 28}, torch::TensorOptions().dtype(torch::kFloat32).device(cuda));
  const auto during = available_device_bytes(cuda);
  ASSERT_TRUE(during.has_value());
  EXPECT_NEAR(double(*before - *during), double(int64_t{1} << 30), double(64LL << 20));
  block = torch::Tensor();
  const auto after = available_device_bytes(cuda);
  ASSERT_TRUE(after.has_value());
  EXPECT_NEAR(double(*after), double(*before), double(64LL << 20));
}

}  // namespace
}  // namespace aha
