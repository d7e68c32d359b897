#include "recipes/runner/grpo_stage.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/output_dir.h"
#include "core/progress_bar.h"
#include "core/run_store.h"
#include "datasets/data_iterator.h"
#include "datasets/prompt_template.h"
#include "datasets/seeded_random.h"
#include "policy/learner/advantages.h"
#include "policy/learner/checkpoint.h"
#include "policy/learner/kl.h"
#include "policy/learner/off_policy_correction.h"
#include "policy/model/model_io.h"
#include "policy/parallel/metric_reduction.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/learner/train_metrics_log.h"
#include "recipes/runner/base_model.h"
#include "datasets/model_generation_config.h"
#include "recipes/runner/batch_builder.h"
#include "recipes/runner/evaluation.h"
#include "recipes/runner/sampling.h"
#include "recipes/runner/reward_scoring.h"
#include "recipes/runner/rollout_controller.h"
#include "recipes/runner/split_rollout.h"
#include "recipes/runner/staleness.h"
#include "recipes/runner/step_sampling.h"
#include "recipes/runner/reward_selection.h"
#include "reward/reward_runner.h"
#include "rollout/rollout_engine.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Metrics = std::vector<std::pair<std::string, double>>;

constexpr const char* kStage = "grpo";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}


// Every data set's examples, in order; data_set_of[k] is example k's data set index (for the
// per-data-set reward selection, reward_selection.h), when asked for.
std::vector<Example> load_all(const std::vector<DatasetSpec>& specs, const fs::path& base_dir,
                              std::vector<size_t>* data_set_of = nullptr) {
  std::vector<Example> all;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto part = load_dataset(specs[i], base_dir);
    if (data_set_of) data_set_of->insert(data_set_of->end(), part.size(), i);
    all.insert(all.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return all;
}

// The data cursor as the checkpoint's one integer: epoch * size + position.
int64_t pack_cursor(const DataCursor& c) { return static_cast<int64_t>(c.epoch * c.size + c.position); }
DataCursor unpack_cursor(int64_t packed, uint64_t seed, size_t size) {
  DataCursor c;
  c.epoch = static_cast<uint64_t>(packed) / size;
  c.position = static_cast<uint64_t>(packed) % size;
  c.seed = seed;
  c.size = size;
  c.shuffle = true;
  return c;
}

std::string fixed(double v, int digits = 2) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

// Keeps the newest keep_last complete step directories of a stage.
void prune_checkpoints(const fs::path& stage_dir, int64_t keep_last) {
  if (keep_last <= 0 || !fs::exists(stage_dir)) return;
  std::vector<std::pair<int64_t, fs::path>> steps;
  for (const auto& entry : fs::directory_iterator(stage_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) != 0 || name.find('.') != std::string::npos) continue;
    if (!fs::exists(entry.path() / "state.json")) continue;
    steps.emplace_back(std::stoll(name.substr(5)), entry.path());
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + keep_last < steps.size(); ++i) remove_tree(steps[i].second);
}

// One step's rollout: its sampling rounds (step_sampling.h: the groups kept for the learner,
// the figures of all it sampled), with what the learner needs to know about them.
struct StepRollout {
  int64_t batch = 0;          // the step whose seeds drew it
  int64_t cursor_before = 0;  // the packed data cursor before its prompts were drawn
  StepSampling sampling;
  uint64_t data_epoch = 0;  // the data's epoch after its last draw (data/epoch)
  double rollout_s = 0;
  // Split layout: the round on the rollout workers and not yet back (complete_rollout waits
  // for it and any refill rounds; -1: none), with the examples its prompts came from and the
  // rewards that score each (its data set's, reward_selection.h; empty: every reward).
  int64_t task = -1;
  std::vector<Example> examples;
  std::vector<std::vector<std::string>> reward_names;
};

class GrpoRun {
 public:
  GrpoRun(const Recipe& recipe, const RunOptions& options) : recipe_(recipe), options_(options) {
    // Data parallel: only rank 0 shows progress and writes the run directory.
    comm_ = options_.comm;
    main_ = !comm_ || comm_->rank() == 0;
    if (!main_) options_.progress = false;
  }

  // rollout.use_model_generation_config: the model's sampling values replace the recipe's.
  void use_model_generation_config() {
    auto& r = recipe_.rollout;
    const auto model = load_model_generation_config(model_dir_);
    const auto chosen = choose_sampling(std::nullopt, std::nullopt, std::nullopt, model, {r.temperature, r.top_p, r.top_k, ""});
    require(chosen.temperature > 0, "rollout.use_model_generation_config: " + model_dir_.string() +
                                        "/generation_config.json asks for greedy decoding (do_sample false or "
                                        "temperature 0), and GRPO needs sampling");
    r.temperature = chosen.temperature;
    r.top_p = chosen.top_p;
    r.top_k = chosen.top_k;
    if (options_.progress) std::fprintf(stderr, "%s (default: the recipe's rollout values)\n", chosen.summary.c_str());
  }
  RunSummary run();

