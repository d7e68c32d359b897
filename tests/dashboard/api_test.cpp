// The dashboard's JSON/CSV API against run databases written by the real RunStore, checked
// against hand-worked values: run discovery and status, metric series (JSON, CSV, since_step),
// samples, the reflection-word rate; and every class of bad request, each a 4xx with a message.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "core/sqlite_db.h"
#include "dashboard/http_error.h"
#include "dashboard/run_catalog.h"
#include "dashboard/run_reader.h"
#include "tests/dashboard/dashboard_test_util.h"

namespace aha::dashboard {
namespace {

using namespace aha::dashboard::test;
namespace http = boost::beast::http;

// A run with one stage: steps 1..n of "reward/total" = step / 10 and "train/kl" = step^2,
// "eval/accuracy" at step 0 and n, samples at steps n-1 and n.
void write_run(const fs::path& dir, int64_t n, const std::string& status, int64_t total) {
  fs::create_directories(dir);
  RunStore store(dir / "run.db");
  store.set_config("recipe", recipe_json(dir.filename().string(), total));
  const int64_t stage = store.begin_stage("grpo", "grpo", "{}");
  store.write_metrics(stage, 0, {{"eval/accuracy", 0.25}});
  for (int64_t step = 1; step <= n; ++step)
    store.write_metrics(stage, step, {{"reward/total", step / 10.0}, {"train/kl", double(step * step)}});
  store.write_metrics(stage, n, {{"eval/accuracy", 0.5}});
  for (int64_t step : {n - 1, n}) {
    std::vector<Sample> samples;
    const std::vector<std::string> texts = {"<think>Wait, let me verify.</think> <answer>4</answer>",
                                            "no reflection here; awaiting", "Re-check: WAIT"};
    for (int64_t i = 0; i < 3; ++i)
      samples.push_back({.index = i, .group_index = i / 2, .prompt = "What is 2+2?", .completion = texts[i],
                         .reward = i == 0 ? 1.5 : 0.0, .reward_components = {{"accuracy", i == 0 ? 1.0 : 0.0}, {"format", 0.5}},
                         .advantage = i == 0 ? 1.0 : -0.5, .length = 10 + i, .finish_reason = i == 2 ? "length" : "stop"});
    store.write_samples(stage, step, samples);
  }
  if (!status.empty()) store.finish_stage(stage, status);
}

class DashboardApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_ = fresh_work_dir("api");
    root_ = work_ / "runs";
    write_run(root_ / "alpha", 5, "done", 5);
    write_run(root_ / "sweep" / "beta", 3, "", 10);  // still running
    write_run(root_ / "sweep" / "gamma", 2, "failed", 10);
    write_run(root_ / "old", 2, "", 10);
    {  // a run whose trainer died silently ten minutes ago
      SqliteDb db(root_ / "old" / "run.db", false, 1000);
      db.exec("UPDATE metrics SET time = time - 600; UPDATE stages SET started_at = started_at - 700");
    }
    server_ = std::make_unique<LiveServer>(ServerOptions{.runs_dirs = {root_}});
  }

  HttpResult get(const std::string& target, const std::map<std::string, std::string>& headers = {}) {
    return http_request(server_->port(), target, headers);
  }

  fs::path work_, root_;
  std::unique_ptr<LiveServer> server_;
};

TEST_F(DashboardApiTest, ListsEveryRunFoundRecursivelyWithItsStatus) {
  auto doc = get_json(server_->port(), "/api/runs");
  ASSERT_TRUE(doc["runs"].IsArray());
  std::map<std::string, const rapidjson::Value*> runs;
  for (const auto& r : doc["runs"].GetArray()) runs[r["id"].GetString()] = &r;
  ASSERT_EQ(runs.size(), 4u) << json::to_string(doc);
  const auto& alpha = *runs.at("alpha");
  EXPECT_STREQ(alpha["status"].GetString(), "finished");
  EXPECT_STREQ(alpha["recipe"].GetString(), "alpha");
  EXPECT_STREQ(alpha["stage"].GetString(), "grpo");
  EXPECT_EQ(alpha["step"].GetInt64(), 5);
  EXPECT_EQ(alpha["total_steps"].GetInt64(), 5);
  EXPECT_DOUBLE_EQ(alpha["eval_accuracy"].GetDouble(), 0.5);
  EXPECT_STREQ((*runs.at("sweep/beta"))["status"].GetString(), "running");
  EXPECT_EQ((*runs.at("sweep/beta"))["step"].GetInt64(), 3);
  EXPECT_STREQ((*runs.at("sweep/gamma"))["status"].GetString(), "failed");
  EXPECT_STREQ((*runs.at("old"))["status"].GetString(), "stale");
  EXPECT_NEAR((*runs.at("old"))["duration_s"].GetDouble(), 100.0, 5.0);  // started 700 s ago, last write 600 s ago
}

