// The page in a real browser: headless Chromium (Debian's chromium; skipped, saying so, where
// it is absent) loads the runs page, a run page and the sample browser from a live server. The
// page reports what it drew in data-* attributes of each chart's canvas; the test checks those
// against the rows of run.db, that the charts' line colour reached the canvas, that no script
// error happened, and saves screenshots under the build directory
// (dashboard-tests/screenshots/) for a person to look at.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "tests/dashboard/dashboard_test_util.h"

namespace aha::dashboard {
namespace {

using namespace aha::dashboard::test;

std::string chromium_binary() {
  for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(candidate)) return candidate;
  return "";
}

struct BrowserResult {
  std::string dom;
  std::string log;  // chromium's stderr: console messages among them
};

// Loads url in headless Chromium, letting the page run for a few seconds of (virtual) time;
// returns the DOM then, or with screenshot set saves a PNG of the window.
BrowserResult load(const std::string& url, const fs::path& profile, const fs::path& screenshot = {}) {
  fs::create_directories(profile);
  const fs::path log = profile / "stderr.txt";
  std::string command = chromium_binary() +
                        " --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                        " --hide-scrollbars --force-device-scale-factor=1 --window-size=1400,1100"
                        " --enable-logging=stderr --v=0 --virtual-time-budget=6000 --user-data-dir=" +
                        aha::test::shell_quoted(profile.string()) + " ";
  command += screenshot.empty() ? "--dump-dom " : "--screenshot=" + aha::test::shell_quoted(screenshot.string()) + " ";
  command += aha::test::shell_quoted(url) + " 2>" + aha::test::shell_quoted(log.string());
  BrowserResult result;
  FILE* pipe = popen(("timeout -k 5 90 " + command).c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) result.dom.append(buffer, n);
  pclose(pipe);
  std::ifstream in(log);
  result.log.assign(std::istreambuf_iterator<char>(in), {});
  return result;
}

// The attributes of each <canvas data-metric=...> in a DOM dump, by metric.
std::map<std::string, std::map<std::string, std::string>> canvases(const std::string& dom) {
  std::map<std::string, std::map<std::string, std::string>> out;
  const std::regex tag("<canvas([^>]*)>"), attribute("([a-z-]+)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(dom.begin(), dom.end(), tag); it != std::sregex_iterator(); ++it) {
    std::map<std::string, std::string> attributes;
    const std::string text = (*it)[1];
    for (auto a = std::sregex_iterator(text.begin(), text.end(), attribute); a != std::sregex_iterator(); ++a)
      attributes[(*a)[1]] = (*a)[2];
    if (attributes.count("data-metric")) out[attributes["data-metric"]] = attributes;
  }
  return out;
}

uintmax_t size_of(const fs::path& file) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(file, ec);
  return ec ? 0 : size;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// What a researcher expects on the page: no script error, the view finished drawing.
void expect_clean(const BrowserResult& r) {
  EXPECT_NE(r.dom.find("data-ready=\"1\""), std::string::npos) << "the view never finished drawing\n" << r.dom.substr(0, 3000);
  EXPECT_EQ(r.dom.find("data-errors="), std::string::npos) << r.dom.substr(0, 3000);
  std::istringstream lines(r.log);
  for (std::string line; std::getline(lines, line);)
    if (line.find(":CONSOLE") != std::string::npos) ADD_FAILURE() << "console message: " << line;
}

// A run that looks like a GRPO run: the metric names the runner writes, an evaluation every 10
// steps, a metric outside every group ("custom/"), and samples of the last steps.
void write_grpo_like_run(const fs::path& dir, int64_t steps) {
  fs::create_directories(dir);
  RunStore store(dir / "run.db");
  store.set_config("recipe", recipe_json("r1-zero-demo", 60));
  const int64_t stage = store.begin_stage("grpo", "grpo", "{}");
  for (int64_t step = 1; step <= steps; ++step) {
    const double t = step / double(steps), wiggle = 0.05 * std::sin(step * 1.7);
    std::vector<std::pair<std::string, double>> m = {
        {"reward/total", 0.2 + 1.1 * t + wiggle}, {"reward/accuracy", 0.1 + 0.7 * t + wiggle},
        {"reward/format", 0.3 + 0.6 * t}, {"train/accuracy", 0.1 + 0.7 * t + wiggle},
        {"response/length_mean", 40 + 60 * t + 10 * wiggle}, {"response/length_max", 96},
        {"response/truncated_frac", 0.3 * (1 - t)}, {"train/loss", 0.01 * std::cos(step)},
        {"train/kl", 0.001 * step}, {"train/entropy", 2.0 - t}, {"train/clip_frac_high", 0.02 + wiggle / 10},
        {"train/grad_norm", 1.0 + wiggle}, {"train/lr", 1e-4}, {"perf/step_seconds", 2.0 + wiggle},
        {"perf/tokens_per_s", 900 + 100 * wiggle}, {"custom/thing", double(step % 7)}};
    if (step % 10 == 0) m.emplace_back("eval/accuracy", 0.1 + 0.6 * t);
    store.write_metrics(stage, step, m);
  }
  for (int64_t step = steps - 2; step <= steps; ++step) {
    std::vector<Sample> samples;
    for (int64_t i = 0; i < 8; ++i) {
      const bool right = i % 3 == 0, cut = i == 7;
      samples.push_back({.index = i, .group_index = i / 4, .prompt = "<|im_start|>user\nWhat is " + std::to_string(10 + i / 4) + " * 3?",
                         .completion = "<think>First compute. " + std::string(i % 2 ? "Wait, verify it again. " : "") +
                                       "Ten times three.</think> <answer>" + std::to_string(right ? (10 + i / 4) * 3 : 7) +
                                       "</answer>" + (cut ? " and more" : ""),
                         .reward = right ? 1.5 : 0.5, .reward_components = {{"accuracy", right ? 1.0 : 0.0}, {"format", 1.0}},
                         .advantage = right ? 1.2 : -0.4, .length = 20 + i, .finish_reason = cut ? "length" : "stop"});
    }
    store.write_samples(stage, step, samples);
  }
  store.finish_stage(stage, "done");
}

class DashboardBrowser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (chromium_binary().empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs it): the browser test is skipped";
    work_ = fresh_work_dir("browser");
    shots_ = fs::path(AHA_BINARY_DIR) / "dashboard-tests" / "screenshots";
    fs::create_directories(shots_);
    write_grpo_like_run(work_ / "runs" / "demo", 60);
    write_grpo_like_run(work_ / "runs" / "sweep" / "other", 30);
    server_ = std::make_unique<LiveServer>(ServerOptions{.runs_dirs = {work_ / "runs"}});
  }
  fs::path profile(const std::string& name) { return work_ / ("chromium-" + name); }

  fs::path work_, shots_;
  std::unique_ptr<LiveServer> server_;
};

