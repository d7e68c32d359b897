#include "core/run_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/files.h"
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <thread>

#include "core/error.h"

namespace fs = std::filesystem;

namespace {

using aha::RunStore;
using aha::RunStoreOptions;
using aha::Sample;

class RunStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("aha_run_store_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    aha::remove_tree(root_);
  }
  void TearDown() override { aha::remove_tree(root_); }
  fs::path db() const { return root_ / "r" / "run.db"; }
  std::unique_ptr<RunStore> open(RunStoreOptions o = {}) {
    return RunStore::open_run(root_, "r", o);
  }
  fs::path root_;
};

std::vector<std::pair<std::string, double>> step_metrics(int64_t step, int count) {
  std::vector<std::pair<std::string, double>> m;
  for (int i = 0; i < count; ++i) m.emplace_back("train/m" + std::to_string(i), step * 100.0 + i);
  return m;
}

std::vector<Sample> step_samples(int64_t step, int count) {
  std::vector<Sample> out;
  for (int i = 0; i < count; ++i) {
    Sample s;
    s.index = i;
    s.group_index = i / 2;
    s.prompt = "prompt " + std::to_string(step);
    s.completion = std::string(200, 'a' + i % 26);
    s.reward = i % 2;
    s.reward_components = {{"accuracy", double(i % 2)}, {"format", 0.5}};
    s.advantage = i % 2 ? 1.0 : -1.0;
    s.length = 50 + i;
    s.finish_reason = i == 0 ? "length" : "stop";
    out.push_back(s);
  }
  return out;
}

// Writes one step's metrics and samples in one transaction.
void write_step(RunStore& store, int64_t stage, int64_t step, int metrics = 6, int samples = 4) {
  store.write_step(stage, step, step_metrics(step, metrics), step_samples(step, samples));
}

// Every step that has metrics has all of them and all its samples: what a crash or a
// concurrent reader must never break.
void expect_whole_steps(const RunStore& store, int64_t stage, int metrics, int samples) {
  auto latest = store.latest_step(stage);
  ASSERT_TRUE(latest.has_value());
  auto names = store.metric_names(stage);
  ASSERT_EQ(names.size(), size_t(metrics));
  for (const auto& name : names) {
    auto series = store.metric_series(stage, name);
    ASSERT_EQ(series.size(), size_t(*latest + 1)) << name;
  }
  for (int64_t step = 0; step <= *latest; ++step)
    EXPECT_EQ(store.samples(stage, step).size(), size_t(samples)) << "step " << step;
}

TEST_F(RunStoreTest, RoundTripThroughAReadOnlyReader) {
  {
    auto store = open();
    store->set_config("recipe", R"({"lr": 1e-6, "group_size": 8})");
    int64_t stage = store->begin_stage("grpo", "grpo", R"({"steps": 10})");
    store->write_metrics(stage, 0, {{"train/kl", 0.01}, {"reward/accuracy", 0.25}});
    store->write_metrics(stage, 1, {{"train/kl", 0.02}, {"train/grad_norm", NAN}});
    store->write_samples(stage, 1, step_samples(1, 3));
    store->add_checkpoint(stage, 1, "checkpoints/grpo/step-1");
    store->add_event(stage, 1, "warning", "nonfinite_skip", "gradient norm is not finite");
    store->add_event(std::nullopt, std::nullopt, "info", "start", "run started");
    store->finish_stage(stage, "done");
  }
  auto reader = open({.read_only = true});
  EXPECT_EQ(reader->config("recipe"), R"({"lr": 1e-6, "group_size": 8})");
  EXPECT_FALSE(reader->config("missing").has_value());
  auto stages = reader->stages();
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].name, "grpo");
  EXPECT_EQ(stages[0].status, "done");
  EXPECT_FALSE(std::isnan(stages[0].finished_at));
  int64_t stage = stages[0].id;
  EXPECT_EQ(reader->metric_names(stage),
            (std::vector<std::string>{"reward/accuracy", "train/grad_norm", "train/kl"}));
  auto kl = reader->metric_series(stage, "train/kl");
  ASSERT_EQ(kl.size(), 2u);
  EXPECT_EQ(kl[1].step, 1);
  EXPECT_DOUBLE_EQ(kl[1].value, 0.02);
  EXPECT_GT(kl[1].time, 1.7e9);
  EXPECT_TRUE(std::isnan(reader->metric_series(stage, "train/grad_norm")[0].value));
  auto tail = reader->metric_series(stage, "train/kl", 1);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(tail[0].step, 1);
  EXPECT_EQ(reader->latest_step(stage), 1);
  auto samples = reader->samples(stage, 1);
  ASSERT_EQ(samples.size(), 3u);
  auto want = step_samples(1, 3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(samples[i].completion, want[i].completion);
    EXPECT_EQ(samples[i].prompt, want[i].prompt);
    EXPECT_EQ(samples[i].reward_components, want[i].reward_components);
    EXPECT_EQ(samples[i].group_index, want[i].group_index);
    EXPECT_EQ(samples[i].finish_reason, want[i].finish_reason);
    EXPECT_EQ(samples[i].length, want[i].length);
    EXPECT_DOUBLE_EQ(samples[i].advantage, want[i].advantage);
  }
  auto checkpoints = reader->checkpoints(stage);
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].path, "checkpoints/grpo/step-1");
  auto events = reader->events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, "nonfinite_skip");
  EXPECT_EQ(events[0].step, 1);
  EXPECT_FALSE(events[1].stage.has_value());
  EXPECT_EQ(reader->events(stage).size(), 1u);
  EXPECT_THROW(reader->write_metrics(stage, 2, {{"train/kl", 0.0}}), aha::Error);
  EXPECT_EQ(reader->integrity_check(), "ok");
}

