#include "recipes/runner/base_model.h"

#include <rapidjson/document.h>
#include <torch/torch.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "core/error.h"
#include "core/files.h"
#include "core/output_dir.h"
#include "core/json.h"
#include "datasets/seeded_random.h"
#include "policy/tokenizer/bpe_trainer.h"
#include "policy/learner/lm_trainer.h"
#include "policy/model/model_io.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/tokenizer_spec.h"
#include "recipes/runner/heldout_eval.h"

namespace aha {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string hash_hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, h);
  return buf;
}

std::string duration_text(double s) {
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s / 60), int(s) % 60);
  return buf;
}

struct StepRecord {
  int64_t step;
  double loss, lr, grad_norm;
  int64_t tokens;
};

std::string report_json(const PretrainSpec& spec, const BaseModelResult& r, const std::vector<StepRecord>& curve,
                        int64_t parameters, int64_t vocab, int64_t rows, double epochs, const std::string& device,
                        const HeldoutEvalResult* eval) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto str = [&](const std::string& s) { return rapidjson::Value(s.c_str(), a); };
  d.AddMember("complete", true, a);
  d.AddMember("spec_hash", str(hash_hex(spec.hash)), a);
  d.AddMember("spec_source", str(spec.source), a);
  d.AddMember("device", str(device), a);
  d.AddMember("threads", int64_t(torch::get_num_threads()), a);
  d.AddMember("parameters", parameters, a);
  d.AddMember("vocab_size", vocab, a);
  d.AddMember("steps", r.steps, a);
  d.AddMember("skipped_steps", r.skipped_steps, a);
  d.AddMember("tokens", r.tokens, a);
  d.AddMember("packed_rows", rows, a);
  d.AddMember("epochs", epochs, a);
  d.AddMember("wall_seconds", r.wall_seconds, a);
  d.AddMember("train_seconds", r.train_seconds, a);
  d.AddMember("tokens_per_second", r.train_seconds > 0 ? double(r.tokens) / r.train_seconds : 0.0, a);
  d.AddMember("final_loss", r.final_loss, a);
  rapidjson::Value loss(rapidjson::kArrayType);
  for (const auto& s : curve) {
    rapidjson::Value point(rapidjson::kObjectType);
    point.AddMember("step", s.step, a);
    point.AddMember("loss", s.loss, a);
    point.AddMember("lr", s.lr, a);
    point.AddMember("grad_norm", s.grad_norm, a);
    point.AddMember("tokens", s.tokens, a);
    loss.PushBack(point, a);
  }
  d.AddMember("loss_curve", loss, a);
  if (eval) {
    rapidjson::Value e(rapidjson::kObjectType);
    e.AddMember("style", "Question: {problem}\\nAnswer:", a);
    e.AddMember("problems", eval->problems, a);
    e.AddMember("correct", eval->correct, a);
    e.AddMember("accuracy", eval->accuracy(), a);
    rapidjson::Value samples(rapidjson::kArrayType);
    for (size_t i = 0; i < eval->samples.size() && i < 8; ++i) {
      const auto& s = eval->samples[i];
      rapidjson::Value v(rapidjson::kObjectType);
      v.AddMember("prompt", str(s.prompt), a);
      v.AddMember("completion", str(s.completion), a);
      v.AddMember("gold", str(s.gold), a);
      v.AddMember("correct", s.correct, a);
      samples.PushBack(v, a);
    }
    e.AddMember("samples", samples, a);
    d.AddMember("heldout_plain", e, a);
  }
  return json::to_string(d, /*pretty=*/true) + "\n";
}

// Rows of [T] token ids in a seeded order that is reshuffled every epoch.
class RowSampler {
 public:
  RowSampler(std::vector<std::vector<int64_t>> rows, uint64_t seed) : rows_(std::move(rows)), seed_(seed) {}
  torch::Tensor next_batch(int64_t batch) {
    std::vector<int64_t> flat;
    for (int64_t i = 0; i < batch; ++i) {
      if (cursor_ == order_.size()) reshuffle();
      const auto& row = rows_[order_[cursor_++]];
      flat.insert(flat.end(), row.begin(), row.end());
    }
    return torch::tensor(flat, torch::kInt64).view({batch, -1});
  }
  double epochs() const { return rows_.empty() ? 0 : double(epoch_ - 1) + double(cursor_) / double(rows_.size()); }
  size_t size() const { return rows_.size(); }

