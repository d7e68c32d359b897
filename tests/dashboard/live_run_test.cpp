// The API while a run is being written: a writer with no busy timeout at all (so any lock a
// reader took would reach it as SQLITE_BUSY) and a real `aha train` run, each polled over HTTP
// meanwhile. Every answer must be one consistent snapshot (all metrics of a step or none), the
// writers must never fail, and the final answers must equal the rows in run.db.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/utf8.h"
#include "tests/dashboard/dashboard_test_util.h"

namespace aha::dashboard {
namespace {

using namespace aha::dashboard::test;

constexpr int kMetrics = 20;

std::string metric(int k) { return "m/" + std::string(k < 10 ? "0" : "") + std::to_string(k); }
double value_of(int64_t step, int k) { return step * 100.0 + k + 0.25; }

// The series of one answer: every name has the same steps 1..n, with the values the writer wrote.
int64_t check_consistent(const rapidjson::Value& series, bool check_values) {
  int64_t n = -1;
  for (const auto& m : series.GetObject()) {
    const auto& steps = m.value["step"];
    if (n < 0) n = steps.Size();
    EXPECT_EQ(static_cast<int64_t>(steps.Size()), n) << "torn read: " << m.name.GetString();
    for (rapidjson::SizeType i = 0; i < steps.Size(); ++i) {
      EXPECT_EQ(steps[i].GetInt64(), static_cast<int64_t>(i) + 1) << m.name.GetString();
      if (check_values) {
        EXPECT_EQ(m.value["value"][i].GetDouble(), value_of(i + 1, std::stoi(std::string(m.name.GetString()).substr(2))));
      }
    }
  }
  return n;
}

TEST(DashboardLive, ReadersNeverBlockAWriterThatNeverWaits) {
  const fs::path root = fresh_work_dir("live");
  const fs::path dir = root / "busy";
  fs::create_directories(dir);
  auto store = std::make_unique<RunStore>(dir / "run.db", RunStoreOptions{.busy_timeout_ms = 0, .retention = {3, 0}});
  store->set_config("recipe", recipe_json("busy", 300));
  const int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  LiveServer server(ServerOptions{.runs_dirs = {root}});

  std::atomic<bool> done{false};
  std::string writer_error;
  std::thread writer([&] {
    try {
      for (int64_t step = 1; step <= 300; ++step) {
        std::vector<std::pair<std::string, double>> metrics;
        for (int k = 0; k < kMetrics; ++k) metrics.emplace_back(metric(k), value_of(step, k));
        std::vector<Sample> samples(4);
        for (int i = 0; i < 4; ++i) samples[i] = {.index = i, .prompt = "p", .completion = "step " + std::to_string(step), .reward_components = {}, .finish_reason = "stop"};
        auto tx = store->transaction();
        store->write_step(stage, step, metrics, samples);
        tx.commit();
      }
    } catch (const std::exception& e) {
      writer_error = e.what();
    }
    done = true;
  });
  std::atomic<int> answers{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r)
    readers.emplace_back([&, r] {
      while (!done) {
        if (r == 2) {
          HttpResult s = http_request(server.port(), "/api/runs/busy/samples");
          if (s.status == 404) continue;  // no samples yet
          EXPECT_EQ(s.status, 200) << s.body;
          auto doc = json::parse(s.body, "samples");
          ASSERT_EQ(doc["samples"].Size(), 4u);  // a step's samples all or none
          const std::string expected = "step " + std::to_string(doc["step"].GetInt64());
          for (const auto& sample : doc["samples"].GetArray()) EXPECT_EQ(sample["completion"].GetString(), expected);
        } else {
          auto doc = get_json(server.port(), "/api/runs/busy/metrics");
          check_consistent(doc["series"], r == 0);
        }
        ++answers;
      }
    });
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(writer_error, "") << "the writer failed while the dashboard read";
  EXPECT_GT(answers.load(), 10);
  auto final_doc = get_json(server.port(), "/api/runs/busy/metrics");
  EXPECT_EQ(check_consistent(final_doc["series"], true), 300);
  EXPECT_EQ(final_doc["series"].MemberCount(), static_cast<rapidjson::SizeType>(kMetrics));
  store.reset();
}

const char* const kTinyModel = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
  "hidden_act": "silu", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
  "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": true, "torch_dtype": "float32",
  "bos_token_id": 0, "eos_token_id": 2, "vocab_size": 3000})";