 private:
  void prepare();
  Metrics evaluate_now(int64_t step);
  StepRollout new_rollout(int64_t batch_index, int64_t target);
  StepRollout sample_rollout(int64_t batch_index, int64_t version);
  void start_rollout_workers(int64_t version);
  StepRollout submit_rollout(int64_t batch_index);
  void submit_round(StepRollout& rollout, int64_t prompts);
  void complete_rollout(StepRollout& rollout, int64_t version);
  bool all_drawn(const StepRollout& rollout) const;
  void sample_ahead(int64_t step, double& rollout_s, int64_t& generated);
  Metrics train_one_step(int64_t step, std::vector<Sample>& samples);
  void sync_rollout_weights();  // every rank (a collective under ZeRO-3); no-op otherwise
  void checkpoint(int64_t step);

  Recipe recipe_;  // a copy: use_model_generation_config changes its rollout values
  RunOptions options_;
  fs::path run_dir_, stage_dir_, model_dir_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<PromptTemplate> template_;
  std::vector<Example> train_;
  std::vector<size_t> train_set_;  // train_[k]'s data set (recipe_.train_data index)
  std::vector<EvalDataset> eval_;
  std::unique_ptr<reward::Scorer> rewards_;  // here or on reward servers (reward_scoring.h)
  std::unique_ptr<policy::GrpoTrainer> trainer_;
  std::unique_ptr<RolloutEngine> engine_;
  // ZeRO-3: the whole weights the engine decodes from, in the compute dtype (the policy's
  // parameters are sharded), refreshed by sync_rollout_weights() after every weight change.
  std::unique_ptr<Transformer> rollout_policy_;
  bool rollout_from_files_ = false;  // rollout_policy_ loaded from the model directory: in sync until a resume
  std::unique_ptr<DataIterator> data_;
  std::unique_ptr<RunStore> store_;  // rank 0's only
  std::string stage_name_ = kStage;
  std::shared_ptr<parallel::Communicator> comm_;  // null: one process
  bool main_ = true;                               // rank 0 (or the only process)
  int64_t stage_id_ = 0;
  int64_t pad_id_ = 0;
  int64_t applied_steps_ = 0, skipped_steps_ = 0;  // this invocation's, for the all-skipped check
  std::vector<int64_t> eos_ids_;
  // Asynchronous GRPO: batches sampled ahead of the learner, oldest first (at most
  // max_staleness + 1), the index of the next batch to sample (its seeds), groups dropped.
  std::deque<StepRollout> rollouts_;
  int64_t next_batch_ = 0;
  int64_t dropped_groups_ = 0;
  std::unique_ptr<RolloutController> workers_;  // split layout only
  RolloutControllerStats worker_stats_;         // as of the previous step, for per-step figures
};

}  // namespace

// The verifier of evaluations: the recipe's accuracy reward, as a one-reward spec.
std::string accuracy_spec_json(const Recipe& r) {
  for (const auto& spec : r.rewards) {
    if (spec.name != r.accuracy_reward) continue;
    rapidjson::Document doc(rapidjson::kArrayType);
    auto& a = doc.GetAllocator();
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("name", rapidjson::Value(spec.name.c_str(), a), a);
    entry.AddMember("kind", rapidjson::Value(spec.kind.c_str(), a), a);
    entry.AddMember("timeout_seconds", spec.timeout_seconds, a);
    rapidjson::Document options = json::parse(spec.options_json, "reward options");
    entry.AddMember("options", rapidjson::Value(options, a), a);
    doc.PushBack(entry, a);
    return json::to_string(doc);
  }
  throw Error("recipe: no reward named " + r.accuracy_reward);
}

std::string language_spec_json(const Recipe& r) {
  for (const auto& spec : r.rewards) {
    if (spec.kind != "language_consistency") continue;
    rapidjson::Document entry(rapidjson::kObjectType);
    auto& a = entry.GetAllocator();
    entry.AddMember("name", rapidjson::Value(spec.name.c_str(), a), a);
    entry.AddMember("kind", rapidjson::Value(spec.kind.c_str(), a), a);
    rapidjson::Document options = json::parse(spec.options_json, "reward options");
    entry.AddMember("options", rapidjson::Value(options, a), a);
    return json::to_string(entry);
  }
  return "";
}

torch::Device choose_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  return parse_device(name);
}

fs::path checked_run_dir(const Recipe& recipe, const RunOptions& options) {
  return checked_run_dir(recipe.name, recipe.canonical_json, options);
}

fs::path checked_run_dir(const std::string& name, const std::string& canonical_json, const RunOptions& options) {
  const fs::path run_dir = options.run_dir.empty() ? fs::path("runs") / name : options.run_dir;
  const fs::path db = run_dir / "run.db";
  if (!options.resume && fs::exists(db))
    throw Error("run directory " + run_dir.string() + " already holds a run (run.db): continue it with --resume, "
                "or choose another with --run-dir");
  if (!options.resume && fs::exists(run_dir) && !is_empty_dir(run_dir))
    throw Error("run directory " + run_dir.string() + " exists and holds files but no run (no run.db); aha writes "
                "a new run only into a new or empty directory: choose another with --run-dir");
  if (options.resume) {
    if (!fs::exists(db)) throw Error("--resume: " + run_dir.string() + " holds no run (no run.db) to continue");
    // Checked before any work: a run store without the recipe it was started with (empty,
    // another program's database) never turns --resume into a fresh start over its folder.
    RunStoreOptions read_only;
    read_only.read_only = true;
    std::optional<std::string> stored;
    try {
      stored = RunStore(db, read_only).config("recipe");
    } catch (const Error& e) {
      throw Error("--resume: " + db.string() + " is not a readable aha run store (" + e.what() +
                  "); refusing to continue over it");
    }
    if (!stored)
      throw Error("--resume: " + db.string() + " holds no recipe, so it is not a run that aha started; "
                  "refusing to continue over it");
    if (*stored != canonical_json)
      throw Error("--resume: the recipe differs from the one " + run_dir.string() +
                  " was started with (compare with `sqlite3 run.db \"select value from config where key='recipe'\"`)");
  }
  return run_dir;
}

