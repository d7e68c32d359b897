// The check every equality test of the parallel learners makes: two runs' weights, tensor by
// tensor, within 1e-6 absolute unless told (fp32; the tests compare plain data parallelism, sharded and
// expert-parallel runs and one process against each other).
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace aha::parallel::testing {

inline void expect_weights_near(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                                const std::string& what, double atol = 1e-6) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_TRUE(torch::allclose(got[i], want[i], 0, atol))
        << what << ": weight " << i << " differs by " << (got[i] - want[i]).abs().max().item<float>();
}

}  // namespace aha::parallel::testing