TEST(DashboardLive, ARealTrainingRunPolledWhileItWrites) {
  using aha::test::run_aha;
  using aha::test::shell_quoted;
  const fs::path work = fresh_work_dir("train");
  const fs::path runs = work / "runs";
  fs::create_directories(runs);
  {
    std::ofstream(work / "config.json") << kTinyModel;
    auto init = run_aha("model init --config " + shell_quoted((work / "config.json").string()) + " --out " +
                            shell_quoted((work / "model").string()), true, 120);
    ASSERT_EQ(init.exit_status, 0) << init.out;
    const fs::path tokenizer = fs::path(AHA_SOURCE_DIR) / "tests/fixtures/tokenizers/qwen2_style";
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::copy_file(tokenizer / f, work / "model" / f);
  }
  LiveServer server(ServerOptions{.runs_dirs = {runs}});
  const int64_t steps = 8;
  aha::test::CommandOutcome trained;
  std::atomic<bool> done{false};
  std::thread trainer([&] {
    trained = run_aha("train " + shell_quoted(std::string(AHA_SOURCE_DIR) + "/recipes/r1-zero-tiny.json") +
                          " --quiet --run-dir " + shell_quoted((runs / "tiny").string()) +
                          " --set model.build=null --set model.path=" + shell_quoted((work / "model").string()) +
                          " --set schedule.steps=" + std::to_string(steps) +
                          " --set rollout.prompts_per_step=4 --set rollout.group_size=4 --set rollout.max_new_tokens=16"
                          " --set eval.every=0 --set eval.max_new_tokens=8 --set data.eval.arithmetic.n=8"
                          " --set checkpoint.every=0 --set logging.keep_samples_last_steps=0",
                      true, 300);
    done = true;
  });
  const std::string names = "reward/total,train/loss,response/length_mean,perf/step_seconds";
  int polls = 0, partial = 0;
  while (!done) {
    HttpResult r = http_request(server.port(), "/api/runs/tiny/metrics?names=" + names);
    if (r.status == 200) {
      auto doc = json::parse(r.body, "metrics");
      std::vector<int64_t> first;
      for (const auto& m : doc["series"].GetObject()) {
        std::vector<int64_t> steps_here;
        for (const auto& s : m.value["step"].GetArray()) steps_here.push_back(s.GetInt64());
        if (first.empty()) first = steps_here;
        EXPECT_EQ(steps_here, first) << "torn read in " << m.name.GetString();
      }
      if (!first.empty() && static_cast<int64_t>(first.size()) < steps) ++partial;
      ++polls;
    } else {
      // before the trainer has created the run or its first metric
      EXPECT_TRUE(r.status == 404) << r.status << " " << r.body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  trainer.join();
  ASSERT_EQ(trained.exit_status, 0) << trained.out;
  EXPECT_EQ(trained.out.find("locked"), std::string::npos) << trained.out;
  EXPECT_EQ(trained.out.find("busy"), std::string::npos) << trained.out;
  EXPECT_NE(trained.out.find("aha dashboard --runs '" + fs::absolute(runs).lexically_normal().string() + "'"),
            std::string::npos) << trained.out;  // `aha train` says how to watch it
  EXPECT_GT(polls, 0);
  std::cout << polls << " answers while training, " << partial << " of them mid-run\n";

  // After the run: the API's answers are the rows of run.db.
  RunStore store(runs / "tiny" / "run.db", {.read_only = true});
  const int64_t stage = store.stages().at(0).id;
  auto all = get_json(server.port(), "/api/runs/tiny/metrics");
  const auto stored_names = store.metric_names(stage);
  ASSERT_EQ(all["series"].MemberCount(), stored_names.size());
  for (const auto& name : stored_names) {
    SCOPED_TRACE(name);
    const auto stored = store.metric_series(stage, name);
    const auto& s = all["series"][name.c_str()];
    ASSERT_EQ(s["step"].Size(), stored.size());
    for (size_t i = 0; i < stored.size(); ++i) {
      EXPECT_EQ(s["step"][i].GetInt64(), stored[i].step);
      if (std::isfinite(stored[i].value)) {
        EXPECT_EQ(s["value"][i].GetDouble(), stored[i].value);
      } else {
        EXPECT_TRUE(s["value"][i].IsNull());
      }
    }
  }
  EXPECT_EQ(all["series"]["reward/total"]["step"].Size(), static_cast<size_t>(steps));
  auto run = get_json(server.port(), "/api/runs/tiny");
  EXPECT_STREQ(run["status"].GetString(), "finished");
  EXPECT_EQ(run["step"].GetInt64(), steps);
  auto samples = get_json(server.port(), "/api/runs/tiny/samples");
  const auto stored_samples = store.samples(stage, steps);
  ASSERT_EQ(samples["samples"].Size(), stored_samples.size());
  for (size_t i = 0; i < stored_samples.size(); ++i) {
    // a random model's text is often not UTF-8: JSON carries it with U+FFFD, as all aha JSON does
    EXPECT_EQ(samples["samples"][i]["completion"].GetString(), utf8::lossy(stored_samples[i].completion));
    EXPECT_EQ(samples["samples"][i]["length"].GetInt64(), stored_samples[i].length);
  }
}

}  // namespace
}  // namespace aha::dashboard