void check_model_source(const Recipe& recipe) {
  const fs::path model_dir = recipe.model.path;
  if (!fs::exists(model_dir / "config.json")) {
    if (recipe.model.build.empty())
      throw Error("model.path " + model_dir.string() + " holds no model (no config.json), and the recipe has no "
                  "model.build spec to make one: give a Hugging Face model directory with --set model.path=DIR");
  } else if (!recipe.model.build.empty() && output_made_by(model_dir) != "pretrain" &&
             !fs::exists(model_dir / "pretrain_report.json")) {  // the report: bases built before markers
    throw Error("model.path " + model_dir.string() + " holds a model that no model.build made, and the recipe's "
                "model.build (" + recipe.model.build.string() + ") builds a base model there only where none "
                "exists; aha never replaces a model it did not write. To train that model, drop the build: "
                "--set model.build=null; to build a base model, choose a new model.path");
  }
}

namespace {

void GrpoRun::prepare() {
  const bool in_graph = !options_.stage_name.empty();
  if (in_graph) stage_name_ = options_.stage_name;
  // Data parallel: rank 0 checks (and later writes) the run directory; the others only read it.
  if (in_graph)
    run_dir_ = options_.run_dir;
  else
    run_dir_ = main_ ? checked_run_dir(recipe_, options_)
                     : (options_.run_dir.empty() ? fs::path("runs") / recipe_.name : options_.run_dir);
  if (comm_)
    require(recipe_.rollout.prompts_per_step % comm_->size() == 0,
            "rollout.prompts_per_step " + std::to_string(recipe_.rollout.prompts_per_step) +
                " must be divisible by the world size " + std::to_string(comm_->size()) +
                " (each rank samples an equal share of every step's prompts)");
  if (recipe_.layout.split)
    require(!comm_, "layout.mode \"split\": not yet with data-parallel ranks (--nproc-per-node, torchrun); the "
                    "learner is one process with its rollout workers");
  stage_dir_ = run_dir_ / "checkpoints" / stage_name_;
  const fs::path db = run_dir_ / "run.db";

  // Everything that can be checked before any work: device, data, rewards, the model.
  device_ = choose_device(recipe_.model.device);
  if (comm_ && device_.is_cuda()) device_ = torch::Device(torch::kCUDA, static_cast<int8_t>(comm_->world().local_rank));
  if (recipe_.model.threads > 0) torch::set_num_threads(static_cast<int>(recipe_.model.threads));
  train_ = load_all(recipe_.train_data, recipe_.base_dir, &train_set_);
  require(!train_.empty(), "recipe " + recipe_.file.string() + ": the training data is empty");
  for (const auto& [name, spec] : recipe_.eval_data) eval_.push_back({name, load_dataset(spec, recipe_.base_dir)});
  rewards_ = make_reward_scorer(recipe_);

  model_dir_ = in_graph ? options_.stage_model : fs::path(recipe_.model.path);
  if (!in_graph) check_model_source(recipe_);
  if (!in_graph && !recipe_.model.build.empty() && main_) {
    PretrainRunOptions pretrain;
    pretrain.device = device_;
    pretrain.progress = options_.progress;
    pretrain.target_name = "model.path";
    auto base = ensure_base_model(PretrainSpec::from_file(recipe_.model.build.string(), recipe_.model.build_overrides),
                                  model_dir_, pretrain);
    if (options_.progress)
      std::fprintf(stderr, "base model %s: %s\n", model_dir_.string().c_str(),
                   base.reused ? "reused (built earlier from the same spec)" : "built");
  }

  if (comm_) comm_->patient_barrier("rank 0 preparing the run (checks, base model)");
  template_ = std::make_unique<PromptTemplate>(PromptTemplate::from_name(
      recipe_.template_name, recipe_.template_stop_strings, model_dir_, recipe_.system_prompt));
  if (recipe_.rollout.use_model_generation_config) use_model_generation_config();

  LoadOptions load;
  load.device = device_;
  load.dtype = parse_dtype(recipe_.model.dtype);
  // ZeRO-3 loads sharded: each rank reads only its float32 master range from the files (with
  // expert parallelism the replicated parameters' range and its own experts), never the whole
  // model (fully_sharded.h). A model.dtype other than float32 takes the whole load, after which
  // the trainer's checks say why zero3 refuses it.
  const bool sharded_load = comm_ && comm_->size() > 1 && recipe_.trainer.sharding == policy::Sharding::zero3 &&
                            load.dtype == torch::kFloat32;
  policy::ShardedModel sharded;
  std::unique_ptr<Transformer> whole;
  if (sharded_load)
    sharded = policy::load_model_sharded(model_dir_, comm_->rank(), comm_->size(), device_,
                                         recipe_.trainer.expert_parallel);
  else
    whole = load_model(model_dir_, load);
  const ModelConfig config = sharded_load ? sharded.model->config() : whole->config();
  tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_dir(model_dir_));
  eos_ids_ = default_eos_ids(model_dir_, config, tokenizer_.get());
  require(!eos_ids_.empty(), model_dir_.string() + ": no EOS token id in config.json, generation_config.json or the "
                             "tokenizer; the rollout needs one");
  pad_id_ = tokenizer_->pad_id().value_or(eos_ids_.front());

