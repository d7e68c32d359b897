#include "policy/learner/sft_packing.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace aha::policy {
namespace {

// splitmix64: a small generator whose draws are the same on every platform (std::shuffle's
// are not), so a resumed run shuffles as the first one did.
uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<std::vector<size_t>> pack_first_fit(const std::vector<int64_t>& lengths, int64_t row_tokens) {
  require(row_tokens >= 2, "SFT packing: the row budget must be >= 2 tokens, got " + std::to_string(row_tokens));
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  std::vector<std::vector<size_t>> rows;
  std::vector<int64_t> room;
  for (size_t i : order) {
    require(lengths[i] <= row_tokens, "SFT packing: example " + std::to_string(i) + " has " +
                                          std::to_string(lengths[i]) + " tokens, more than the row budget of " +
                                          std::to_string(row_tokens));
    size_t r = 0;
    while (r < rows.size() && room[r] < lengths[i]) ++r;
    if (r == rows.size()) {
      rows.emplace_back();
      room.push_back(row_tokens);
    }
    rows[r].push_back(i);
    room[r] -= lengths[i];
  }
  return rows;
}

LmBatch make_sft_batch(const std::vector<std::vector<const SftSequence*>>& rows, int64_t pad_id) {
  require(!rows.empty(), "SFT batch: no rows");
  int64_t T = 2;
  for (const auto& row : rows) {
    int64_t n = 0;
    for (const auto* s : row) {
      require(s->ids.size() == s->trained.size(), "SFT batch: a sequence's ids and trained flags differ in length");
      n += static_cast<int64_t>(s->ids.size());
    }
    T = std::max(T, n);
  }
  const int64_t B = static_cast<int64_t>(rows.size());
  auto ids = torch::full({B, T}, pad_id, torch::kInt64);
  auto positions = torch::zeros({B, T}, torch::kInt64);
  auto segments = torch::zeros({B, T}, torch::kInt64);
  auto loss = torch::zeros({B, T - 1}, torch::kInt64);
  auto id = ids.accessor<int64_t, 2>();
  auto pos = positions.accessor<int64_t, 2>();
  auto seg = segments.accessor<int64_t, 2>();
  auto mask = loss.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t t = 0;
    for (size_t k = 0; k < rows[b].size(); ++k) {
      const auto& s = *rows[b][k];
      for (size_t j = 0; j < s.ids.size(); ++j, ++t) {
        id[b][t] = s.ids[j];
        pos[b][t] = static_cast<int64_t>(j);
        seg[b][t] = static_cast<int64_t>(k) + 1;
        if (j > 0 && s.trained[j]) mask[b][t - 1] = 1;  // predicted from the previous token of its example
      }
    }
  }
  LmBatch batch;
  batch.input_ids = ids;
  batch.loss_mask = loss;
  batch.positions = positions;
  batch.segment_ids = segments;
  return batch;
}

std::vector<std::vector<size_t>> epoch_rows(const std::vector<int64_t>& lengths, int64_t row_tokens, bool packing,
                                            uint64_t seed, int64_t epoch) {
  std::vector<std::vector<size_t>> rows;
  if (packing) {
    rows = pack_first_fit(lengths, row_tokens);
  } else {
    for (size_t i = 0; i < lengths.size(); ++i) rows.push_back({i});
  }
  uint64_t state = seed ^ (0xA0761D6478BD642Full * static_cast<uint64_t>(epoch + 1));
  for (size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[splitmix(state) % i]);
  return rows;
}

}  // namespace aha::policy
