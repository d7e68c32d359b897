#include "recipes/runner/recipe.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/json_override.h"
#include "datasets/prompt_template.h"
#include "policy/learner/advantages.h"
#include "policy/learner/kl.h"
#include "policy/parallel/communicator.h"
#include "recipes/runner/reward_selection.h"
#include "reward/remote/http_exchange.h"

namespace aha::recipes {
namespace {

namespace fs = std::filesystem;
using json::ObjectReader;

// ---- typed reading --------------------------------------------------------------------------

int64_t non_negative(const ObjectReader& r, const char* key, int64_t fallback) {
  const int64_t v = r.get_int(key, fallback);
  if (v < 0) throw Error(r.context() + ": '" + key + "' must be >= 0, got " + std::to_string(v));
  return v;
}

int64_t positive(const ObjectReader& r, const char* key, int64_t fallback) {
  const int64_t v = r.get_int(key, fallback);
  if (v < 1) throw Error(r.context() + ": '" + key + "' must be >= 1, got " + std::to_string(v));
  return v;
}

template <typename Parse>
auto named(const ObjectReader& r, const char* key, const std::string& fallback, Parse parse) {
  const std::string name = r.get_string(key, fallback);
  try {
    return parse(name);
  } catch (const Error& e) {
    throw Error(r.context() + ": '" + key + "': " + e.what());
  }
}

void read_model(const ObjectReader& r, const fs::path& base_dir, ModelSection& m) {
  r.reject_unknown({"path", "build", "build_set", "dtype", "device", "threads"});
  m.path = r.get_string("path");
  // null (e.g. --set model.build=null) drops a recipe's build: train model.path as it is.
  if (r.has("build") && !r.get("build").IsNull()) m.build = base_dir / r.get_string("build");
  if (r.has("build_set")) {
    const auto& list = r.get("build_set");
    require(list.IsArray(), r.context() + ": 'build_set' must be a list of \"key.path=value\" strings");
    for (const auto& item : list.GetArray()) {
      require(item.IsString(), r.context() + ": 'build_set' must be a list of \"key.path=value\" strings");
      m.build_overrides.emplace_back(item.GetString(), item.GetStringLength());
    }
  }
  m.dtype = r.get_string("dtype", m.dtype);
  if (m.dtype != "float32" && m.dtype != "bfloat16")
    throw Error(r.context() + ": 'dtype' must be \"float32\" or \"bfloat16\", got \"" + m.dtype + "\"");
  m.device = r.get_string("device", m.device);
  m.threads = non_negative(r, "threads", m.threads);
}

void read_data(const ObjectReader& r, Recipe& recipe) {
  r.reject_unknown({"train", "eval"});
  const auto& train = r.get("train");
  auto read_spec = [&](const rapidjson::Value& v, const std::string& where) {
    return parse_dataset_spec(json::to_string(v), where);
  };
  // A training data set may name the rewards that score it (reward_selection.h); they are
  // checked against the rewards once those are read.
  auto read_train = [&](const rapidjson::Value& v, const std::string& where) {
    auto [spec, names] = split_reward_selection(v, where);
    recipe.train_data.push_back(parse_dataset_spec(spec, where));
    recipe.train_rewards.push_back(std::move(names));
  };
  if (train.IsArray()) {
    if (train.Empty()) throw Error(r.context() + ": 'train' must name at least one data set");
    for (rapidjson::SizeType i = 0; i < train.Size(); ++i) read_train(train[i], r.context() + ".train." + std::to_string(i));
  } else {
    read_train(train, r.context() + ".train");
  }
  if (r.has("eval")) {
    const auto& eval = r.get("eval");
    if (!eval.IsObject())
      throw Error(r.context() + ": 'eval' must be an object of named data sets, e.g. {\"gsm8k\": {...}}");
    for (auto it = eval.MemberBegin(); it != eval.MemberEnd(); ++it) {
      const std::string name = it->name.GetString();
      if (name.empty() || name.find_first_of("/ \t") != std::string::npos)
        throw Error(r.context() + ".eval: data set name '" + name + "' must be non-empty, without '/' or spaces");
      recipe.eval_data[name] = read_spec(it->value, r.context() + ".eval." + name);
    }
  }
}

void read_rollout(const ObjectReader& r, RolloutSection& s) {
  r.reject_unknown({"prompts_per_step", "prompts_per_batch", "group_size", "temperature", "top_p", "top_k",
                    "max_new_tokens", "dynamic_sampling", "max_sampling_rounds", "use_cuda_graphs",
                    "use_model_generation_config"});
  s.prompts_per_step = positive(r, "prompts_per_step", s.prompts_per_step);
  s.prompts_per_batch = non_negative(r, "prompts_per_batch", s.prompts_per_batch);
  s.group_size = positive(r, "group_size", s.group_size);
  s.temperature = r.get_double("temperature", s.temperature);
  if (!(s.temperature > 0))
    throw Error(r.context() + ": 'temperature' must be > 0 for GRPO sampling, got " + std::to_string(s.temperature));
  s.top_p = r.get_double("top_p", s.top_p);
  if (!(s.top_p > 0 && s.top_p <= 1)) throw Error(r.context() + ": 'top_p' must be in (0, 1]");
  s.top_k = non_negative(r, "top_k", s.top_k);
  s.max_new_tokens = positive(r, "max_new_tokens", s.max_new_tokens);
  s.dynamic_sampling = r.get_bool("dynamic_sampling", s.dynamic_sampling);
  s.max_sampling_rounds = positive(r, "max_sampling_rounds", s.max_sampling_rounds);
  s.use_cuda_graphs = r.get_bool("use_cuda_graphs", s.use_cuda_graphs);
  s.use_model_generation_config = r.get_bool("use_model_generation_config", s.use_model_generation_config);
  if (s.group_size < 2)
    throw Error(r.context() + ": 'group_size' must be >= 2 (GRPO compares the samples of a group)");
}

void read_algorithm(const ObjectReader& r, Recipe& recipe) {
  r.reject_unknown({"advantage", "whiten_batch", "advantage_eps", "clip_eps_low", "clip_eps_high", "dual_clip_c",
                    "beta", "kl_estimator", "kl_in_reward", "entropy_coef", "aggregation", "const_length", "sequence_ratio", "lr",
                    "adam_beta1", "adam_beta2", "adam_eps", "max_grad_norm", "weight_decay", "warmup_steps",
                    "lr_decay", "min_lr_ratio", "mini_batch_size", "micro_batch_size", "micro_batch_tokens", "inner_epochs",
                    "ref_refresh_steps", "autocast_bf16", "fp32_master_weights", "activation_checkpointing", "router_aux_loss_coef",
                    "routing_bias_update_rate", "max_staleness", "tis_cap"});
  auto& adv = recipe.advantage;
  adv.mode = named(r, "advantage", "grpo", policy::parse_advantage_mode);
  adv.whiten_batch = r.get_bool("whiten_batch", adv.whiten_batch);
  adv.eps = r.get_double("advantage_eps", adv.eps);

  auto& t = recipe.trainer;
  auto& loss = t.loss;
  loss.clip_eps_low = r.get_double("clip_eps_low", loss.clip_eps_low);
  loss.clip_eps_high = r.get_double("clip_eps_high", loss.clip_eps_high);
  if (r.has("dual_clip_c")) loss.dual_clip_c = r.get_double("dual_clip_c");
  loss.beta = r.get_double("beta", loss.beta);
  loss.kl_estimator = named(r, "kl_estimator", "k3", policy::parse_kl_estimator);
  t.kl_in_reward = r.get_bool("kl_in_reward", t.kl_in_reward);
  loss.entropy_coef = r.get_double("entropy_coef", loss.entropy_coef);
  loss.aggregation = named(r, "aggregation", "token_mean", policy::parse_loss_aggregation);
  loss.const_length = non_negative(r, "const_length", recipe.rollout.max_new_tokens);
  loss.sequence_ratio = r.get_bool("sequence_ratio", loss.sequence_ratio);

  auto& opt = t.optimizer;
  opt.lr = r.get_double("lr", 1e-6);
  opt.beta1 = r.get_double("adam_beta1", opt.beta1);
  opt.beta2 = r.get_double("adam_beta2", opt.beta2);
  opt.eps = r.get_double("adam_eps", opt.eps);
  opt.max_grad_norm = r.get_double("max_grad_norm", opt.max_grad_norm);
  t.weight_decay = r.get_double("weight_decay", t.weight_decay);
  opt.schedule.warmup_steps = non_negative(r, "warmup_steps", 0);
  opt.schedule.decay = named(r, "lr_decay", "constant", policy::parse_lr_decay);
  opt.schedule.min_lr_ratio = r.get_double("min_lr_ratio", 0.0);

  t.mini_batch_size = non_negative(r, "mini_batch_size", t.mini_batch_size);
  t.micro_batch_size = non_negative(r, "micro_batch_size", t.micro_batch_size);
  t.micro_batch_tokens = non_negative(r, "micro_batch_tokens", t.micro_batch_tokens);
  if (t.micro_batch_tokens > 0 && t.micro_batch_size > 0)
    throw Error(r.context() + ": set 'micro_batch_size' (rows) or 'micro_batch_tokens' (packed), not both");
  if (t.micro_batch_tokens == 1) throw Error(r.context() + ": 'micro_batch_tokens' must be 0 (off) or >= 2");
  t.inner_epochs = positive(r, "inner_epochs", t.inner_epochs);
  t.ref_refresh_steps = non_negative(r, "ref_refresh_steps", t.ref_refresh_steps);
  t.autocast_bf16 = r.get_bool("autocast_bf16", t.autocast_bf16);
  opt.fp32_master = r.get_bool("fp32_master_weights", opt.fp32_master);
  t.activation_checkpointing = r.get_bool("activation_checkpointing", t.activation_checkpointing);
  t.router_aux_loss_coef = r.get_double("router_aux_loss_coef", t.router_aux_loss_coef);
  t.routing_bias_update_rate = r.get_double("routing_bias_update_rate", t.routing_bias_update_rate);
  recipe.async.max_staleness = non_negative(r, "max_staleness", recipe.async.max_staleness);
  recipe.async.tis_cap = r.get_double("tis_cap", recipe.async.tis_cap);
  if (!(std::isfinite(recipe.async.tis_cap) && recipe.async.tis_cap > 0))
    throw Error(r.context() + ": 'tis_cap' must be a finite number > 0 (the truncation of pi_old / pi_behaviour; "
                "verl's default is 2)");
}

void read_reward_scoring(const ObjectReader& r, RewardScoringSection& s) {
  r.reject_unknown({"servers", "server_token", "server_timeout_seconds", "max_inflight_per_server", "chunk_size", "local",
                    "threads"});
  if (r.has("servers")) {
    const auto& list = r.get("servers");
    require(list.IsArray(), r.context() + ": 'servers' must be a list of \"host:port\" strings");
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
      require(list[i].IsString(), r.context() + ": 'servers' must be a list of \"host:port\" strings");
      s.servers.emplace_back(list[i].GetString(), list[i].GetStringLength());
      try {
        reward::remote::parse_server_address(s.servers.back(), "server");
      } catch (const Error& e) {
        throw Error(r.context() + ".servers." + std::to_string(i) + ": " + e.what());
      }
    }
  }
  s.server_token = r.get_string("server_token", s.server_token);
  s.server_timeout_seconds = r.get_double("server_timeout_seconds", s.server_timeout_seconds);
  if (!(s.server_timeout_seconds > 0))
    throw Error(r.context() + ": 'server_timeout_seconds' must be > 0");
  s.max_inflight_per_server = positive(r, "max_inflight_per_server", s.max_inflight_per_server);
  s.chunk_size = non_negative(r, "chunk_size", s.chunk_size);
  s.local = r.get_bool("local", s.local);
  s.threads = non_negative(r, "threads", s.threads);
  if (s.threads > 256) throw Error(r.context() + ": 'threads' must be at most 256");
}

void read_eval(const ObjectReader& r, EvalSection& s) {
  r.reject_unknown({"every", "samples", "temperature", "top_p", "max_new_tokens", "prompts_per_batch", "group_by"});
  s.every = non_negative(r, "every", s.every);
  s.samples = positive(r, "samples", s.samples);
  s.temperature = r.get_double("temperature", s.temperature);
  if (s.temperature < 0) throw Error(r.context() + ": 'temperature' must be >= 0 (0: greedy)");
  if (s.samples > 1 && s.temperature == 0)
    throw Error(r.context() + ": 'samples' > 1 needs 'temperature' > 0 (greedy samples are all the same)");
  s.top_p = r.get_double("top_p", s.top_p);
  s.max_new_tokens = positive(r, "max_new_tokens", s.max_new_tokens);
  s.prompts_per_batch = positive(r, "prompts_per_batch", s.prompts_per_batch);
  s.group_by = r.get_string("group_by", s.group_by);
}

}  // namespace