TEST_F(DashboardApiTest, RunDetailHasStagesMetricNamesAndSampleSteps) {
  auto doc = get_json(server_->port(), "/api/runs/sweep/beta");
  EXPECT_STREQ(doc["id"].GetString(), "sweep/beta");
  ASSERT_EQ(doc["stages"].Size(), 1u);
  const auto& stage = doc["stages"][0];
  EXPECT_STREQ(stage["status"].GetString(), "running");
  EXPECT_TRUE(stage["finished_at"].IsNull());
  EXPECT_DOUBLE_EQ(stage["headline"]["reward/total"].GetDouble(), 0.3);
  std::vector<std::string> names;
  for (const auto& n : doc["metric_names"].GetArray()) names.push_back(n.GetString());
  EXPECT_EQ(names, (std::vector<std::string>{"eval/accuracy", "reward/total", "train/kl"}));
  ASSERT_EQ(doc["sample_steps"].Size(), 2u);
  EXPECT_EQ(doc["sample_steps"][1].GetInt64(), 3);
}

TEST_F(DashboardApiTest, MetricsAreTheStoredRowsFromSinceStep) {
  auto doc = get_json(server_->port(), "/api/runs/alpha/metrics?names=reward/total,train/kl&since_step=3");
  const auto& series = doc["series"];
  ASSERT_EQ(series.MemberCount(), 2u);
  const auto& reward = series["reward/total"];
  ASSERT_EQ(reward["step"].Size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(reward["step"][i].GetInt64(), 3 + i);
    EXPECT_DOUBLE_EQ(reward["value"][i].GetDouble(), (3 + i) / 10.0);  // exact: JSON carries the shortest round trip
    EXPECT_DOUBLE_EQ(series["train/kl"]["value"][i].GetDouble(), (3 + i) * (3 + i));
    EXPECT_GT(reward["time"][i].GetDouble(), 1.7e9);
  }
  auto all = get_json(server_->port(), "/api/runs/alpha/metrics");  // every name, every step
  EXPECT_EQ(all["series"].MemberCount(), 3u);
  EXPECT_EQ(all["series"]["eval/accuracy"]["step"].Size(), 2u);
  EXPECT_EQ(all["series"]["reward/total"]["step"].Size(), 5u);
}

TEST_F(DashboardApiTest, MetricsAsCsv) {
  HttpResult r = get("/api/runs/alpha/metrics?names=train/kl&since_step=4&format=csv");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("content-type"), "text/csv; charset=utf-8");
  std::vector<std::string> lines;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);) lines.push_back(line.substr(0, line.rfind(',')));  // time varies
  EXPECT_EQ(lines, (std::vector<std::string>{"name,step,value", "train/kl,4,16", "train/kl,5,25"}));
}

TEST_F(DashboardApiTest, NonFiniteValuesAreJsonNull) {
  {
    RunStore store(root_ / "alpha" / "run.db");
    store.write_metrics(1, 6, {{"reward/total", NAN}});
  }
  auto doc = get_json(server_->port(), "/api/runs/alpha/metrics?names=reward/total&since_step=6");
  ASSERT_EQ(doc["series"]["reward/total"]["value"].Size(), 1u);
  EXPECT_TRUE(doc["series"]["reward/total"]["value"][0].IsNull());
  HttpResult csv = get("/api/runs/alpha/metrics?names=reward/total&since_step=6&format=csv");
  EXPECT_EQ(csv.body.rfind("name,step,value,time\nreward/total,6,,", 0), 0u) << csv.body;  // empty value
}

