// Incremental decoding with a KV cache gives the same logits as a full forward pass over the
// whole left-padded sequence: prefill into the cache, then one token at a time; with the
// separate projection weights and with their fused (concatenated) copies.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "policy/model/model_io.h"

namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/models";

struct Case {
  std::string model;
  bool full_capacity_mask;  // attend over the whole cache with future slots masked (CUDA-graph form)
  bool fused = false;       // FusedProjections for the cached forward
};

class KvCacheDecode : public ::testing::TestWithParam<Case> {};

TEST_P(KvCacheDecode, MatchesFullForward) {
  auto model = aha::load_model(kFixtures / GetParam().model);
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  const int64_t P = 10, steps = 5, cap = P + steps;
  const std::vector<int64_t> lengths = {10, 6, 3};
  const int64_t B = lengths.size();
  auto prompt_mask = torch::zeros({B, P}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) prompt_mask[b].narrow(0, P - lengths[b], lengths[b]).fill_(1);
  auto ids = torch::randint(3, 256, {B, cap}, torch::kInt64);
  ids.narrow(1, 0, P).mul_(prompt_mask);
  auto full_mask = torch::cat({prompt_mask, torch::ones({B, steps}, torch::kInt64)}, 1);
  auto expected = model->logits(model->hidden_states(ids, full_mask));  // [B, cap, V]

  auto cache = aha::KVCache::allocate(model->config(), B, cap, model->dtype(), torch::kCPU);
  aha::FusedProjections fused_copies;
  if (GetParam().fused) fused_copies = model->fuse_projections();
  const aha::FusedProjections* fused = GetParam().fused ? &fused_copies : nullptr;
  auto key_mask = torch::zeros({B, cap}, torch::kBool);
  key_mask.narrow(1, 0, P).copy_(prompt_mask.to(torch::kBool));
  auto positions = aha::positions_from_mask(prompt_mask);
  auto slots = torch::arange(P, torch::kInt64);
  auto mask_now = GetParam().full_capacity_mask ? key_mask : key_mask.narrow(1, 0, P);
  auto hidden = model->hidden_states_cached(ids.narrow(1, 0, P), positions, slots, mask_now, cache, fused);
  auto real = prompt_mask.to(torch::kBool);
  auto prefill_logits = model->logits(hidden);
  EXPECT_LE((prefill_logits - expected.narrow(1, 0, P)).abs().index({real}).max().item<double>(), 1e-4);
  auto next_pos = torch::tensor(lengths, torch::kInt64);
  for (int64_t t = 0; t < steps; ++t) {
    const int64_t slot = P + t;
    key_mask.select(1, slot).fill_(true);
    auto mask_step = GetParam().full_capacity_mask ? key_mask : key_mask.narrow(1, 0, slot + 1);
    auto h = model->hidden_states_cached(ids.narrow(1, slot, 1), (next_pos + t).view({B, 1}),
                                         torch::tensor({slot}, torch::kInt64), mask_step, cache, fused);
    auto diff = (model->logits(h).squeeze(1) - expected.select(1, slot)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-4) << "step " << t;
  }
  // Sharing: rows selected from the cache continue exactly like the originals.
  auto shared = cache.select_rows(torch::tensor({2, 2, 0}, torch::kInt64));
  EXPECT_TRUE(torch::equal(shared.keys[1][0], cache.keys[1][2]));
  EXPECT_TRUE(torch::equal(shared.values[0][2], cache.values[0][0]));
}

INSTANTIATE_TEST_SUITE_P(Models, KvCacheDecode,
                         ::testing::Values(Case{"qwen2_gqa_tied", false}, Case{"qwen2_gqa_tied", true},
                                           Case{"llama_mqa_headdim", false}, Case{"qwen2_mha_untied_sharded", true},
                                           Case{"llama_bias_llama3rope", true}, Case{"qwen2_gqa_tied", true, true},
                                           Case{"llama_mqa_headdim", false, true},
                                           Case{"llama_bias_llama3rope", true, true}));

// A row's first slot (KVCache::first_slots): a cached forward attends to no slot below it, so
// it equals the same forward with the key mask cleared below the first slots, and differs from
// one that attends there; select_rows carries the first slots with their rows. Prefill and
// decode steps, a dense model and multi-head latent attention (DeepSeek-V3's own masked path).
class KvCacheFirstSlots : public ::testing::TestWithParam<std::string> {};