 private:
  void reshuffle() {
    order_.resize(rows_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    SeededRandom rng(mix_seed(seed_, epoch_++));
    rng.shuffle(order_);
    cursor_ = 0;
  }
  std::vector<std::vector<int64_t>> rows_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  uint64_t seed_, epoch_ = 0;
};

}  // namespace

bool holds_base_model(const fs::path& dir, uint64_t spec_hash) {
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                           "pretrain_report.json"})
    if (!fs::exists(dir / name)) return false;
  try {
    auto report = json::parse(read_file(dir / "pretrain_report.json"), "pretrain_report.json");
    json::ObjectReader r(report, "pretrain_report.json");
    return r.get_bool("complete", false) && r.get_string("spec_hash", "") == hash_hex(spec_hash);
  } catch (const Error&) {
    return false;  // unreadable: rebuild
  }
}

BaseModelResult ensure_base_model(const PretrainSpec& spec, const fs::path& dir, const PretrainRunOptions& options) {
  BaseModelResult result;
  result.dir = dir;
  const auto start = Clock::now();
  auto stage = [&](const char* name) {
    if (options.on_stage) options.on_stage(name);
  };
  if (holds_base_model(dir, spec.hash)) {
    auto report = json::parse(read_file(dir / "pretrain_report.json"), (dir / "pretrain_report.json").string());
    json::ObjectReader r(report, "pretrain_report.json");
    result.reused = true;
    result.steps = r.get_int("steps", 0);
    result.tokens = r.get_int("tokens", 0);
    result.final_loss = r.get_double("final_loss", 0);
    if (r.has("heldout_plain")) result.heldout_accuracy = r.object("heldout_plain").get_double("accuracy");
    if (options.progress)
      std::fprintf(stderr, "pretrain: reuses %s (built from the same spec, hash %s)\n", dir.c_str(),
                   hash_hex(spec.hash).c_str());
    return result;
  }
  check_output_dir(dir, options.target_name, "pretrain", options.overwrite);  // before any work
  const auto& t = spec.training;
  const int64_t total_steps = t.total_steps();

  stage("corpus");
  auto docs = generate_base_corpus(spec.corpus);
  std::vector<std::string> texts;
  texts.reserve(docs.size());
  for (auto& d : docs) texts.push_back(std::move(d.text));

  stage("tokenizer");
  BpeTrainerOptions bpe_options;
  bpe_options.vocab_size = spec.tokenizer.vocab_size;
  bpe_options.min_frequency = spec.tokenizer.min_frequency;
  bpe_options.model_max_length = spec.model.max_position_embeddings;
  BpeTrainer bpe(bpe_options);
  const size_t bpe_docs = spec.tokenizer.documents > 0 ? std::min(texts.size(), size_t(spec.tokenizer.documents))
                                                       : texts.size();
  for (size_t i = 0; i < bpe_docs; ++i) bpe.add_text(texts[i]);
  const TrainedBpe trained = bpe.train();
  TokenizerSpec tok_spec = parse_tokenizer_json(trained.tokenizer_json(), "trained tokenizer.json");
  apply_tokenizer_config(tok_spec, trained.tokenizer_config_json(), "trained tokenizer_config.json");
  const Tokenizer tokenizer(tok_spec);
  const TokenId eos = *tokenizer.eos_id();
  auto encoded = tokenizer.encode_batch(texts, /*add_special_tokens=*/false);
  auto rows = policy::pack_documents(encoded, t.seq_len, eos);
  require(int64_t(rows.size()) >= t.batch_size,
          spec.source + ": the corpus packs into " + std::to_string(rows.size()) + " rows of " +
              std::to_string(t.seq_len) + " tokens, fewer than batch_size " + std::to_string(t.batch_size) +
              "; raise corpus.documents");
  const int64_t packed_rows = int64_t(rows.size());
  RowSampler sampler(std::move(rows), mix_seed(t.seed, stable_hash("pretrain rows")));

  stage("train");
  auto config = ModelConfig::from_json(spec.config_json(trained.size(), eos), spec.source + ": model");
  const auto dtype = parse_dtype(t.dtype);
  auto model = init_model(config, t.seed, dtype, options.device);
  policy::LmTrainerOptions lm;
  lm.optimizer.lr = t.lr;
  lm.optimizer.beta2 = 0.95;  // the usual pretraining value: steadier with few, noisy steps
  lm.optimizer.max_grad_norm = t.max_grad_norm;
  lm.optimizer.schedule.decay = policy::LrDecay::cosine;
  lm.optimizer.schedule.warmup_steps = t.warmup_steps;
  lm.optimizer.schedule.total_steps = total_steps;
  lm.optimizer.schedule.min_lr_ratio = t.min_lr_ratio;
  lm.weight_decay = t.weight_decay;
  lm.micro_batch_size = t.micro_batch_size;
  lm.autocast_bf16 = t.autocast_bf16 && options.device.is_cuda() && dtype == torch::kFloat32;
  policy::LmTrainer trainer(std::move(model), lm);
  std::vector<StepRecord> curve;
  const auto train_start = Clock::now();
  auto last_print = Clock::now() - std::chrono::seconds(10);
  for (int64_t step = 0; step < total_steps; ++step) {
    policy::LmBatch batch;
    batch.input_ids = sampler.next_batch(t.batch_size);
    auto m = trainer.train_step(batch);
    result.tokens += t.batch_size * t.seq_len;
    result.skipped_steps += !m.applied;
    curve.push_back({step, m.loss, m.lr, m.grad_norm, result.tokens});
    result.final_loss = m.loss;
    if (options.progress && (seconds_since(last_print) >= 1.0 || step + 1 == total_steps)) {
      last_print = Clock::now();
      const double elapsed = seconds_since(train_start);
      const double eta = elapsed / double(step + 1) * double(total_steps - step - 1);
      std::fprintf(stderr, "\rpretrain step %" PRId64 "/%" PRId64 "  loss %.4f  lr %.2e  %.0f tokens/s  ETA %s   ",
                   step + 1, total_steps, m.loss, m.lr, double(result.tokens) / elapsed, duration_text(eta).c_str());
      if (step + 1 == total_steps) std::fprintf(stderr, "\n");
    }
  }
  result.steps = total_steps;
  result.train_seconds = seconds_since(train_start);
  if (total_steps > 0 && result.skipped_steps == total_steps)
    throw Error(spec.source + ": every pretraining step was skipped (non-finite loss or gradient), so nothing was "
                "learned and nothing is saved; check training.lr and the model sizes");
  auto trained_model = trainer.release_model();
  for (auto& p : trained_model->parameters()) p.requires_grad_(false);

  stage("save");
  fs::path target = fs::absolute(dir);
  if (target.filename().empty()) target = target.parent_path();
  fs::create_directories(target.parent_path());
  const fs::path tmp = fresh_build_dir(target);
  try {
    save_model(*trained_model, tmp, {.made_by = "pretrain"});
    trained.write(tmp);
    const std::string e = std::to_string(eos);
    write_file_atomic(tmp / "generation_config.json", "{\n  \"bos_token_id\": " + e + ",\n  \"eos_token_id\": " + e +
                                                          ",\n  \"pad_token_id\": " + e + "\n}\n");
    write_file_atomic(tmp / "pretrain_spec.json", spec.canonical_json + "\n");
    stage("eval");
    std::optional<HeldoutEvalResult> eval;
    if (spec.eval.problems > 0) {
      eval = evaluate_plain_heldout(*trained_model, tokenizer, spec.eval);
      result.heldout_accuracy = eval->accuracy();
    }
    result.wall_seconds = seconds_since(start);
    write_file_atomic(tmp / "pretrain_report.json",
                      report_json(spec, result, curve, config.parameter_count(), trained.size(), packed_rows,
                                  sampler.epochs(), options.device.str(), eval ? &*eval : nullptr));
    stage("commit");
    swap_in_dir(tmp, target);
  } catch (const fs::filesystem_error& e) {
    remove_tree(tmp);
    throw Error("cannot write the base model to " + target.string() + ": " + e.what());
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
  return result;
}

}  // namespace aha