  const auto files = sharded.checkpoint;  // the sharded load's opened files, for the rollout's copy
  if (sharded_load) {
    trainer_ = std::make_unique<policy::GrpoTrainer>(std::move(sharded), recipe_.trainer, comm_);
  } else {
    trainer_ = std::make_unique<policy::GrpoTrainer>(std::move(whole), recipe_.trainer);
    if (comm_) trainer_->set_data_parallel(comm_);  // data parallel: rank 0's weights everywhere
  }
  EngineOptions engine_options;
  engine_options.use_cuda_graphs = recipe_.rollout.use_cuda_graphs;
  Transformer* rollout_model = &trainer_->policy();
  if (trainer_->fully_sharded() || trainer_->expert_parallel()) {
    // A whole copy in the compute dtype: ZeRO-3's parameters are sharded, expert parallelism's
    // routed experts are (the rollout needs every expert on every rank).
    const auto dtype = recipe_.trainer.autocast_bf16
                           ? torch::kBFloat16
                           : (trainer_->expert_parallel() ? trainer_->policy().dtype() : torch::kFloat32);
    // Loaded sharded: read from the files in its own dtype, what gathering the masters would
    // give bit for bit (fully_sharded.h), so no gather at start.
    rollout_from_files_ = sharded_load;
    rollout_policy_ = std::make_unique<Transformer>(config, dtype, device_);
    if (files) files->load_into(*rollout_policy_);
    rollout_model = rollout_policy_.get();
  }
  engine_ = std::make_unique<RolloutEngine>(*rollout_model, engine_options, make_text_decoder(*tokenizer_));
  data_ = std::make_unique<DataIterator>(train_.size(), recipe_.schedule.seed);

  if (!main_) return;  // data parallel: only rank 0 writes the run directory
  fs::create_directories(run_dir_);
  RunStoreOptions store_options;
  store_options.retention.keep_last_steps = recipe_.logging.keep_samples_last_steps;
  store_options.retention.keep_every = recipe_.logging.keep_samples_every;
  store_ = std::make_unique<RunStore>(db, store_options);
  if (!in_graph) store_->set_config("recipe", recipe_.canonical_json);
  stage_id_ = store_->begin_stage(stage_name_, "grpo", recipe_.canonical_json);
}

SamplingOptions sampling_options(const Recipe& r, const std::vector<int64_t>& eos, uint64_t seed) {
  SamplingOptions s;
  s.group_size = r.rollout.group_size;
  s.settings.sampler.temperature = r.rollout.temperature;
  s.settings.sampler.top_p = r.rollout.top_p;
  s.settings.sampler.top_k = r.rollout.top_k;
  s.settings.stop.eos_token_ids = eos;
  s.settings.stop.max_new_tokens = r.rollout.max_new_tokens;
  s.settings.seed = seed;
  s.prompts_per_batch = r.rollout.prompts_per_batch > 0 ? r.rollout.prompts_per_batch : r.rollout.prompts_per_step;
  return s;
}

void GrpoRun::sync_rollout_weights() {
  if (!rollout_policy_) return;
  if (comm_) comm_->set_activity("gathering the sharded weights for the rollout");
  trainer_->copy_policy_into(*rollout_policy_);
}

Metrics GrpoRun::evaluate_now(int64_t step) {
  if (eval_.empty() || !main_) return {};  // data parallel: rank 0 evaluates
  EvalOptions o;
  o.prompt_template = *template_;
  o.samples = recipe_.eval.samples;
  o.temperature = recipe_.eval.temperature;
  o.top_p = recipe_.eval.top_p;
  o.max_new_tokens = recipe_.eval.max_new_tokens;
  o.prompts_per_batch = recipe_.eval.prompts_per_batch;
  o.group_by = recipe_.eval.group_by;
  o.seed = mix_seed(recipe_.schedule.seed, 0x6576616cULL);  // the same draws at every evaluation
  o.eos_token_ids = eos_ids_;
  o.correctness_reward = accuracy_spec_json(recipe_);
  o.language_reward = language_spec_json(recipe_);
  auto result = evaluate(*engine_, *tokenizer_, eval_, o);
  auto metrics = eval_metrics(result);
  store_->write_metrics(stage_id_, step, metrics);
  return metrics;
}

StepRollout GrpoRun::new_rollout(int64_t batch_index, int64_t target) {
  return StepRollout{.batch = batch_index,
                     .cursor_before = pack_cursor(data_->cursor()),
                     .sampling = StepSampling(recipe_.rollout, target)};
}

