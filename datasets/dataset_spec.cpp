#include "datasets/dataset_spec.h"

#include "core/error.h"
#include "core/json.h"
#include "datasets/problem_counts.h"

namespace aha {

namespace {

int64_t positive_int(const json::ObjectReader& r, const char* key, int64_t fallback) {
  int64_t v = r.get_int(key, fallback);
  if (v < 1) throw Error(r.context() + ": field '" + key + "' must be at least 1, got " + std::to_string(v));
  return v;
}

}  // namespace

DatasetSpec parse_dataset_spec(std::string_view json_text, const std::string& context) {
  rapidjson::Document doc = json::parse(json_text, context);
  json::ObjectReader r(doc, context);
  DatasetSpec spec;
  if (r.has("path") == r.has("synthetic"))
    throw Error(context + ": give exactly one of 'path' (a JSONL file) and 'synthetic' (arithmetic or countdown)");
  if (r.has("path")) {
    spec.path = r.get_string("path");
    spec.jsonl.format = parse_jsonl_format(r.get_string("format"));
    if (spec.jsonl.format == JsonlFormat::plain) {
      r.reject_unknown({"path", "format", "limit", "every_nth", "prompt_field", "answer_field", "kind"});
      spec.jsonl.prompt_field = r.get_string("prompt_field", spec.jsonl.prompt_field);
      spec.jsonl.answer_field = r.get_string("answer_field", spec.jsonl.answer_field);
      if (r.has("kind")) spec.jsonl.plain_kind = parse_task_kind(r.get_string("kind"), context + ": field 'kind'");
    } else {
      r.reject_unknown({"path", "format", "limit", "every_nth"});
    }
    spec.jsonl.limit = r.has("limit") ? static_cast<size_t>(positive_int(r, "limit", 1)) : 0;
    spec.jsonl.every_nth = static_cast<size_t>(positive_int(r, "every_nth", 1));
    return spec;
  }
  r.reject_unknown({"synthetic", "n", "seed", "difficulty", "split", "min_steps", "max_steps"});
  spec.synthetic = r.get_string("synthetic");
  if (spec.synthetic != "arithmetic" && spec.synthetic != "countdown")
    throw Error(context + ": field 'synthetic' must be \"arithmetic\" or \"countdown\", got \"" + spec.synthetic +
                "\"");
  r.get("n");  // required
  spec.n = static_cast<size_t>(positive_int(r, "n", 1));
  int64_t seed = r.get_int("seed");
  if (seed < 0) throw Error(context + ": field 'seed' must be a non-negative integer, got " + std::to_string(seed));
  spec.seed = static_cast<uint64_t>(seed);
  // Range-checked as int64 before narrowing: 4294967298 must not become 2.
  const int64_t difficulty = r.get_int("difficulty", 2);
  if (difficulty < 1 || difficulty > 5)
    throw Error(context + ": field 'difficulty' must be 1..5, got " + std::to_string(difficulty));
  spec.difficulty = static_cast<int>(difficulty);
  spec.split = parse_split(r.get_string("split", "train"));
  if (r.has("min_steps") || r.has("max_steps")) {
    if (spec.synthetic != "arithmetic")
      throw Error(context + ": fields 'min_steps' and 'max_steps' are for synthetic arithmetic only");
    const ArithmeticConfig base = ArithmeticConfig::for_difficulty(spec.difficulty);
    const int64_t lo = r.get_int("min_steps", base.min_steps), hi = r.get_int("max_steps", base.max_steps);
    if (lo < 1 || lo > hi || hi > kMaxArithmeticSteps)
      throw Error(context + ": need 1 <= min_steps <= max_steps <= " + std::to_string(kMaxArithmeticSteps) + ", got " +
                  std::to_string(lo) + ".." + std::to_string(hi));
    spec.min_steps = static_cast<int>(lo);
    spec.max_steps = static_cast<int>(hi);
  }
  // An impossible size fails here, naming the recipe's field, not after minutes of drawing.
  const uint64_t most =
      spec.synthetic == "arithmetic"
          ? max_distinct_problems(arithmetic_config(spec), spec.split)
          : max_distinct_problems(CountdownConfig::for_difficulty(spec.difficulty), spec.split);
  if (spec.n > most)
    throw Error(context + ": field 'n' is " + std::to_string(spec.n) + ", more than the " + std::to_string(most) +
                " distinct " + split_name(spec.split) + " problems " + spec.synthetic + " difficulty " +
                std::to_string(spec.difficulty) + " can produce (at most)");
  return spec;
}

ArithmeticConfig arithmetic_config(const DatasetSpec& spec) {
  ArithmeticConfig c = ArithmeticConfig::for_difficulty(spec.difficulty);
  if (spec.min_steps > 0) c.min_steps = spec.min_steps;
  if (spec.max_steps > 0) c.max_steps = spec.max_steps;
  return c;
}

std::vector<Example> load_dataset(const DatasetSpec& spec, const std::filesystem::path& base_dir) {
  if (!spec.path.empty()) {
    std::filesystem::path p = spec.path;
    return load_jsonl(p.is_absolute() ? p : base_dir / p, spec.jsonl);
  }
  if (spec.synthetic == "arithmetic")
    return generate_arithmetic(spec.n, spec.seed, arithmetic_config(spec), spec.split);
  if (spec.synthetic == "countdown")
    return generate_countdown(spec.n, spec.seed, CountdownConfig::for_difficulty(spec.difficulty), spec.split);
  throw Error("data set spec: neither a path nor a synthetic task");
}

}  // namespace aha
