// The mixed-dtype model of gradient_sync_test.cpp's GradientSyncMixed and its scenario
// (scenarios.cpp grad_mixed): bf16 parameters with float32 ones among them, as a bf16 model's
// float32 router gates are, and each rank's gradients.
//
//   p0 bf16 [2], p1 float32 [2], p2 bf16 [2], p3 float32 [5], p4 bf16 [2], p5 bf16 [2]
//   flat offsets 0, 2, 4, 6, 11, 13; 15 elements: 8 bf16 (16 bytes), 7 float32 (28 bytes)
//
// ZeRO-2 ranges (shard_layout.h): 2 ranks [0, 8) [8, 15), the cut inside p3 (float32); 3 ranks
// [0, 5) [5, 10) [10, 15), one cut inside p2 (bf16), one inside p3.
//
// Rank r's gradient of element i of p_k: (r + 1)(i + 1)/4, negated for odd k, plus k: exact in
// bf16, and so are their sums over up to 3 ranks. Except element 0 of p0 (bf16) and of p1
// (float32): kMixedSpecial[r], whose sum over 3 ranks (1.3798828125, exact in float32) shows the
// dtype it was summed in (see gradient_sync_test.cpp).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace aha::parallel::testing {

struct MixedParam {
  torch::ScalarType dtype;
  int64_t numel;
};

inline const std::vector<MixedParam>& mixed_params() {
  static const std::vector<MixedParam> params = {{torch::kBFloat16, 2}, {torch::kFloat32, 2}, {torch::kBFloat16, 2},
                                                 {torch::kFloat32, 5},  {torch::kBFloat16, 2}, {torch::kBFloat16, 2}};
  return params;
}

inline constexpr int kMixedMaxWorld = 3;
inline constexpr double kMixedSpecial[kMixedMaxWorld] = {1.0, 0.251953125, 0.1279296875};

// Rank r's gradient of element i of parameter k (in double; exact in the parameter's dtype).
inline double mixed_grad(int rank, size_t k, int64_t i) {
  if (i == 0 && k <= 1) return kMixedSpecial[rank];
  return (k % 2 ? -1.0 : 1.0) * (rank + 1) * (i + 1) / 4.0 + double(k);
}

// Rank r's gradient of parameter k, in its dtype.
inline torch::Tensor mixed_grad_tensor(int rank, size_t k) {
  const auto& spec = mixed_params()[k];
  std::vector<double> values;
  for (int64_t i = 0; i < spec.numel; ++i) values.push_back(mixed_grad(rank, k, i));
  return torch::tensor(values, torch::kFloat64).to(spec.dtype);
}

}  // namespace aha::parallel::testing