StepRollout GrpoRun::sample_rollout(int64_t batch_index, int64_t version) {
  // Data parallel: every rank draws the same prompts and samples its share of them; the
  // refill rounds follow the largest shortfall of any rank, so all draw alike.
  const int world = comm_ ? comm_->size() : 1;
  StepRollout out = new_rollout(batch_index, recipe_.rollout.prompts_per_step / world);
  auto& sampling = out.sampling;
  while (sampling.may_sample_again()) {
    int64_t want = sampling.shortfall();
    if (comm_) {
      comm_->set_activity("step " + std::to_string(batch_index + 1) + ": agreeing on prompts to sample");
      want = static_cast<int64_t>(comm_->all_reduce({double(want)}, c10d::ReduceOp::MAX, "all-reduce of shortfalls")[0]);
    }
    if (want <= 0) break;
    auto indices = data_->next_indices(static_cast<size_t>(want * world));
    if (comm_) {
      const auto [begin, end] = parallel::share_of(static_cast<int64_t>(indices.size()), comm_->rank(), world);
      indices = std::vector<size_t>(indices.begin() + begin, indices.begin() + end);
      comm_->set_activity("step " + std::to_string(batch_index + 1) + ": sampling and scoring");
    }
    std::vector<Example> batch;
    std::vector<std::string> prompts;
    for (size_t k : indices) {
      batch.push_back(train_[k]);
      prompts.push_back(train_[k].prompt);
    }
    uint64_t seed = round_seed(recipe_.schedule.seed, batch_index, sampling.rounds());
    if (comm_) seed = mix_seed(seed, 0x72616e6b00ULL + static_cast<uint64_t>(comm_->rank()));
    const auto t0 = Clock::now();
    auto sampled = sample_and_score(*engine_, *tokenizer_, *template_, batch, sampling_options(recipe_, eos_ids_, seed),
                                    *rewards_);
    out.rollout_s += seconds_since(t0);
    // A data set that names its rewards is scored by those alone (reward_selection.h).
    for (size_t i = 0; i < sampled.size(); ++i)
      for (auto& score : sampled[i].scores)
        keep_only_rewards(score, recipe_.rewards, recipe_.train_rewards[train_set_[indices[i]]]);
    sampling.add_round(std::move(sampled), prompts, version);
  }
  out.data_epoch = data_->epoch();
  if (comm_) {
    // Every rank trains on the same number of groups (the learner's collectives must match).
    const auto fewest = static_cast<size_t>(comm_->all_reduce({double(sampling.kept().groups.size())},
                                                               c10d::ReduceOp::MIN, "all-reduce of kept groups")[0]);
    sampling.keep_first(fewest);
  }
  return out;
}

void GrpoRun::start_rollout_workers(int64_t version) {
  RolloutControllerOptions o;
  o.program = options_.rollout_worker_program.empty() ? std::string("/proc/self/exe")
                                                      : options_.rollout_worker_program.string();
  o.workers = static_cast<int>(recipe_.layout.rollout_workers);
  o.bucket_bytes = recipe_.layout.weight_sync_bucket_mb << 20;
  o.backend = recipe_.layout.backend;
  const int gpus = device_.is_cuda() ? static_cast<int>(torch::cuda::device_count()) : 0;
  o.worker_config = [this, gpus](int i) {
    return rollout_worker_config(recipe_, fs::absolute(model_dir_), device_, gpus, eos_ids_, i);
  };
  std::vector<torch::Tensor> tensors;
  for (auto& [name, t] : trainer_->policy().named_parameters()) tensors.push_back(t);
  for (auto& [name, t] : trainer_->policy().named_buffers()) tensors.push_back(t);
  if (options_.progress)
    std::fprintf(stderr, "starting %lld rollout worker(s)\n", static_cast<long long>(recipe_.layout.rollout_workers));
  workers_ = std::make_unique<RolloutController>(o, std::move(tensors), version);
  worker_stats_ = workers_->stats();
}

StepRollout GrpoRun::submit_rollout(int64_t batch_index) {
  StepRollout out = new_rollout(batch_index, recipe_.rollout.prompts_per_step);
  submit_round(out, recipe_.rollout.prompts_per_step);
  return out;
}

// The next `prompts` prompts to the workers as the rollout's next round, with the seed that
// round has in one process (sample_rollout).
void GrpoRun::submit_round(StepRollout& r, int64_t prompts) {
  r.examples.clear();
  r.reward_names.clear();
  std::vector<std::string> texts;
  for (size_t k : data_->next_indices(static_cast<size_t>(prompts))) {
    r.examples.push_back(train_[k]);
    r.reward_names.push_back(recipe_.train_rewards[train_set_[k]]);
    texts.push_back(train_[k].prompt);
  }
  r.data_epoch = data_->epoch();
  // Trained at step r.batch (version r.batch): its policy may be max_staleness older.
  r.task = workers_->submit(r.batch, std::max<int64_t>(0, r.batch - recipe_.async.max_staleness),
                            round_seed(recipe_.schedule.seed, r.batch, r.sampling.rounds()), std::move(texts));
}