ModelSection parse_model_section(const std::string& json_text, const fs::path& base_dir, const std::string& context) {
  rapidjson::Document doc = json::parse(json_text, context);
  require(doc.IsObject(), context + ": expected a JSON object");
  ModelSection m;
  read_model(ObjectReader(doc, context), base_dir, m);
  return m;
}

Recipe parse_recipe(const std::string& json_text, const fs::path& file, const std::vector<std::string>& overrides) {
  const std::string what = "recipe " + file.string();
  rapidjson::Document doc = json::parse(json_text, what);
  require(doc.IsObject(), what + ": expected a JSON object");
  for (const auto& o : overrides) json::apply_override(doc, o, what);

  Recipe recipe;
  recipe.file = file;
  recipe.base_dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  ObjectReader r(doc, what);
  r.reject_unknown({"name", "model", "template", "system_prompt", "stop_strings", "data", "rewards", "accuracy_reward", "reward", "rollout",
                    "algorithm", "schedule", "checkpoint", "eval", "logging", "parallel", "layout"});
  recipe.name = r.get_string("name");
  if (recipe.name.empty() || recipe.name.find_first_of("/\\ \t") != std::string::npos)
    throw Error(what + ": 'name' must be non-empty, without slashes or spaces (it names the run directory)");

  read_model(r.object("model"), recipe.base_dir, recipe.model);
  recipe.template_name = r.get_string("template", recipe.template_name);
  if (r.has("stop_strings")) {
    const auto& list = r.get("stop_strings");
    require(list.IsArray(), what + ": 'stop_strings' must be a list of strings");
    for (const auto& s : list.GetArray()) {
      require(s.IsString(), what + ": 'stop_strings' must be a list of strings");
      recipe.template_stop_strings.emplace_back(s.GetString(), s.GetStringLength());
    }
  }
  recipe.system_prompt = r.get_string("system_prompt", "");
  try {
    // "model" is read from model.path when the run starts (a model.build may make it first).
    if (recipe.template_name == "model") {
      require(recipe.template_stop_strings.empty(), "stop strings can only be given with a custom template");
    } else {
      PromptTemplate::from_name(recipe.template_name, recipe.template_stop_strings, {}, recipe.system_prompt);
    }
  } catch (const Error& e) {
    throw Error(what + ": 'template': " + e.what());
  }
  read_data(r.object("data"), recipe);

  const auto& rewards = r.get("rewards");
  recipe.rewards = reward::reward_specs_from_json(json::to_string(rewards), what + ": rewards");
  recipe.accuracy_reward = r.get_string("accuracy_reward", recipe.rewards.front().name);
  bool found = false;
  std::string names;
  const auto& kinds = reward::reward_kinds();
  for (const auto& spec : recipe.rewards) {
    if (std::find(kinds.begin(), kinds.end(), spec.kind) == kinds.end()) {
      std::string known;
      for (const auto& k : kinds) known += (known.empty() ? "" : ", ") + k;
      throw Error(what + ": reward '" + spec.name + "' has unknown kind '" + spec.kind + "' (kinds: " + known + ")");
    }
    found = found || spec.name == recipe.accuracy_reward;
    names += (names.empty() ? "" : ", ") + spec.name;
  }
  if (!found)
    throw Error(what + ": 'accuracy_reward' names '" + recipe.accuracy_reward + "', which is not a reward (rewards: " +
                names + ")");
  const bool many = recipe.train_rewards.size() > 1;
  for (size_t i = 0; i < recipe.train_rewards.size(); ++i)
    check_reward_selection(recipe.train_rewards[i], recipe.rewards,
                           what + ": data.train" + (many ? "." + std::to_string(i) : std::string()));

  if (r.has("reward")) read_reward_scoring(r.object("reward"), recipe.reward_scoring);
  if (r.has("rollout")) read_rollout(r.object("rollout"), recipe.rollout);
  if (r.has("algorithm")) {
    read_algorithm(r.object("algorithm"), recipe);
  } else {
    rapidjson::Document empty(rapidjson::kObjectType);
    read_algorithm(ObjectReader(empty, what + ": algorithm"), recipe);
  }
  if (r.has("schedule")) {
    ObjectReader s = r.object("schedule");
    s.reject_unknown({"steps", "seed"});
    recipe.schedule.steps = positive(s, "steps", recipe.schedule.steps);
    recipe.schedule.seed = static_cast<uint64_t>(non_negative(s, "seed", static_cast<int64_t>(recipe.schedule.seed)));
  }
  if (r.has("checkpoint")) {
    ObjectReader c = r.object("checkpoint");
    c.reject_unknown({"every", "keep_last"});
    recipe.checkpoint.every = non_negative(c, "every", recipe.checkpoint.every);
    recipe.checkpoint.keep_last = non_negative(c, "keep_last", recipe.checkpoint.keep_last);
  }
  if (r.has("parallel")) {
    ObjectReader p = r.object("parallel");
    p.reject_unknown({"sharding", "prefetch", "expert_parallel"});
    try {
      recipe.trainer.sharding = policy::parse_sharding(p.get_string("sharding", "none"));
    } catch (const Error& e) {
      throw Error(what + ": parallel.sharding: " + e.what());
    }
    // ZeRO-3's gather of the next block while this one computes; the results are the same
    // either way (policy/learner/fully_sharded.h), so off is only for measuring the overlap.
    if (p.has("prefetch") && !p.get("prefetch").IsBool())
      throw Error(what + ": parallel.prefetch must be true or false, got " + json::to_string(p.get("prefetch")) +
                  " (ZeRO-3 gathers the next block while one computes; default true)");
    recipe.trainer.prefetch = p.get_bool("prefetch", recipe.trainer.prefetch);
    recipe.trainer.expert_parallel = p.get_bool("expert_parallel", false);
  }
  if (r.has("layout")) {
    ObjectReader l = r.object("layout");
    l.reject_unknown({"mode", "rollout_workers", "weight_sync_bucket_mb", "worker_device", "backend"});
    auto& layout = recipe.layout;
    const std::string mode = l.get_string("mode", "colocated");
    if (mode != "colocated" && mode != "split")
      throw Error(l.context() + ": 'mode' must be \"colocated\" or \"split\", got \"" + mode + "\"");
    layout.split = mode == "split";
    layout.rollout_workers = positive(l, "rollout_workers", layout.rollout_workers);
    if (layout.rollout_workers > 64) throw Error(l.context() + ": 'rollout_workers' must be at most 64");
    layout.weight_sync_bucket_mb = positive(l, "weight_sync_bucket_mb", layout.weight_sync_bucket_mb);
    layout.worker_device = l.get_string("worker_device", layout.worker_device);
    if (layout.worker_device != "auto" && layout.worker_device != "cpu")
      throw Error(l.context() + ": 'worker_device' must be \"auto\" or \"cpu\", got \"" + layout.worker_device + "\"");
    layout.backend = l.get_string("backend", layout.backend);
    try {
      parallel::parse_backend(layout.backend);
    } catch (const Error& e) {
      throw Error(l.context() + ": 'backend': " + e.what());
    }
  }
  if (r.has("eval")) read_eval(r.object("eval"), recipe.eval);
  if (r.has("logging")) {
    ObjectReader l = r.object("logging");
    l.reject_unknown({"keep_samples_last_steps", "keep_samples_every"});
    recipe.logging.keep_samples_last_steps = non_negative(l, "keep_samples_last_steps", recipe.logging.keep_samples_last_steps);
    recipe.logging.keep_samples_every = non_negative(l, "keep_samples_every", recipe.logging.keep_samples_every);
  }

  // The LR schedule counts optimizer steps: mu * ceil(rows / mini_batch) per training step.
  auto& t = recipe.trainer;
  const int64_t rows = recipe.rollout.prompts_per_step * recipe.rollout.group_size;
  const int64_t mini = t.mini_batch_size > 0 ? t.mini_batch_size : rows;
  t.optimizer.schedule.total_steps = recipe.schedule.steps * t.inner_epochs * ((rows + mini - 1) / mini);
  t.temperature = recipe.rollout.temperature;
  try {
    policy::validate(t);
  } catch (const Error& e) {
    throw Error(what + ": algorithm: " + e.what());
  }
  // ZeRO-3 (policy/learner/fully_sharded.h) keeps float32 master shards (of the reference model
  // too, with beta > 0): said here, before any rank loads a model.
  if (t.sharding == policy::Sharding::zero3) {
    if (t.optimizer.fp32_master)
      throw Error(what + ": algorithm.fp32_master_weights is not available with parallel.sharding zero3, which keeps "
                  "float32 master ranges itself and gathers them in bf16: use model.dtype \"float32\" with "
                  "algorithm.autocast_bf16 for the same float32 masters and bf16 compute");
    if (recipe.model.dtype != "float32")
      throw Error(what + ": parallel.sharding zero3 keeps float32 master weights: model.dtype must be \"float32\" (got \"" +
                  recipe.model.dtype + "\"); algorithm.autocast_bf16 gives bf16 compute");
  }
  // float32 master weights of a bf16/fp16 policy (policy/learner/optimizer.h): the other way to
  // float32 updates (autocast_bf16 keeps the weights themselves in float32); unsharded, or with
  // zero1/zero2 each rank keeping the masters of its range, and under expert parallelism those
  // of its experts. Not with zero3: its weights are float32 master ranges already (the model must
  // be float32, refused above), gathered in bf16 under autocast_bf16, which is that layout.
  if (t.optimizer.fp32_master) {
    if (t.autocast_bf16)
      throw Error(what + ": algorithm.fp32_master_weights and algorithm.autocast_bf16 are two ways to float32 "
                  "updates: fp32_master_weights trains a bf16 model with float32 masters, autocast_bf16 a float32 "
                  "model under bf16 autocast; set one");
    if (recipe.model.dtype != "bfloat16")
      throw Error(what + ": algorithm.fp32_master_weights keeps float32 masters of a bf16 model: model.dtype "
                  "must be \"bfloat16\" (got \"" + recipe.model.dtype + "\")");
  }
  // Expert parallelism (policy/learner/expert_parallel.h) combines with every sharding: zero1/
  // zero2 shard the replicated parameters' state, zero3 the replicated parameters themselves
  // (fully_sharded.h leaves the experts out), while each rank's experts keep their weights and
  // state whole on it. The model (an MoE whose experts divide by the world size) is checked where
  // it is known; zero3's float32 weights and its refusal of fp32_master_weights are said above.
  if (doc.HasMember("reward")) doc.RemoveMember("reward");  // where, not what: see recipe.h
  // How the learner's state is laid out over the ranks is no more part of what a run computes
  // than the world size is: a run may resume under another sharding (checkpoint.h).
  doc.RemoveMember("parallel");
  doc.RemoveMember("layout");
  recipe.canonical_json = json::to_string(doc);
  return recipe;
}

Recipe load_recipe(const fs::path& file, const std::vector<std::string>& overrides) {
  if (!fs::exists(file)) throw Error("recipe " + file.string() + ": no such file");
  return parse_recipe(read_file(file), file, overrides);
}

}  // namespace aha::recipes
