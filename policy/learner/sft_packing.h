// Supervised fine-tuning batches: tokenized examples (ids, and which tokens are trained)
// packed into rows of a token budget, and the rows of a step made into an LmBatch whose
// examples do not see one another.
//
// Contract:
// - pack_first_fit puts examples into rows, first-fit by decreasing length (ties by index):
//   each example goes to the first row that still has room, else opens a row. An example
//   longer than row_tokens is an error (the caller drops or refuses over-long ones first).
// - make_sft_batch lays each row's examples one after another, right-padded to the longest
//   row, with segment_ids (1, 2, ... per example, 0 padding) and positions restarting at 0 for
//   each example, so that attention never crosses an example boundary and a packed row's loss
//   is the sum of its examples' losses computed alone. loss_mask[r, t] is 1 where token t+1 is
//   trained and belongs to the same example as token t.
// - epoch_rows: the rows of one epoch, as a function of (lengths, row_tokens, seed, epoch)
//   only: examples packed (or one per row when packing is off), then the rows shuffled with a
//   generator seeded by (seed, epoch), so a resumed run recomputes the same order.
#pragma once
#include <cstdint>
#include <vector>

#include "policy/learner/lm_trainer.h"

namespace aha::policy {

struct SftSequence {
  std::vector<int64_t> ids;
  std::vector<uint8_t> trained;  // per token: 1 when ids[t] is a trained target (t >= 1)
};

std::vector<std::vector<size_t>> pack_first_fit(const std::vector<int64_t>& lengths, int64_t row_tokens);

LmBatch make_sft_batch(const std::vector<std::vector<const SftSequence*>>& rows, int64_t pad_id);

std::vector<std::vector<size_t>> epoch_rows(const std::vector<int64_t>& lengths, int64_t row_tokens, bool packing,
                                            uint64_t seed, int64_t epoch);

}  // namespace aha::policy
