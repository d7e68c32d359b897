// `aha export samples`: a run's stored samples (run.db's samples table, core/run_store.h) as SFT
// `messages` JSON Lines (recipes/runner/sft_record.h), optionally only those meeting conditions
// on their rewards. Provenance per record: run, stage, step, sample_index, group_index,
// prompt_id ("<stage>/step-<s>/group-<g>": the table keeps no data set id), template, reward,
// rewards (every component, floats), advantage, tokens, finish_reason.
//
// Conditions (--where, repeatable, all must hold): NAME OP NUMBER with OP one of = >= <= > <
// (== and != are not offered: = compares exactly, as rewards are exact 0/1 or stored doubles).
// NAME is reward (the weighted total), reward/<component> (a reward component, e.g.
// reward/accuracy or reward/format.think), advantage, or tokens. A component no selected sample
// has is an error naming it and listing those the samples have.
//
// A stage whose template opened <think> in the prompt (r1_zero_think, deepseek_r1) gets "<think>"
// put back in front of each completion. The output is written atomically: it appears whole or
// not at all.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "recipes/runner/sft_record.h"

namespace aha::recipes {

struct SampleCondition {
  enum class Op { eq, ge, le, gt, lt };
  std::string name;  // as written: "reward", "reward/accuracy", "advantage", "tokens"
  Op op = Op::eq;
  double value = 0;
};

// Parses one condition; errors name `what` ("--where") and say what is expected.
SampleCondition parse_sample_condition(const std::string& text, const std::string& what);

struct SampleExportOptions {
  std::string stage;  // "" : every stage
  std::vector<SampleCondition> where;
  ReasoningLayout layout = ReasoningLayout::both;
  bool overwrite = false;
};

struct SampleExportStats {
  int64_t samples = 0;   // samples read (of the chosen stages)
  int64_t exported = 0;  // records written
};

SampleExportStats export_samples(const std::filesystem::path& run_dir, const SampleExportOptions& options,
                                 const std::filesystem::path& out);

}  // namespace aha::recipes
