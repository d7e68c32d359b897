#include "recipes/runner/rollout_worker.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/json.h"
#include "datasets/prompt_template.h"
#include "policy/model/model_io.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/weight_sync.h"
#include "recipes/runner/recipe.h"
#include "recipes/runner/rollout_wire.h"
#include "recipes/runner/sampling.h"

namespace aha::recipes {
namespace {

// The controller scores; the worker's sampling call gets empty scores.
class NoScorer : public reward::Scorer {
 public:
  std::vector<reward::ScoredSample> score(std::vector<reward::ScoringInput> inputs) override {
    return std::vector<reward::ScoredSample>(inputs.size());
  }
  const std::vector<reward::RewardSpec>& specs() const override { return specs_; }

 private:
  std::vector<reward::RewardSpec> specs_;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  require(v != nullptr && *v != 0, std::string(name) +
                                       " is not set (rollout workers are started by `aha train` for a recipe "
                                       "with \"layout\": {\"mode\": \"split\"})");
  return v;
}

// Waits for `key` in the store; false when `stop` appeared first.
bool wait_for(c10d::Store& store, const std::string& key, const std::string& stop) {
  while (true) {
    if (store.check({key})) return true;
    if (store.check({stop})) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string get_text(c10d::Store& store, const std::string& key) {
  auto bytes = store.get(key);
  return std::string(bytes.begin(), bytes.end());
}

void set_text(c10d::Store& store, const std::string& key, const std::string& value) {
  store.set(key, std::vector<uint8_t>(value.begin(), value.end()));
}

}  // namespace

int run_rollout_worker() {
  // The controller started this process; it must not outlive it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const std::string control = env("AHA_ROLLOUT_CONTROL");
  const int worker = std::stoi(env("AHA_ROLLOUT_WORKER"));
  const auto colon = control.rfind(':');
  require(colon != std::string::npos, "AHA_ROLLOUT_CONTROL must be host:port, got " + control);
  int crash_task = -1;
  if (const char* crash = std::getenv("AHA_TEST_ROLLOUT_CRASH")) {
    const std::string c = crash;
    const auto sep = c.find(':');
    if (sep != std::string::npos && std::stoi(c.substr(0, sep)) == worker) crash_task = std::stoi(c.substr(sep + 1));
  }

  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(std::stoi(control.substr(colon + 1)));
  so.isServer = false;
  so.timeout = std::chrono::milliseconds(600000);
  c10d::TCPStore store(control.substr(0, colon), so);
  const std::string me = "aha/rollout/worker/" + std::to_string(worker) + "/";
  const std::string shutdown = "aha/rollout/shutdown";
  if (!wait_for(store, me + "config", shutdown)) return 0;
  const auto config = json::parse(get_text(store, me + "config"), "rollout worker config");

  const Recipe recipe = parse_recipe(config["recipe"].GetString(), config["recipe_file"].GetString());
  const std::filesystem::path model_dir = config["model_dir"].GetString();
  const torch::Device device(config["device"].GetString());
  if (recipe.model.threads > 0) torch::set_num_threads(static_cast<int>(recipe.model.threads));
  LoadOptions load;
  load.device = device;
  load.dtype = parse_dtype(recipe.model.dtype);
  auto model = load_model(model_dir, load);
  auto tokenizer = Tokenizer::from_dir(model_dir);
  const auto prompt_template =
      PromptTemplate::from_name(recipe.template_name, recipe.template_stop_strings, model_dir, recipe.system_prompt);

  parallel::World pair;
  pair.rank = 1;
  pair.world_size = 2;
  pair.local_rank = 0;
  pair.local_world_size = 1;
  pair.master_addr = control.substr(0, colon);
  pair.master_port = config["sync_port"].GetInt();
  pair.launcher = "rollout";
  pair.agent_store = true;  // the controller serves the pair group's store
  parallel::ParallelOptions po;
  po.backend = parallel::parse_backend(config["backend"].GetString());
  po.heartbeat_timeout_seconds = 1e6;  // the controller watches its workers as processes
  po.heartbeat_interval_seconds = 0.5;
  set_text(store, me + "joining", "1");  // the controller now joins the pair group too
  auto comm = parallel::Communicator::connect(pair, po, device);
  std::vector<torch::Tensor> tensors;
  for (auto& [name, t] : model->named_parameters()) tensors.push_back(t);
  for (auto& [name, t] : model->named_buffers()) tensors.push_back(t);
  const int64_t bucket_bytes = config["bucket_bytes"].GetInt64();
  int64_t version = parallel::sync_weights(*comm, tensors, 0, 0, bucket_bytes).version;
  set_text(store, me + "ready", "1");

  SamplingOptions sampling;
  sampling.group_size = recipe.rollout.group_size;
  sampling.settings.sampler.temperature = config["temperature"].GetDouble();
  sampling.settings.sampler.top_p = config["top_p"].GetDouble();
  sampling.settings.sampler.top_k = config["top_k"].GetInt64();
  for (const auto& id : config["eos"].GetArray()) sampling.settings.stop.eos_token_ids.push_back(id.GetInt64());
  sampling.settings.stop.max_new_tokens = recipe.rollout.max_new_tokens;
  EngineOptions engine_options;
  engine_options.use_cuda_graphs = recipe.rollout.use_cuda_graphs;
  RolloutEngine engine(*model, engine_options, make_text_decoder(tokenizer));
  NoScorer no_scorer;

  for (int64_t n = 0;; ++n) {
    const std::string key = me + "task/" + std::to_string(n);
    if (!wait_for(store, key, shutdown)) break;
    const auto task = task_from_json(get_text(store, key));
    if (n == crash_task) ::kill(::getpid(), SIGKILL);
    if (version < task.min_version) {
      comm->set_activity("receiving weights for task " + std::to_string(task.id));
      store.add(me + "sync_requests", 1);
      version = parallel::sync_weights(*comm, tensors, 0, 0, bucket_bytes).version;
    }
    comm->set_activity("sampling task " + std::to_string(task.id));
    const auto start = std::chrono::steady_clock::now();
    std::vector<Example> examples;
    for (const auto& p : task.prompts) {
      Example e;
      e.prompt = p;
      examples.push_back(std::move(e));
    }
    sampling.settings.seed = task.seed;
    sampling.prompts_per_batch =
        recipe.rollout.prompts_per_batch > 0 ? recipe.rollout.prompts_per_batch : static_cast<int64_t>(examples.size());
    std::vector<SampledExample> sampled;
    {
      torch::NoGradGuard no_grad;
      sampled = sample_and_score(engine, tokenizer, prompt_template, examples, sampling, no_scorer);
    }
    RolloutResult result;
    result.id = task.id;
    result.batch = task.batch;
    result.version = version;
    result.worker = worker;
    for (auto& s : sampled) result.groups.push_back({std::move(s.prompt_ids), std::move(s.completions)});
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    set_text(store, me + "result/" + std::to_string(n), result_to_json(result));
  }
  comm->finish();
  return 0;
}

}  // namespace aha::recipes