TEST_F(RunStoreTest, ResumedStageAndRewrittenStepReplaceOldValues) {
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  write_step(*store, stage, 0, 3, 4);
  store->finish_stage(stage, "failed");
  EXPECT_EQ(store->begin_stage("grpo", "grpo", "{}"), stage);
  EXPECT_EQ(store->stages()[0].status, "running");
  store->write_metrics(stage, 0, {{"train/m0", -1.0}});
  store->write_samples(stage, 0, step_samples(0, 2));
  EXPECT_DOUBLE_EQ(store->metric_series(stage, "train/m0")[0].value, -1.0);
  EXPECT_EQ(store->metric_series(stage, "train/m0").size(), 1u);
  EXPECT_EQ(store->samples(stage, 0).size(), 2u);
  int64_t other = store->begin_stage("eval", "eval", "{}");
  EXPECT_NE(other, stage);
  EXPECT_TRUE(store->metric_names(other).empty());
  EXPECT_FALSE(store->latest_step(other).has_value());
}

TEST_F(RunStoreTest, SampleRetentionKeepsLastStepsAndEveryKth) {
  auto store = open({.retention = {.keep_last_steps = 2, .keep_every = 5}});
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  for (int64_t step = 0; step < 12; ++step) write_step(*store, stage, step, 1, 2);
  EXPECT_EQ(store->sample_steps(stage), (std::vector<int64_t>{0, 5, 10, 11}));
  EXPECT_EQ(store->metric_series(stage, "train/m0").size(), 12u) << "metrics are all kept";

  aha::remove_tree(root_);
  auto keep_last = open({.retention = {.keep_last_steps = 3}});
  stage = keep_last->begin_stage("grpo", "grpo", "{}");
  for (int64_t step = 0; step < 7; ++step) write_step(*keep_last, stage, step, 1, 2);
  EXPECT_EQ(keep_last->sample_steps(stage), (std::vector<int64_t>{4, 5, 6}));
}

TEST_F(RunStoreTest, UncommittedTransactionLeavesNothing) {
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  write_step(*store, stage, 0);
  {
    auto tx = store->transaction();
    store->write_metrics(stage, 1, step_metrics(1, 6));
    store->write_samples(stage, 1, step_samples(1, 4));
    EXPECT_THROW(store->transaction(), aha::Error) << "transactions do not nest";
  }  // destroyed without commit: rolled back
  EXPECT_EQ(store->latest_step(stage), 0);
  EXPECT_TRUE(store->samples(stage, 1).empty());
  write_step(*store, stage, 1);
  expect_whole_steps(*store, stage, 6, 4);
}

