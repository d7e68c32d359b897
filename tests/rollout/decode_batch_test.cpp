// DecodeBatch::shift_slots (decode_batch.h): every row's slots [shift, used) and their key mask
// land at [0, used - shift), the key mask is cleared above, and the shared slot and each row's
// first slot move down by `shift` (first slots not below 0). Shifts smaller than the ranges they
// move (overlapping copies, in chunks), larger ones, and one that moves nothing, checked against
// a copy of the state taken before.
#include <gtest/gtest.h>

#include <filesystem>

#include "policy/model/model_io.h"
#include "rollout/decode_batch.h"

namespace fs = std::filesystem;

namespace {

const fs::path kModel = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models/qwen2_gqa_tied";

TEST(DecodeBatchShift, MovesEveryRowsSlotsDown) {
  auto model = aha::load_model(kModel);
  torch::NoGradGuard no_grad;
  const int64_t rows = 3, capacity = 700;
  aha::DecodeBatch batch(*model, rows, capacity, /*use_cuda_graphs=*/false);
  auto& state = batch.state();
  // (shift, used): overlapping in chunks of a staged copy, overlapping in direct chunks, direct
  // in one chunk, a shift of everything used.
  for (auto [shift, used] : {std::pair<int64_t, int64_t>{5, 650}, {300, 650}, {400, 600}, {17, 17}, {1, 2}}) {
    const std::string where = "shift " + std::to_string(shift) + " used " + std::to_string(used);
    torch::manual_seed(shift);
    for (size_t l = 0; l < state.cache.keys.size(); ++l) {
      state.cache.keys[l].copy_(torch::randn(state.cache.keys[l].sizes()));
      state.cache.values[l].copy_(torch::randn(state.cache.values[l].sizes()));
    }
    state.key_mask.copy_(torch::rand({rows, capacity}) > 0.5);
    state.first_slot.copy_(torch::tensor({int64_t{0}, shift + 3, shift / 2}, torch::kInt64));
    state.slot.fill_(used);
    const auto keys = state.cache.keys[1].clone(), values = state.cache.values[0].clone();
    const auto key_mask = state.key_mask.clone();

    batch.shift_slots(shift, used);
    const int64_t n = used - shift;
    EXPECT_TRUE(torch::equal(state.cache.keys[1].narrow(2, 0, n), keys.narrow(2, shift, n))) << where;
    EXPECT_TRUE(torch::equal(state.cache.values[0].narrow(2, 0, n), values.narrow(2, shift, n))) << where;
    EXPECT_TRUE(torch::equal(state.key_mask.narrow(1, 0, n), key_mask.narrow(1, shift, n))) << where;
    EXPECT_FALSE(state.key_mask.narrow(1, n, capacity - n).any().item<bool>()) << where;
    EXPECT_EQ(state.slot.item<int64_t>(), n) << where;
    EXPECT_EQ(state.first_slot[0].item<int64_t>(), 0) << where;
    EXPECT_EQ(state.first_slot[1].item<int64_t>(), 3) << where;
    EXPECT_EQ(state.first_slot[2].item<int64_t>(), 0) << where;  // shift / 2 - shift, clamped
  }
  EXPECT_THROW(batch.shift_slots(10, 5), c10::Error);
  EXPECT_THROW(batch.shift_slots(1, capacity + 1), c10::Error);
}

}  // namespace