// Waits for the rollout's round on the workers and scores it; with dynamic sampling, submits
// and waits for refill rounds as one process samples them, until the step has its groups.
void GrpoRun::complete_rollout(StepRollout& r, int64_t version) {
  while (r.task >= 0) {
    auto result = workers_->wait(r.task, version);
    r.task = -1;
    const int64_t sampled_by = result.version;
    auto groups = score_rollout_result(std::move(result), r.examples, recipe_.rollout.group_size, *rewards_,
                                       recipe_.rewards, r.reward_names);
    std::vector<std::string> prompts;
    for (const auto& e : r.examples) prompts.push_back(e.prompt);
    r.sampling.add_round(std::move(groups), prompts, sampled_by);
    if (r.sampling.may_sample_again() && r.sampling.shortfall() > 0) submit_round(r, r.sampling.shortfall());
  }
}

// Whether no further prompts can be drawn for the rollout, so that the next step's may be: in
// one process always (its rounds ran at once); on the workers once its last possible round is
// out, or once no refill is needed.
bool GrpoRun::all_drawn(const StepRollout& r) const {
  return r.task < 0 || !r.sampling.may_sample_again(/*in_flight=*/1);
}

// Asynchronous GRPO: the rollout runs up to max_staleness batches ahead of the learner. In one
// process the batches ahead are sampled now, by the policy as it is (version = updates so far),
// so the batch trained on at steady state is max_staleness versions old; with 0 this is
// on-policy GRPO, one batch sampled and trained per step. Nothing is sampled for steps beyond
// the schedule.
// Split layout: the batches go to the rollout workers, to be sampled while this process
// trains. A batch's prompts are drawn only once the batch before has drawn all of its own
// (refill rounds included), so the prompts go to the steps in the order one process draws
// them, and a checkpoint's data cursor (the oldest batch not trained) loses none and repeats
// none.
void GrpoRun::sample_ahead(int64_t step, double& rollout_s, int64_t& generated) {
  while (static_cast<int64_t>(rollouts_.size()) < recipe_.async.max_staleness + 1 &&
         next_batch_ < recipe_.schedule.steps && (rollouts_.empty() || all_drawn(rollouts_.back()))) {
    rollouts_.push_back(workers_ ? submit_rollout(next_batch_++) : sample_rollout(next_batch_++, step));
    rollout_s += rollouts_.back().rollout_s;
    // A batch on the workers counts its tokens when it is complete (train_one_step).
    if (rollouts_.back().task < 0) generated += rollouts_.back().sampling.generated();
  }
}