TEST_F(DashboardApiTest, SamplesOfAStepWithRewardBreakdown) {
  auto latest = get_json(server_->port(), "/api/runs/alpha/samples");
  EXPECT_EQ(latest["step"].GetInt64(), 5);
  ASSERT_EQ(latest["steps"].Size(), 2u);
  auto doc = get_json(server_->port(), "/api/runs/alpha/samples?step=4");
  EXPECT_EQ(doc["step"].GetInt64(), 4);
  const auto& samples = doc["samples"];
  ASSERT_EQ(samples.Size(), 3u);
  EXPECT_EQ(samples[0]["index"].GetInt64(), 0);
  EXPECT_EQ(samples[2]["group"].GetInt64(), 1);
  EXPECT_STREQ(samples[0]["prompt"].GetString(), "What is 2+2?");
  EXPECT_DOUBLE_EQ(samples[0]["reward"].GetDouble(), 1.5);
  EXPECT_DOUBLE_EQ(samples[0]["components"]["accuracy"].GetDouble(), 1.0);
  EXPECT_DOUBLE_EQ(samples[1]["advantage"].GetDouble(), -0.5);
  EXPECT_EQ(samples[2]["length"].GetInt64(), 12);
  EXPECT_STREQ(samples[2]["finish_reason"].GetString(), "length");
  // "Wait", "let me", "verify" | nothing ("awaiting" is no whole word) | "Re-check", "WAIT"
  EXPECT_EQ(samples[0]["reflection_words"].GetInt64(), 3);
  EXPECT_EQ(samples[1]["reflection_words"].GetInt64(), 0);
  EXPECT_EQ(samples[2]["reflection_words"].GetInt64(), 2);
}

TEST_F(DashboardApiTest, ReflectionRateFromTheStoredSamples) {
  auto doc = get_json(server_->port(), "/api/runs/alpha/reflection");
  ASSERT_EQ(doc["step"].Size(), 2u);
  EXPECT_EQ(doc["step"][0].GetInt64(), 4);
  EXPECT_DOUBLE_EQ(doc["rate"][0].GetDouble(), 2.0 / 3.0);  // 2 of 3 completions
  EXPECT_DOUBLE_EQ(doc["per_completion"][1].GetDouble(), 5.0 / 3.0);
  auto custom = get_json(server_->port(), "/api/runs/alpha/reflection?words=answer&since_step=5");
  ASSERT_EQ(custom["step"].Size(), 1u);
  EXPECT_DOUBLE_EQ(custom["rate"][0].GetDouble(), 1.0 / 3.0);  // "<answer>": a whole word between tags
}

