#include "policy/learner/grpo_packing.h"

#include <algorithm>

#include "core/error.h"
#include "policy/learner/sft_packing.h"

namespace aha::policy {
namespace {

// Where each row's real tokens are: [start, start + length). Throws when they are not one run.
void find_sequences(const PolicyBatch& batch, std::vector<int64_t>& start, std::vector<int64_t>& length) {
  const int64_t B = batch.size(), T = batch.input_ids.size(1);
  auto mask = batch.attention_mask.to(torch::kCPU, torch::kInt64).contiguous();
  const int64_t* m = mask.data_ptr<int64_t>();
  start.assign(B, 0);
  length.assign(B, 0);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      if (m[b * T + t] == 0) continue;
      if (length[b] == 0) start[b] = t;
      require(t == start[b] + length[b],
              "packed micro-batches: row " + std::to_string(b) +
                  " of the policy batch has padding between real tokens (attention_mask column " + std::to_string(t) +
                  "); packing needs each row's real tokens contiguous, as rollouts produce them");
      ++length[b];
    }
  }
  // A completion target must lie inside its own sequence (predicted by a real token of it).
  auto columns = torch::arange(T - 1, torch::kInt64).unsqueeze(0);  // [1, T-1]
  auto s = torch::tensor(start, torch::kInt64).unsqueeze(1), n = torch::tensor(length, torch::kInt64).unsqueeze(1);
  auto inside = (columns >= s) & (columns <= s + n - 2);
  auto stray = (batch.completion_mask.to(torch::kCPU) != 0) & inside.logical_not();
  auto rows = stray.any(1).nonzero();
  if (rows.size(0) > 0) {
    const int64_t b = rows[0][0].item<int64_t>();
    throw Error("packed micro-batches: row " + std::to_string(b) +
                " of the policy batch has completion_mask set on a target that is padding or follows padding; "
                "packing trains only targets inside a row's real tokens");
  }
}

}  // namespace

torch::Tensor PackedMicroBatch::gather(const torch::Tensor& padded) const {
  auto source = target_source.reshape({-1});
  auto values = padded.to(source.device()).reshape({-1}).index_select(0, source.clamp_min(0));
  return torch::where(source >= 0, values, torch::zeros({}, values.options())).view(target_source.sizes());
}

void PackedMicroBatch::scatter_into(torch::Tensor& padded, const torch::Tensor& packed) const {
  require(padded.is_contiguous() && packed.sizes() == target_source.sizes(),
          "packed micro-batches: scatter_into needs a contiguous padded tensor and packed values of shape " +
              c10::str(target_source.sizes()));
  auto source = target_source.reshape({-1});
  auto mapped = (source >= 0).nonzero().squeeze(1);
  padded.view({-1}).index_copy_(0, source.index_select(0, mapped).to(padded.device()),
                                packed.reshape({-1}).index_select(0, mapped.to(packed.device())).to(padded.dtype()).to(
                                    padded.device()));
}

std::vector<PackedMicroBatch> pack_micro_batches(const PolicyBatch& batch, int64_t micro_batch_tokens,
                                                 torch::Device device) {
  require(micro_batch_tokens >= 2,
          "packed micro-batches: micro_batch_tokens must be >= 2, got " + std::to_string(micro_batch_tokens));
  batch.validate_tokens();  // the tokens and masks are all it reads
  const int64_t T = batch.input_ids.size(1);
  std::vector<int64_t> start, length;
  find_sequences(batch, start, length);
  const int64_t W = std::max<int64_t>(2, *std::max_element(length.begin(), length.end()));
  const auto rows = pack_first_fit(length, W);
  const int64_t rows_per_micro = std::max<int64_t>(1, micro_batch_tokens / W);
  auto ids_flat = batch.input_ids.reshape({-1});

  std::vector<PackedMicroBatch> out;
  for (size_t first = 0; first < rows.size(); first += size_t(rows_per_micro)) {
    const int64_t R = std::min<int64_t>(rows_per_micro, int64_t(rows.size() - first));
    PackedMicroBatch p;
    auto token_source = torch::full({R, W}, int64_t{-1}, torch::kInt64);
    auto positions = torch::zeros({R, W}, torch::kInt64);
    auto segments = torch::zeros({R, W}, torch::kInt64);
    auto target_source = torch::full({R, W - 1}, int64_t{-1}, torch::kInt64);
    auto sequence_index = torch::full({R, W - 1}, int64_t{-1}, torch::kInt64);
    auto src = token_source.accessor<int64_t, 2>();
    auto pos = positions.accessor<int64_t, 2>();
    auto seg = segments.accessor<int64_t, 2>();
    auto tgt = target_source.accessor<int64_t, 2>();
    auto idx = sequence_index.accessor<int64_t, 2>();
    for (int64_t r = 0; r < R; ++r) {
      int64_t offset = 0;
      const auto& row = rows[first + size_t(r)];
      for (size_t k = 0; k < row.size(); ++k) {
        const int64_t b = int64_t(row[k]), s = start[b], L = length[b];
        const int64_t sequence = p.sequences();
        p.rows.push_back(b);
        p.real_tokens += L;
        for (int64_t j = 0; j < L; ++j) {
          src[r][offset + j] = b * T + s + j;
          pos[r][offset + j] = j;
          seg[r][offset + j] = int64_t(k) + 1;
          if (j + 1 < L) {  // column offset + j predicts token j + 1 of the same sequence
            tgt[r][offset + j] = b * (T - 1) + s + j;
            idx[r][offset + j] = sequence;
          }
        }
        offset += L;
      }
    }
    auto source = token_source.reshape({-1}).to(ids_flat.device());
    auto ids = ids_flat.index_select(0, source.clamp_min(0));
    p.input_ids = torch::where(source >= 0, ids, torch::zeros({}, ids.options())).view({R, W}).to(device);
    p.positions = positions.to(device);
    p.segment_ids = segments.to(device);
    p.target_source = target_source.to(device);
    p.sequence_index = sequence_index.to(device);
    p.row_index = torch::tensor(p.rows, torch::kInt64).to(device);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace aha::policy