TEST_P(KvCacheFirstSlots, SkipSlotsBelowThemAsAClearedMaskDoes) {
  auto model = aha::load_model(kFixtures / GetParam());
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  const int64_t B = 3, P = 9, steps = 3, cap = P + steps;
  auto ids = torch::randint(3, 200, {B, cap}, torch::kInt64);
  auto positions = torch::arange(cap, torch::kInt64).expand({B, cap}).contiguous();
  const std::vector<int64_t> first = {0, 4, 8};  // row 2 keeps one prompt slot
  auto first_slots = torch::tensor(first, torch::kInt64);
  auto everything = torch::ones({B, cap}, torch::kBool);
  auto cleared = everything.clone();
  for (int64_t b = 0; b < B; ++b) cleared[b].narrow(0, 0, first[b]).fill_(false);

  // with: first slots, a full key mask; cleared: no first slots, the mask cleared below them;
  // unmasked: neither (attends to every slot).
  auto with = aha::KVCache::allocate(model->config(), B, cap, model->dtype(), torch::kCPU);
  with.first_slots = first_slots;
  auto without = aha::KVCache::allocate(model->config(), B, cap, model->dtype(), torch::kCPU);
  auto unmasked = aha::KVCache::allocate(model->config(), B, cap, model->dtype(), torch::kCPU);
  auto run = [&](aha::KVCache& cache, const torch::Tensor& mask, int64_t from, int64_t count) {
    return model->hidden_states_cached(ids.narrow(1, from, count), positions.narrow(1, from, count),
                                       torch::arange(from, from + count, torch::kInt64),
                                       mask.narrow(1, 0, from + count), cache);
  };
  auto a = run(with, everything, 0, P), b = run(without, cleared, 0, P), c = run(unmasked, everything, 0, P);
  // Prefill: query slots at or above each row's first slot (below it a query sees nothing).
  for (int64_t r = 0; r < B; ++r) {
    auto seen = torch::arange(first[r], P);
    EXPECT_LE((a[r].index_select(0, seen) - b[r].index_select(0, seen)).abs().max().item<double>(), 1e-6) << r;
  }
  EXPECT_GT((a[2][P - 1] - c[2][P - 1]).abs().max().item<double>(), 1e-3) << "the first slots change row 2";
  for (int64_t t = 0; t < steps; ++t) {
    a = run(with, everything, P + t, 1);
    b = run(without, cleared, P + t, 1);
    c = run(unmasked, everything, P + t, 1);
    EXPECT_LE((a - b).abs().max().item<double>(), 1e-6) << "step " << t;
    EXPECT_LE((a[0] - c[0]).abs().max().item<double>(), 1e-6) << "row 0's first slot is 0: nothing changes";
    EXPECT_GT((a[1] - c[1]).abs().max().item<double>(), 1e-3) << "step " << t;
  }
  // select_rows keeps each row's first slot with it; a cache without them gives none.
  auto picked = with.select_rows(torch::tensor({2, 0}, torch::kInt64));
  ASSERT_TRUE(picked.first_slots.defined());
  EXPECT_EQ(picked.first_slots[0].item<int64_t>(), 8);
  EXPECT_EQ(picked.first_slots[1].item<int64_t>(), 0);
  EXPECT_FALSE(without.select_rows(torch::tensor({1}, torch::kInt64)).first_slots.defined());
  // A first_slots of the wrong shape is refused, naming it.
  with.first_slots = torch::zeros({B + 1}, torch::kInt64);
  try {
    run(with, everything, P + steps - 1, 1);
    ADD_FAILURE() << "a [B + 1] first_slots was accepted";
  } catch (const aha::Error& e) {
    EXPECT_NE(std::string(e.what()).find("first_slots"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, KvCacheFirstSlots,
                         ::testing::Values("qwen2_gqa_tied", "llama_bias_llama3rope", "deepseek_v3_dense_bias"));

// Fused copies are copies: after a weight change they are stale until refresh(), and then give
// what the live weights give.
TEST(FusedProjections, FollowTheWeightsAfterRefresh) {
  auto model = aha::load_model(kFixtures / "llama_bias_llama3rope");
  torch::NoGradGuard no_grad;
  auto fused = model->fuse_projections();
  const int64_t B = 2, P = 6;
  auto ids = torch::randint(3, 256, {B, P}, torch::kInt64);
  auto positions = torch::arange(P, torch::kInt64).expand({B, P});
  auto slots = torch::arange(P, torch::kInt64);
  auto keys = torch::ones({B, P}, torch::kBool);
  auto run = [&](const aha::FusedProjections* f) {
    auto cache = aha::KVCache::allocate(model->config(), B, P, model->dtype(), torch::kCPU);
    return model->hidden_states_cached(ids, positions, slots, keys, cache, f);
  };
  for (auto& p : model->parameters()) p.mul_(1.1);
  auto live = run(nullptr);
  EXPECT_GT((run(&fused) - live).abs().max().item<double>(), 1e-3) << "stale copies differ";
  model->refresh(fused);
  EXPECT_LE((run(&fused) - live).abs().max().item<double>(), 1e-5);
  const int64_t element = static_cast<int64_t>(c10::elementSize(model->dtype()));
  EXPECT_EQ(aha::Transformer::fused_projection_bytes(model->config(), element),
            [&] {
              int64_t n = 0;
              for (size_t l = 0; l < fused.qkv_weight.size(); ++l) {
                n += fused.qkv_weight[l].numel() + fused.gate_up_weight[l].numel();
                if (fused.qkv_bias[l].defined()) n += fused.qkv_bias[l].numel();
                if (fused.gate_up_bias[l].defined()) n += fused.gate_up_bias[l].numel();
              }
              return n * element;
            }());
}

}  // namespace