// Every class of bad request gets a 4xx whose message names what is wrong.
TEST_F(DashboardApiTest, BadRequestsGetA4xxThatSaysWhy) {
  struct Case {
    std::string target;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"/api/runs/../../etc/passwd/metrics", 400, "'..'"},
      {"/api/runs/%2e%2e/%2E%2E/etc/samples", 400, "'..'"},
      {"/api/runs//etc/passwd/metrics", 400, "absolute path"},
      {"/api/runs/alpha%00/metrics", 400, "NUL"},
      {"/api/runs/alpha%zz", 400, "percent-encoding"},
      {"/api/runs/alpha%2", 400, "percent-encoding"},
      {"/api/runs/al$pha", 400, "character"},
      {"/api/runs/nope", 404, "no run with id 'nope'"},
      {"/api/runs/sweep", 404, "no run with id 'sweep'"},
      {"/api/runs/alpha/metrics?names=has%20space/x", 400, "metric name 'has space/x'"},
      {"/api/runs/alpha/metrics?names=noslash", 400, "metric name 'noslash'"},
      {"/api/runs/alpha/metrics?names=reward/none", 404, "no metric 'reward/none'"},
      {"/api/runs/alpha/metrics?since_step=abc", 400, "since_step"},
      {"/api/runs/alpha/metrics?since_step=1e3", 400, "since_step"},
      {"/api/runs/alpha/metrics?since_step=99999999999999999999", 400, "since_step"},
      {"/api/runs/alpha/metrics?format=xml", 400, "format"},
      {"/api/runs/alpha/metrics?bogus=1", 400, "unknown query parameter 'bogus'"},
      {"/api/runs/alpha/metrics?since_step=1&since_step=2", 400, "twice"},
      {"/api/runs/alpha/metrics?stage=sft", 404, "no stage 'sft'"},
      {"/api/runs/alpha/samples?step=99", 404, "no samples at step 99"},
      {"/api/runs/alpha/samples?step=x", 400, "integer"},
      {"/api/runs/alpha/reflection?words=,", 400, "reflection words"},
      {"/api/nothing", 404, "no API endpoint"},
      {"/etc/passwd", 404, "no page"},
      {"/../../etc/passwd", 404, "no page"},
      {"/chart.js?x=1", 400, "unknown query parameter"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    HttpResult r = get(c.target);
    EXPECT_EQ(r.status, c.status) << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/json");
    EXPECT_NE(r.body.find(c.says), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("root:"), std::string::npos);  // never a file's content
  }
  HttpResult post = http_request(server_->port(), "/api/runs", {}, http::verb::post);
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.body.find("read-only"), std::string::npos);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD");
  HttpResult rebinding = get("/api/runs", {{"Host", "evil.example:8265"}});
  EXPECT_EQ(rebinding.status, 403);
  EXPECT_NE(rebinding.body.find("evil.example"), std::string::npos);
  EXPECT_EQ(get("/api/runs", {{"Host", "localhost:1"}}).status, 200);
}

TEST_F(DashboardApiTest, SymlinksOutOfTheRunsDirectoryAreNeverServed) {
  write_run(work_ / "outside" / "secret", 2, "done", 2);
  fs::create_directory_symlink(work_ / "outside" / "secret", root_ / "linked-dir");
  fs::create_directories(root_ / "linked-db");
  fs::create_symlink(work_ / "outside" / "secret" / "run.db", root_ / "linked-db" / "run.db");
  auto doc = get_json(server_->port(), "/api/runs");
  for (const auto& r : doc["runs"].GetArray()) {
    EXPECT_STRNE(r["id"].GetString(), "linked-dir");
    EXPECT_STRNE(r["id"].GetString(), "linked-db");
  }
  EXPECT_EQ(get("/api/runs/linked-dir/metrics").status, 404);
  EXPECT_EQ(get("/api/runs/linked-db").status, 404);
}

TEST_F(DashboardApiTest, AFileThatIsNoRunDatabaseIsReportedNotFatal) {
  fs::create_directories(root_ / "junk");
  std::ofstream(root_ / "junk" / "run.db") << "not sqlite at all, just text that is long enough to be read";
  auto doc = get_json(server_->port(), "/api/runs");
  bool found = false;
  for (const auto& r : doc["runs"].GetArray())
    if (std::string(r["id"].GetString()) == "junk") {
      found = true;
      EXPECT_STREQ(r["status"].GetString(), "unreadable");
      EXPECT_NE(std::string(r["error"].GetString()).find("junk"), std::string::npos);
    }
  EXPECT_TRUE(found);
  HttpResult r = get("/api/runs/junk");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("run.db"), std::string::npos) << r.body;
  EXPECT_EQ(get("/api/runs/alpha").status, 200);  // the server lives on
}

TEST_F(DashboardApiTest, ServesThePageAndTheEmbeddedChartLibrary) {
  HttpResult page = get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"app.js\""), std::string::npos);
  HttpResult chart = get("/chart.js");
  ASSERT_EQ(chart.status, 200);
  EXPECT_NE(chart.body.find("Chart.js v"), std::string::npos);
  std::ifstream debian("/usr/share/javascript/chart.js/chart.min.js", std::ios::binary);
  if (debian) {  // byte for byte the packaged file
    const std::string packaged((std::istreambuf_iterator<char>(debian)), {});
    EXPECT_EQ(chart.body, packaged);
  }
  EXPECT_NE(get("/app.js").body.find("textContent"), std::string::npos);
  EXPECT_NE(get("/").headers["content-security-policy"].find("default-src 'self'"), std::string::npos);
  HttpResult head = http_request(server_->port(), "/", {}, http::verb::head);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.headers["content-length"], std::to_string(page.body.size()));
}

