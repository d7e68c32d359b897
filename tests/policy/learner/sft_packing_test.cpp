// SFT packing: first-fit by decreasing length on a hand-worked case, the batch layout, and
// the property that makes packing correct: a packed row's loss (and its gradient) equals the
// sum of its examples' losses computed alone.
#include "policy/learner/sft_packing.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/policy/learner/trainer_test_util.h"

namespace aha::policy {
namespace {

TEST(SftPacking, FirstFitByDecreasingLength) {
  // Budget 10; by length: #1 (7), #3 (5), #0 (4), #4 (3), #2 (2), #5 (2).
  // #1 opens row 0 (room 3); #3 opens row 1 (room 5); #0 fits row 1 (room 1); #4 fits row 0
  // (room 0); #2 opens row 2 (room 8); #5 fits row 2.
  auto rows = pack_first_fit({4, 7, 2, 5, 3, 2}, 10);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<size_t>{1, 4}));
  EXPECT_EQ(rows[1], (std::vector<size_t>{3, 0}));
  EXPECT_EQ(rows[2], (std::vector<size_t>{2, 5}));
  EXPECT_THROW(pack_first_fit({11}, 10), Error);
  EXPECT_TRUE(pack_first_fit({}, 10).empty());
}

TEST(SftPacking, EpochRowsAreAPermutationThatDependsOnlyOnSeedAndEpoch) {
  const std::vector<int64_t> lengths{4, 7, 2, 5, 3, 2, 9, 1};
  auto a = epoch_rows(lengths, 10, true, 7, 0);
  EXPECT_EQ(a, epoch_rows(lengths, 10, true, 7, 0));
  EXPECT_NE(a, epoch_rows(lengths, 10, true, 7, 1));  // 5 rows: 1 chance in 120 of equality; fixed seeds
  std::vector<int> seen(lengths.size(), 0);
  for (const auto& row : a)
    for (size_t i : row) ++seen[i];
  for (int s : seen) EXPECT_EQ(s, 1);
  auto single = epoch_rows(lengths, 10, false, 7, 0);
  EXPECT_EQ(single.size(), lengths.size());
}

TEST(SftPacking, BatchLayoutRestartsPositionsAndMasksAcrossExamples) {
  SftSequence a{{5, 6, 7}, {0, 1, 1}}, b{{8, 9}, {0, 1}}, c{{3, 4, 5, 6}, {0, 0, 1, 1}};
  auto batch = make_sft_batch({{&a, &b}, {&c}}, 0);
  EXPECT_TRUE(torch::equal(batch.input_ids, torch::tensor({5, 6, 7, 8, 9, 3, 4, 5, 6, 0}, torch::kInt64).view({2, 5})));
  EXPECT_TRUE(torch::equal(batch.positions, torch::tensor({0, 1, 2, 0, 1, 0, 1, 2, 3, 0}, torch::kInt64).view({2, 5})));
  EXPECT_TRUE(torch::equal(batch.segment_ids, torch::tensor({1, 1, 1, 2, 2, 1, 1, 1, 1, 0}, torch::kInt64).view({2, 5})));
  // Row 0: targets 6, 7 (a) and 9 (b); 7 -> 8 crosses examples. Row 1: targets 5, 6 of c.
  EXPECT_TRUE(torch::equal(batch.loss_mask, torch::tensor({1, 1, 0, 1, 0, 1, 1, 0}, torch::kInt64).view({2, 4})));
  batch.validate();
}

TEST(SftPacking, PackedRowLossIsTheSumOfTheExamplesAlone) {
  testing::one_thread();
  auto model = testing::tiny_model();
  for (auto& p : model->parameters()) p.requires_grad_(true);
  const int64_t V = model->config().vocab_size;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  std::vector<SftSequence> seqs;
  for (int64_t n : {5, 3, 7}) {
    auto ids = torch::randint(1, V, {n}, gen, torch::kInt64);
    SftSequence s;
    s.ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + n);
    for (int64_t t = 0; t < n; ++t) s.trained.push_back(t >= n / 2);
    seqs.push_back(s);
  }
  // Each alone, as a plain unpadded row with no packing machinery.
  double alone = 0;
  int64_t alone_tokens = 0;
  std::vector<torch::Tensor> alone_grads;
  for (const auto& s : seqs) {
    auto ids = torch::tensor(s.ids, torch::kInt64).unsqueeze(0);
    auto mask = torch::tensor(std::vector<int64_t>(s.trained.begin() + 1, s.trained.end()), torch::kInt64).unsqueeze(0);
    int64_t tokens = 0;
    auto nll = lm_nll_sum(*model, ids, mask, {}, &tokens);
    nll.backward();
    alone += nll.item<double>();
    alone_tokens += tokens;
  }
  for (auto& p : model->parameters()) {
    alone_grads.push_back(p.grad().clone());
    p.mutable_grad().zero_();
  }
  // Packed: all three in one row, with a padded second row holding the first one again.
  auto batch = make_sft_batch({{&seqs[0], &seqs[1], &seqs[2]}, {&seqs[0]}}, 0);
  int64_t tokens = 0;
  auto row0 = batch.rows(0, 1);
  auto packed = lm_nll_sum(*model, row0, &tokens);
  packed.backward();
  EXPECT_EQ(tokens, alone_tokens);
  EXPECT_NEAR(packed.item<double>(), alone, 1e-4 * std::abs(alone));
  auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(torch::allclose(params[i].grad(), alone_grads[i], 1e-4, 1e-6)) << i;
  // The padded row: the first example alone, its padding ignored.
  int64_t first_tokens = 0;
  auto first = lm_nll_sum(*model, batch.rows(1, 1), &first_tokens);
  auto ids0 = torch::tensor(seqs[0].ids, torch::kInt64).unsqueeze(0);
  auto mask0 = torch::tensor(std::vector<int64_t>(seqs[0].trained.begin() + 1, seqs[0].trained.end()), torch::kInt64)
                   .unsqueeze(0);
  EXPECT_NEAR(first.item<double>(), lm_nll_sum(*model, ids0, mask0, {}).item<double>(), 1e-4);
  // Without the segments the same row would let examples see each other: a different loss.
  auto crossing = lm_nll_sum(*model, row0.input_ids, row0.loss_mask, {});
  EXPECT_GT(std::abs(crossing.item<double>() - alone), 1e-3);
}

}  // namespace
}  // namespace aha::policy