Metrics GrpoRun::train_one_step(int64_t step, std::vector<Sample>& samples) {
  const int64_t G = recipe_.rollout.group_size;
  const int64_t max_staleness = recipe_.async.max_staleness;
  const auto step_start = Clock::now();
  double rollout_s = 0;
  int64_t generated = 0;

  sample_ahead(step, rollout_s, generated);
  StepRollout& front = rollouts_.front();
  if (front.task >= 0) {
    const auto t0 = Clock::now();
    complete_rollout(front, step);
    rollout_s += seconds_since(t0);  // the learner's wait for it (and its scoring)
    generated += front.sampling.generated();
  }
  sample_ahead(step, rollout_s, generated);  // split layout: what waited for this batch's draws
  const int64_t queue_depth = static_cast<int64_t>(rollouts_.size());
  StepRollout rollout = std::move(rollouts_.front());
  rollouts_.pop_front();
  Metrics m = rollout.sampling.metrics(recipe_.accuracy_reward, rollout.data_epoch);
  auto& kept = rollout.sampling.kept();
  std::vector<SampledExample> groups;
  std::vector<std::string> kept_prompts;
  StalenessStats staleness;
  int64_t dropped = 0;
  if (max_staleness == 0) {
    groups = std::move(kept.groups);
    kept_prompts = std::move(kept.prompts);
  } else {
    const auto fresh = filter_stale(kept.versions, step, max_staleness);
    std::vector<int64_t> kept_versions;
    for (size_t i : fresh.kept) {
      groups.push_back(std::move(kept.groups[i]));
      kept_prompts.push_back(std::move(kept.prompts[i]));
      kept_versions.push_back(kept.versions[i]);
    }
    dropped = fresh.dropped;
    dropped_groups_ += dropped;
    staleness = staleness_stats(kept_versions, step, max_staleness);
    if (dropped > 0 && store_)
      store_->add_event(stage_id_, step, "warning", "stale_rollout",
                        std::to_string(dropped) + " group(s) older than max_staleness dropped");
  }

  // Advantages per group, then the learner's batch.
  double learn_s = 0;
  std::set<std::string> learner_metrics;  // data parallel: reduced over ranks by the learner
  if (!groups.empty()) {
    std::vector<float> rewards;
    for (const auto& g : groups)
      for (int64_t j = 0; j < G; ++j) rewards.push_back(static_cast<float>(g.scores[j].total));
    std::vector<BatchRow> rows;
    for (size_t i = 0; i < groups.size(); ++i)
      for (int64_t j = 0; j < G; ++j) {
        const auto& c = groups[i].completions[j];
        rows.push_back({&groups[i].prompt_ids, &c.tokens, &c.logprobs, 0.0f, rewards[i * G + j]});
      }
    auto batch = build_policy_batch(rows, pad_id_);
    auto shaped = torch::tensor(rewards);
    if (recipe_.trainer.kl_in_reward) {
      // KL to the reference as a per-sequence reward penalty (policy/kl.h), before advantages.
      auto ref = trainer_->reference_logprobs(batch).to(torch::kCPU, torch::kFloat32);
      auto kl = policy::sequence_kl(batch.old_logprobs, ref, batch.completion_mask, recipe_.trainer.loss.kl_estimator);
      shaped = shaped - static_cast<float>(recipe_.trainer.loss.beta) * kl.to(torch::kFloat32);
      m.emplace_back("reward/kl", kl.mean().item<double>());
      m.emplace_back("reward/kl_penalty", recipe_.trainer.loss.beta * kl.mean().item<double>());
    }
    auto adv = policy::compute_advantages(shaped, G, recipe_.advantage).to(torch::kFloat32).contiguous();
    batch.advantages = adv;
    if (max_staleness > 0) {
      // Stale rollouts: the decoupled loss with truncated importance weights.
      policy::TruncatedIsStats is;
      batch = policy::decoupled_batch(*trainer_, batch, recipe_.async.tis_cap, &is);
      m.emplace_back("async/is_weight_mean", is.weight_mean);
      m.emplace_back("async/is_weight_max", is.weight_max);
      m.emplace_back("async/is_truncated_frac", is.truncated_frac);
    }
    const float* a = adv.data_ptr<float>();
    if (comm_) comm_->set_activity("step " + std::to_string(step + 1) + ": learner update");
    const auto t_learn = Clock::now();
    auto train_metrics = trainer_->train_step(batch);
    learn_s = seconds_since(t_learn);
    for (auto& kv : train_metrics.named_values()) {
      learner_metrics.insert(kv.first);
      m.push_back(kv);
    }
    applied_steps_ += train_metrics.optimizer_steps - train_metrics.skipped_steps;  // steps counts both
    skipped_steps_ += train_metrics.skipped_steps;
    if (train_metrics.skipped_steps > 0) {
      const std::string what = std::to_string(train_metrics.skipped_steps) +
                               " optimizer step(s) skipped: non-finite loss or gradient";
      if (store_) store_->add_event(stage_id_, step, "warning", "skipped_step", what);
      std::fprintf(stderr, "\nwarning: step %lld: %s\n", static_cast<long long>(step + 1), what.c_str());
    }
    // Samples: the kept groups, with their advantages.
    int64_t index = 0;
    for (size_t i = 0; i < groups.size(); ++i)
      for (int64_t j = 0; j < G; ++j, ++index) {
        Sample s;
        s.index = index;
        s.group_index = static_cast<int64_t>(i);
        s.prompt = kept_prompts[i];
        s.completion = groups[i].completions[j].text;
        s.reward = groups[i].scores[j].total;
        for (const auto& kv : groups[i].scores[j].components) s.reward_components.push_back(kv);
        s.advantage = a[index];
        s.length = static_cast<int64_t>(groups[i].completions[j].tokens.size());
        s.finish_reason = finish_reason_name(groups[i].completions[j].finish_reason);
        samples.push_back(std::move(s));
      }
  } else {
    if (store_) store_->add_event(stage_id_, step, "warning", "empty_batch",
                      "every sampled group had equal rewards; no update this step");
  }
  const double step_s = seconds_since(step_start);
  m.emplace_back("perf/rollout_seconds", rollout_s);
  m.emplace_back("perf/learn_seconds", learn_s);
  m.emplace_back("perf/reward_seconds", std::max(0.0, step_s - rollout_s - learn_s));
  m.emplace_back("perf/step_seconds", step_s);
  m.emplace_back("perf/tokens_per_s", step_s > 0 ? generated / step_s : 0.0);
  m.emplace_back("perf/rollout_tokens_per_s", rollout_s > 0 ? generated / rollout_s : 0.0);
  if (workers_) {
    // The workers' figures over this step: utilisation is their sampling time over the
    // step's time per worker alive.
    const auto& now = workers_->stats();
    m.emplace_back("rollout/workers_alive", double(now.workers_alive));
    m.emplace_back("rollout/requeued_tasks", double(now.requeued_tasks));
    m.emplace_back("rollout/weight_syncs", double(now.syncs - worker_stats_.syncs));
    m.emplace_back("perf/sync_seconds", now.sync_seconds - worker_stats_.sync_seconds);
    m.emplace_back("perf/sync_bytes", double(now.sync_bytes));
    const double alive = std::max<double>(1.0, double(now.workers_alive));
    m.emplace_back("rollout/worker_utilisation",
                   step_s > 0 ? std::min(1.0, (now.busy_seconds - worker_stats_.busy_seconds) / (alive * step_s)) : 0.0);
    worker_stats_ = now;
  }
  if (max_staleness > 0) {
    for (auto& kv : staleness_metrics(staleness, dropped, queue_depth)) m.push_back(std::move(kv));
    m.emplace_back("async/dropped_groups_total", double(dropped_groups_));
  }
  if (comm_) parallel::reduce_metrics(*comm_, m, learner_metrics);  // the learner's are global already
  return m;
}