// A writer process that dies inside a transaction (here: _exit before COMMIT) leaves the
// database as it was after the previous step, and the write lock free.
TEST_F(RunStoreTest, ProcessKilledMidTransactionLeavesPreviousStep) {
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  for (int64_t step = 0; step <= 5; ++step) write_step(*store, stage, step);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 3;
    try {
      RunStore own(db());
      auto tx = own.transaction();
      own.write_metrics(stage, 6, step_metrics(6, 6));
      own.write_samples(stage, 6, step_samples(6, 4));
      own.add_checkpoint(stage, 6, "checkpoints/grpo/step-6");
      code = 0;
    } catch (...) {
    }
    _exit(code);  // inside the transaction when code == 0: no COMMIT, no destructors
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed before the crash";
  auto reader = open({.read_only = true});
  EXPECT_EQ(reader->integrity_check(), "ok");
  EXPECT_EQ(reader->latest_step(stage), 5);
  EXPECT_TRUE(reader->samples(stage, 6).empty());
  EXPECT_TRUE(reader->checkpoints(stage).empty());
  expect_whole_steps(*reader, stage, 6, 4);
  write_step(*store, stage, 6);  // the dead writer's lock is gone
  EXPECT_EQ(reader->latest_step(stage), 6);
}

// SIGKILL at an arbitrary moment of a writer that commits step after step: every step that
// is visible afterwards is whole.
TEST_F(RunStoreTest, SigkilledWriterLeavesOnlyWholeSteps) {
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      RunStore own(db());
      for (int64_t step = 0;; ++step) write_step(own, stage, step, 20, 16);
    } catch (...) {
    }
    _exit(3);
  }
  // Kill once a few steps are in; the child is most likely inside a transaction then.
  int status = 0;
  while (store->latest_step(stage).value_or(-1) < 3) {
    ASSERT_EQ(waitpid(child, &status, WNOHANG), 0) << "the writer died before step 3";
    ::usleep(1000);
  }
  ::kill(child, SIGKILL);
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the writer stopped on its own";
  EXPECT_EQ(store->integrity_check(), "ok");
  expect_whole_steps(*store, stage, 20, 16);
  int64_t next = *store->latest_step(stage) + 1;
  write_step(*store, stage, next, 20, 16);
  EXPECT_EQ(store->latest_step(stage), next);
}

// A reader in another process polling while this process writes never makes a write fail, and
// never sees half a step.
TEST_F(RunStoreTest, ConcurrentReaderNeverFailsWrites) {
  auto store = open({.busy_timeout_ms = 100});
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  write_step(*store, stage, 0);
  const int64_t last = 150;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    try {
      RunStore reader(db(), {.read_only = true, .busy_timeout_ms = 100});
      char byte = 1;
      if (write(ready[1], &byte, 1) != 1) _exit(4);
      int64_t seen = 0;
      while (seen < last) {
        seen = reader.latest_step(stage).value_or(-1);
        // Writes only add steps, so every later query must include step `seen` whole.
        for (const auto& name : reader.metric_names(stage)) {
          auto series = reader.metric_series(stage, name);
          if (series.size() < size_t(seen + 1)) code = 1;
        }
        if (reader.samples(stage, seen).size() != 4) code = 1;
        if (code) break;
      }
    } catch (...) {
      code = 2;
    }
    _exit(code);
  }
  close(ready[1]);  // so that read() sees end-of-file if the child dies first
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  try {
    for (int64_t step = 1; step <= last; ++step) write_step(*store, stage, step);
  } catch (const aha::Error& e) {
    ::kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    FAIL() << "a write failed while a reader was active: " << e.what();
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the reader saw half a step; 2: a read failed";
  close(ready[0]);
}

// Two writer processes queue on the write lock (BEGIN IMMEDIATE + busy timeout).
TEST_F(RunStoreTest, TwoWriterProcessesBothSucceed) {
  auto store = open();
  int64_t a = store->begin_stage("a", "grpo", "{}");
  int64_t b = store->begin_stage("b", "grpo", "{}");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 0;
    try {
      RunStore own(db());
      for (int64_t step = 0; step < 60; ++step) write_step(own, b, step);
    } catch (...) {
      code = 2;
    }
    _exit(code);
  }
  for (int64_t step = 0; step < 60; ++step) write_step(*store, a, step);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  expect_whole_steps(*store, a, 6, 4);
  expect_whole_steps(*store, b, 6, 4);
  EXPECT_EQ(store->latest_step(b), 59);
}