TEST_F(DashboardBrowser, RunsPageListsEveryRun) {
  const auto r = load(server_->url(), profile("runs"));
  expect_clean(r);
  EXPECT_NE(r.dom.find("data-run=\"demo\""), std::string::npos);
  EXPECT_NE(r.dom.find("data-run=\"sweep/other\""), std::string::npos);
  EXPECT_NE(r.dom.find(">finished<"), std::string::npos);
  load(server_->url(), profile("runs-shot"), shots_ / "runs.png");
  EXPECT_GT(size_of(shots_ / "runs.png"), 5000u);
}

TEST_F(DashboardBrowser, RunPageChartsDrawEveryStoredPoint) {
  const std::string url = server_->url() + "#/run/demo?compare=sweep/other";
  const auto r = load(url, profile("run"));
  expect_clean(r);
  const auto drawn = canvases(r.dom);
  RunStore store(work_ / "runs" / "demo" / "run.db", {.read_only = true});
  const auto names = store.metric_names(1);
  ASSERT_EQ(names.size(), 17u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(drawn.count(name)) << "no chart for " << name;
    const auto& canvas = drawn.at(name);
    const auto series = store.metric_series(1, name);
    double sum = 0;
    for (const auto& p : series) sum += p.value;
    EXPECT_EQ(canvas.at("data-points"), std::to_string(series.size()));
    EXPECT_NEAR(std::stod(canvas.at("data-sum")), sum, 1e-9 * std::max(1.0, std::abs(sum)));
    EXPECT_EQ(canvas.at("data-last-step"), std::to_string(series.back().step));
    EXPECT_GT(std::stoi(canvas.at("data-line-pixels")), 20) << "the line never reached the canvas";
  }
  ASSERT_TRUE(drawn.count("samples/reflection_rate"));  // computed from the samples of steps 58-60
  EXPECT_EQ(drawn.at("samples/reflection_rate").at("data-points"), "3");
  EXPECT_NEAR(std::stod(drawn.at("samples/reflection_rate").at("data-sum")), 3 * 0.5, 1e-12);  // odd completions say "Wait"
  for (const char* group : {"Rewards", "R1-Zero signature", "Optimisation", "Throughput", "data-group=\"custom\""})
    EXPECT_NE(r.dom.find(group), std::string::npos) << group;
  EXPECT_NE(r.dom.find("id=\"stages\""), std::string::npos);
  load(url, profile("run-shot"), shots_ / "run.png");
  EXPECT_GT(size_of(shots_ / "run.png"), 20000u);
}

TEST_F(DashboardBrowser, SampleBrowserShowsTheGroupsAndFilters) {
  const std::string base = server_->url() + "#/samples/demo?step=59";
  const auto all = load(base, profile("samples"));
  expect_clean(all);
  EXPECT_EQ(count_of(all.dom, "class=\"completion "), 8u);
  EXPECT_EQ(count_of(all.dom, "<details class=\"think\">"), 8u);  // folded
  EXPECT_EQ(count_of(all.dom, "<section class=\"group\""), 2u);
  EXPECT_NE(all.dom.find("<option value=\"59\" selected=\"\">"), std::string::npos);
  const auto truncated = load(base + "&filter=truncated", profile("truncated"));
  expect_clean(truncated);
  EXPECT_EQ(count_of(truncated.dom, "class=\"completion "), 1u);
  const auto correct = load(base + "&filter=correct&q=wait", profile("correct"));
  expect_clean(correct);
  EXPECT_EQ(count_of(correct.dom, "class=\"completion correct\""), 1u);  // index 3: right and says "Wait"
  EXPECT_EQ(count_of(correct.dom, "class=\"completion incorrect\""), 0u);
  load(base, profile("samples-shot"), shots_ / "samples.png");
  EXPECT_GT(size_of(shots_ / "samples.png"), 5000u);
}

}  // namespace
}  // namespace aha::dashboard
