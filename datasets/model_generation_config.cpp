#include "datasets/model_generation_config.h"

#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"

namespace aha {
namespace fs = std::filesystem;

ModelGenerationConfig load_model_generation_config(const fs::path& model_dir) {
  ModelGenerationConfig out;
  const fs::path path = model_dir / "generation_config.json";
  if (!fs::exists(path)) return out;
  out.file = path.string();
  const auto doc = json::parse(read_file(path), path.string());
  require(doc.IsObject(), path.string() + ": expected a JSON object");
  auto number = [&](const char* key) -> std::optional<double> {
    if (!doc.HasMember(key) || doc[key].IsNull()) return std::nullopt;
    require(doc[key].IsNumber(), path.string() + ": '" + key + "' must be a number");
    return doc[key].GetDouble();
  };
  out.temperature = number("temperature");
  if (out.temperature) require(*out.temperature >= 0, path.string() + ": 'temperature' must be >= 0");
  out.top_p = number("top_p");
  if (out.top_p) require(*out.top_p > 0 && *out.top_p <= 1, path.string() + ": 'top_p' must be in (0, 1]");
  if (doc.HasMember("top_k") && !doc["top_k"].IsNull()) {
    require(doc["top_k"].IsInt64() && doc["top_k"].GetInt64() >= 0, path.string() + ": 'top_k' must be an integer >= 0");
    out.top_k = doc["top_k"].GetInt64();
  }
  if (doc.HasMember("do_sample") && !doc["do_sample"].IsNull()) {
    require(doc["do_sample"].IsBool(), path.string() + ": 'do_sample' must be true or false");
    out.do_sample = doc["do_sample"].GetBool();
  }
  return out;
}

namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

SamplingChoice choose_sampling(std::optional<double> given_temperature, std::optional<double> given_top_p,
                               std::optional<int64_t> given_top_k, const ModelGenerationConfig& model,
                               const SamplingChoice& fallback) {
  SamplingChoice out = fallback;
  const std::string model_file = fs::path(model.file).filename().string();
  auto pick = [&](auto given, auto from_model, auto& value, const char* name) {
    std::string source = "default";
    if (given) {
      value = *given;
      source = "given";
    } else if (from_model) {
      value = *from_model;
      source = model_file;
    }
    return std::string(name) + " " + number_text(static_cast<double>(value)) + " (" + source + ")";
  };
  const bool greedy_model = model.do_sample && !*model.do_sample;
  std::string temperature;
  if (!given_temperature && greedy_model) {
    out.temperature = 0;
    temperature = "temperature 0 (" + model_file + ": do_sample false)";
  } else {
    temperature = pick(given_temperature, model.temperature, out.temperature, "temperature");
  }
  out.summary = "sampling: " + temperature + ", " + pick(given_top_p, model.top_p, out.top_p, "top_p") + ", " +
                pick(given_top_k, model.top_k, out.top_k, "top_k");
  return out;
}

}  // namespace aha