TEST_F(RunStoreTest, ForkedChildCannotUseTheParentsConnection) {
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 1;
    try {
      store->write_metrics(stage, 0, {{"train/kl", 1.0}});
    } catch (const aha::Error& e) {
      code = std::string(e.what()).find("fork") != std::string::npos ? 0 : 2;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  store->write_metrics(stage, 0, {{"train/kl", 1.0}});  // the parent's connection still works
  EXPECT_EQ(store->latest_step(stage), 0);
}

TEST_F(RunStoreTest, ThreadsShareOneStore) {
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  std::thread learner([&] {
    for (int64_t step = 0; step < 40; ++step) write_step(*store, stage, step);
  });
  for (int i = 0; i < 40; ++i) store->add_event(stage, std::nullopt, "info", "tick", "t");
  learner.join();
  expect_whole_steps(*store, stage, 6, 4);
  EXPECT_EQ(store->events(stage).size(), 40u);
}

TEST_F(RunStoreTest, BadInputIsNamed) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const aha::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto store = open();
  int64_t stage = store->begin_stage("grpo", "grpo", "{}");
  EXPECT_NE(message([&] {
              store->write_metrics(stage, 0, {{"kl", 1.0}});
            }).find("'kl'"),
            std::string::npos);
  EXPECT_NE(message([&] {
              store->write_metrics(stage, 0, {{"train/k l", 1.0}});
            }).find("metric name"),
            std::string::npos);
  EXPECT_NE(message([&] {
              store->write_metrics(99, 0, {{"train/kl", 1.0}});
            }).find("stage"),
            std::string::npos);
  EXPECT_NE(message([&] { store->set_config("recipe", "{oops"); }).find("recipe"),
            std::string::npos);
  EXPECT_NE(message([&] { store->add_event(stage, 0, "fatal", "x", "y"); }).find("fatal"),
            std::string::npos);
  EXPECT_NE(message([&] { store->finish_stage(42, "done"); }).find("42"), std::string::npos);
  EXPECT_NE(message([&] { RunStore::open_run(root_, "../x"); }).find("run name"),
            std::string::npos);
  EXPECT_NE(
      message([&] { RunStore(root_ / "missing.db", {.read_only = true}); }).find("missing.db"),
      std::string::npos);
  EXPECT_TRUE(store->latest_step(stage) == std::nullopt) << "failed writes left nothing";

  // A database from a newer schema is refused, naming the file.
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((root_ / "newer.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "PRAGMA user_version=7", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(raw);
  EXPECT_NE(message([&] { RunStore(root_ / "newer.db"); }).find("version 7"), std::string::npos);
}

}  // namespace

// A reader polling for run.db (the dashboard does) never finds a database without its
// schema: a new one is made whole under a temporary name and linked into place, which leaves
// nothing else behind. (Before, the file existed a moment before its tables did, and a
// reader opening it then failed with "user_version 0".)
TEST_F(RunStoreTest, ANewDatabaseAppearsOnlyWithItsSchema) {
  constexpr int kRuns = 30;
  std::atomic<bool> done{false};
  std::atomic<int> opened{0};
  std::vector<std::string> failures;
  std::thread reader([&] {
    for (int i = 0; i < kRuns && failures.empty();) {
      const auto path = root_ / ("run" + std::to_string(i)) / "run.db";
      if (!fs::exists(path)) {
        if (done) break;
        continue;
      }
      try {
        RunStoreOptions o;
        o.read_only = true;
        RunStore store(path, o);
        ++opened;
      } catch (const std::exception& e) {
        failures.push_back(e.what());
      }
      ++i;
    }
  });
  for (int i = 0; i < kRuns; ++i) RunStore::open_run(root_, "run" + std::to_string(i));
  done = true;
  reader.join();
  EXPECT_TRUE(failures.empty()) << failures.front();
  EXPECT_GT(opened.load(), 0);
  for (const auto& entry : fs::recursive_directory_iterator(root_))
    EXPECT_EQ(entry.path().filename().string().find(".creating"), std::string::npos) << entry.path();
}