void GrpoRun::checkpoint(int64_t step) {
  // Data parallel: rank 0 holds the same weights and writes them; with sharded optimizer state
  // every rank writes its shard (save_checkpoint is then collective).
  // Expert parallelism: every rank takes part too (the experts are gathered for the write).
  const bool sharded = trainer_->optimizer().sharding() != policy::Sharding::none || trainer_->expert_parallel();
  if (!main_ && !sharded) return;
  policy::CheckpointState state;
  state.step = step;
  // Batches sampled ahead and not yet trained on are drawn again after a resume (by the
  // resumed policy), so none is lost or trained twice: the cursor is the oldest one's.
  state.data_cursor = rollouts_.empty() ? pack_cursor(data_->cursor()) : rollouts_.front().cursor_before;
  auto path = policy::save_checkpoint(stage_dir_, state, *trainer_, model_dir_);
  if (!main_) return;
  store_->add_checkpoint(stage_id_, step, path.string());
  prune_checkpoints(stage_dir_, recipe_.checkpoint.keep_last);
}

RunSummary GrpoRun::run() {
  const auto start = Clock::now();
  prepare();
  RunSummary summary;
  summary.run_dir = run_dir_;
  int64_t step = 0;
  if (options_.resume) {
    if (auto latest = policy::latest_checkpoint(stage_dir_)) {
      auto state = policy::load_checkpoint(*latest, *trainer_);
      rollout_from_files_ = false;  // the policy is the checkpoint's now
      step = state.step;
      data_->restore(unpack_cursor(state.data_cursor, recipe_.schedule.seed, train_.size()));
      next_batch_ = step;
      if (store_) store_->add_event(stage_id_, step, "info", "resumed", "resumed from " + latest->string());
    }
  }
  // Split layout: the workers start with the policy as it is now (resumed or not).
  if (recipe_.layout.split) start_rollout_workers(step);
  auto to_map = [](const Metrics& m) { return std::map<std::string, double>(m.begin(), m.end()); };
  const int64_t steps = recipe_.schedule.steps;
  ProgressBar bar(steps, "steps", 10.0);
  bar.restart_clock(step);
  const int64_t first_step = step;
  std::string eval_acc = "-";
  try {
    if (!rollout_from_files_) sync_rollout_weights();
    if (step == 0) {
      summary.eval_first = to_map(evaluate_now(0));
      if (summary.eval_first.count("eval/accuracy")) eval_acc = fixed(summary.eval_first["eval/accuracy"]);
      if (comm_) comm_->patient_barrier("rank 0 evaluating before the first step");
    }
    while (step < steps) {
      std::vector<Sample> samples;
      auto metrics = train_one_step(step, samples);
      sync_rollout_weights();  // the learner changed the weights
      ++step;  // metrics of the step that ends at `step` updates
      if (store_) {
        auto tx = store_->transaction();
        store_->write_step(stage_id_, step, metrics, samples);
        tx.commit();
      }
      summary.last_step = to_map(metrics);
      const bool last = step == steps;
      const bool stopping = !last && options_.stop_after_steps > 0 && step - first_step >= options_.stop_after_steps;
      if ((recipe_.checkpoint.every > 0 && step % recipe_.checkpoint.every == 0) || last || stopping) checkpoint(step);
      if ((recipe_.eval.every > 0 && step % recipe_.eval.every == 0) || last) {
        auto eval = to_map(evaluate_now(step));
        if (eval.count("eval/accuracy")) eval_acc = fixed(eval["eval/accuracy"]);
        summary.eval_last = eval;
        if (summary.eval_first.empty()) summary.eval_first = eval;
      }
      if (options_.progress)
        bar.update(step, {{"reward", fixed(summary.last_step["reward/total"])},
                          {"acc", fixed(summary.last_step["train/accuracy"])},
                          {"len", fixed(summary.last_step["response/length_mean"], 0)},
                          {"eval", eval_acc}});
      // Data parallel: the others wait while rank 0 writes, checkpoints and evaluates.
      if (comm_) comm_->patient_barrier("rank 0 recording step " + std::to_string(step));
      if (stopping) break;
    }
    if (options_.progress) bar.finish();
    if (skipped_steps_ > 0 && applied_steps_ == 0)
      throw Error("every optimizer step of this run was skipped (" + std::to_string(skipped_steps_) +
                  " with a non-finite loss or gradient), so the policy never changed; check the model's weights and "
                  "config.json (e.g. rms_norm_eps, rope_theta) and the learning rate");
    if (store_) store_->finish_stage(stage_id_, step == steps ? "done" : "stopped");
  } catch (...) {
    if (options_.progress) bar.finish();
    try {
      if (store_) store_->finish_stage(stage_id_, "failed");
    } catch (...) {
    }
    throw;
  }
  summary.steps = step;
  if (auto latest = policy::latest_checkpoint(stage_dir_)) summary.final_checkpoint = *latest;
  summary.seconds = seconds_since(start);
  return summary;
}

}  // namespace

RunSummary run_grpo(const Recipe& recipe, const RunOptions& options) {
  try {
    return GrpoRun(recipe, options).run();
  } catch (const std::exception& e) {
    // Data parallel: the other ranks name this rank's error instead of a lost connection.
    if (options.comm) options.comm->publish_failure(e.what());
    throw;
  }
}

}  // namespace aha::recipes
