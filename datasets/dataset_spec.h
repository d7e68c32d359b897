// A data set as a recipe names it (JSON): a JSONL file read in one of jsonl_loader.h's formats,
// or a synthetic task generated on the fly (synthetic_tasks.h).
//
//   {"path": "data/gsm8k/train.jsonl", "format": "gsm8k", "limit": 1000, "every_nth": 2}
//   {"path": "mine.jsonl", "format": "plain", "prompt_field": "q", "answer_field": "a", "kind": "math"}
//   {"synthetic": "countdown", "n": 2000, "seed": 1, "difficulty": 2, "split": "train"}
//   {"synthetic": "arithmetic", "n": 500, "seed": 2, "difficulty": 2, "min_steps": 6, "max_steps": 8}
//
// Contract: exactly one of "path" and "synthetic"; "format" is required with "path";
// "prompt_field", "answer_field" and "kind" only with format plain; "n" and "seed" are required
// with "synthetic". "min_steps" / "max_steps" (arithmetic only, 1..kMaxArithmeticSteps, either or
// both) replace the difficulty's range of steps and keep its numbers: variable-depth problems
// whose hard split has only deep ones. Unknown keys, and keys of the other kind of source, are errors that list the
// accepted ones. A relative path is taken relative to the base directory given to load_dataset
// (the recipe's folder).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/example.h"
#include "datasets/jsonl_loader.h"
#include "datasets/synthetic_tasks.h"

namespace aha {

struct DatasetSpec {
  // A file ...
  std::string path;
  JsonlOptions jsonl;
  // ... or a generator: "arithmetic" or "countdown".
  std::string synthetic;
  size_t n = 0;
  uint64_t seed = 0;
  int difficulty = 2;
  int min_steps = 0, max_steps = 0;  // arithmetic: 0 = the difficulty's own step range
  Split split = Split::train;
};

// Parses the JSON text of one spec object; `context` names it in errors
// ("recipe r1_zero.json: stages[0].data").
DatasetSpec parse_dataset_spec(std::string_view json_text, const std::string& context);

// The arithmetic configuration of a synthetic spec: the difficulty's, with the steps override.
ArithmeticConfig arithmetic_config(const DatasetSpec& spec);

std::vector<Example> load_dataset(const DatasetSpec& spec, const std::filesystem::path& base_dir = ".");

}  // namespace aha
