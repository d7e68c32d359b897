// SFT examples as tokens: chat data files (datasets/chat_data.h) rendered in a template
// (datasets/chat_render.h) and tokenized with a per-token "trained" flag that is exactly the
// assistant turns.
//
// Contract:
// - tokenize_conversation encodes the rendering prefix by prefix (the first piece, the first
//   two, ...), each with add_special_tokens = !includes_bos as prompts are encoded; each
//   prefix's tokens must begin with the previous prefix's tokens, and the tokens a piece adds
//   carry its trained flag. A tokenizer that merges across a piece boundary makes the span
//   inexact: that is an error naming the example, never a silently shifted mask.
// - load_sft_examples reads every file, renders and tokenizes each record; a record whose tokens
//   exceed max_length is bad ("too_long"): an error naming file:line and both lengths, or with
//   BadExamplePolicy::kDrop dropped and counted with the data file's bad records.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "datasets/chat_data.h"
#include "datasets/chat_render.h"
#include "policy/learner/sft_packing.h"
#include "policy/tokenizer/tokenizer.h"

namespace aha::recipes {

policy::SftSequence tokenize_conversation(const Tokenizer& tokenizer, const ChatRendering& rendering,
                                          const std::string& where);

std::vector<policy::SftSequence> load_sft_examples(const std::vector<std::filesystem::path>& files,
                                                   const ChatRenderer& renderer, const Tokenizer& tokenizer,
                                                   int64_t max_length, BadExamplePolicy policy, ChatDataStats* stats);

}  // namespace aha::recipes
