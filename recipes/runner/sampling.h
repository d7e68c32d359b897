// From examples to scored completions: the glue that GRPO stages and evaluation share.
//
//   Example --encode_prompt--> prompt ids --RolloutEngine--> G completions --Scorer (reward/scorer.h)--> scores
//
// Contract:
//   * encode_prompt renders the example's prompt with the template and encodes it. When the
//     template's text already carries the BOS token (PromptTemplate::includes_bos) it is encoded
//     without the tokenizer's own special tokens, else with them (e.g. Llama 3's BOS), so a
//     prompt never starts with two BOS tokens.
//   * sample_and_score returns one SampledExample per example, in the examples' order, each with
//     exactly group_size completions (sample index order) and group_size scores, scores[j]
//     belonging to completions[j]. The template's stop strings are added to the settings' stop
//     strings. A completion's text keeps the stop string that ended it ("...</answer>": the
//     format reward needs it) and drops a final EOS token (rollout/rollout_engine.h); its
//     prompt_index is the example's index in `examples`.
//   * Batching: prompts_per_batch examples decode at once (the engine's rows, G each); the
//     examples go to the engine in requests of up to kRequestBatches x prompts_per_batch, and
//     within a request a finished example's rows take the next waiting one (continuous
//     batching, rollout/rollout_engine.h), so a request waits for its longest completion only
//     once. A request's rewards are scored while the next one generates.
//   * Randomness: example i's sample j draws from the stream (mix(settings.seed, 0),
//     first_prompt_index + i, j) (sample_stream_key), whatever the batching. The output is a function of (model, examples,
//     options): the same seed gives the same completions (bit-identical on the CPU; see
//     rollout_engine.h for GPUs), and prompts_per_batch does not change them.
//   * The engine must have been built with make_text_decoder(tokenizer) (or an equivalent
//     decoder): stop strings and completion text need it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <vector>

#include "datasets/example.h"
#include "datasets/prompt_template.h"
#include "policy/model/model_config.h"
#include "policy/tokenizer/tokenizer.h"
#include "reward/reward.h"
#include "reward/reward_runner.h"
#include "rollout/rollout_engine.h"

namespace aha::recipes {

// The template applied to the example's prompt, encoded (BOS handling as above).
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const PromptTemplate& prompt_template,
                                   const Example& example);

// The example as rewards see it: prompt, gold, task kind, metadata; HumanEval's test and entry
// point, or MBPP's asserts (one test each) with its imports as test_setup.
reward::RewardExample to_reward_example(const Example& example);

// EOS ids named by a model directory: config.json's (already in `config`),
// generation_config.json's eos_token_id, and the tokenizer's eos token when given. Sorted,
// without duplicates.
std::vector<int64_t> default_eos_ids(const std::filesystem::path& model_dir, const ModelConfig& config,
                                     const Tokenizer* tokenizer);

// Token bytes and text decoding through `tokenizer`, for RolloutEngine. The tokenizer must
// outlive the decoder.
TextDecoder make_text_decoder(const Tokenizer& tokenizer);

struct SamplingOptions {
  int64_t group_size = 1;          // completions per example
  GenerationSettings settings;     // sampler, stop (the template's stop strings are added), seed
  int64_t prompts_per_batch = 64;  // examples decoding at once (engine rows / group_size)
  // The examples' place in a larger set (their random streams are that place's), so that a set
  // sampled in parts (a resumed run) gets the completions of one call over the whole set.
  int64_t first_prompt_index = 0;
};

// Requests hold up to this many batches of examples (see the contract above): larger requests
// keep the decode batch full longer; smaller ones let scoring overlap generation sooner.
inline constexpr int64_t kRequestBatches = 8;

struct SampledExample {
  std::vector<int64_t> prompt_ids;
  std::vector<Completion> completions;       // group_size, in sample index order
  std::vector<reward::ScoredSample> scores;  // scores[j] is completions[j]'s
};

// Generates and scores, as described above. progress gets (finished, total, generated tokens)
// counted over all requests: total = examples x group_size.
std::vector<SampledExample> sample_and_score(RolloutEngine& engine, const Tokenizer& tokenizer,
                                             const PromptTemplate& prompt_template,
                                             const std::vector<Example>& examples, const SamplingOptions& options,
                                             reward::Scorer& runner, const ProgressFn& progress = {});

}  // namespace aha::recipes