TEST(DashboardSecurity, ANonLoopbackHostNeedsAToken) {
  const fs::path root = fresh_work_dir("security");
  ServerOptions options{.runs_dirs = {root}, .host = "0.0.0.0", .port = 0};
  const std::string message = aha::test::error_of([&] { DashboardServer server(options); });
  EXPECT_NE(message.find("--token"), std::string::npos) << message;
  options.host = "example.com";
  EXPECT_NE(aha::test::error_of([&] { DashboardServer server(options); }).find("not an IP address"),
            std::string::npos);
  options.host = "127.0.0.1";
  std::ofstream(root / "a-file") << "x";
  options.runs_dirs = {root / "a-file"};
  EXPECT_NE(aha::test::error_of([&] { DashboardServer server(options); }).find("not a directory"), std::string::npos);
}

// `aha train` prints the dashboard command before the run directory exists.
TEST(DashboardDiscovery, ARunsDirectoryMadeLaterIsSearchedOnceItExists) {
  const fs::path root = fresh_work_dir("later");
  LiveServer server(ServerOptions{.runs_dirs = {root / "runs"}});
  EXPECT_EQ(get_json(server.port(), "/api/runs")["runs"].Size(), 0u);
  write_run(root / "runs" / "new", 2, "", 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the catalog rescans at most once a second
  auto doc = get_json(server.port(), "/api/runs");
  ASSERT_EQ(doc["runs"].Size(), 1u);
  EXPECT_STREQ(doc["runs"][0]["id"].GetString(), "new");
}

TEST(DashboardSecurity, TokenByQueryThenCookieOrHeader) {
  const fs::path root = fresh_work_dir("token");
  write_run(root / "alpha", 2, "done", 2);
  LiveServer server(ServerOptions{.runs_dirs = {root}, .token = "s3cret-token"});
  const uint16_t port = server.port();
  for (const char* target : {"/", "/api/runs", "/api/runs/alpha/metrics", "/chart.js"}) {
    HttpResult r = http_request(port, target);
    EXPECT_EQ(r.status, 401) << target;
    EXPECT_NE(r.body.find("token"), std::string::npos);
  }
  EXPECT_EQ(http_request(port, "/api/runs?token=wrong-token!").status, 401);
  EXPECT_EQ(http_request(port, "/api/runs?token=s3cret-tokeN").status, 401);
  HttpResult first = http_request(port, "/?token=s3cret-token");
  EXPECT_EQ(first.status, 200);
  const std::string cookie = first.headers["set-cookie"];
  EXPECT_NE(cookie.find("aha_token=s3cret-token"), std::string::npos);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_EQ(http_request(port, "/api/runs", {{"Cookie", "theme=dark; aha_token=s3cret-token"}}).status, 200);
  EXPECT_EQ(http_request(port, "/api/runs", {{"Authorization", "Bearer s3cret-token"}}).status, 200);
  EXPECT_EQ(http_request(port, "/api/runs", {{"X-Aha-Token", "s3cret-token"}}).status, 200);
  EXPECT_EQ(http_request(port, "/api/runs", {{"Cookie", "aha_token=nope"}}).status, 401);
  // The token parameter is the server's, not the endpoint's: it is not an unknown parameter.
  EXPECT_EQ(http_request(port, "/api/runs/alpha/metrics?token=s3cret-token&since_step=1").status, 200);
}

TEST(RunCatalogIds, OnlyRelativeWellFormedIds) {
  for (const std::string& bad : std::vector<std::string>{"", "/abs", "a/../b", "..", "./a", "a//b", "a/", "a b", "a\\b", std::string(600, 'a')}) {
    try {
      RunCatalog::check_id(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const HttpError& e) {
      EXPECT_EQ(e.status(), 400) << bad;
    }
  }
  for (const std::string& good : std::vector<std::string>{"a", "sweep/lr-3e-4", "r1_zero.v2"}) EXPECT_NO_THROW(RunCatalog::check_id(good));
}

}  // namespace
}  // namespace aha::dashboard
