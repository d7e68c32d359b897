// DashboardApi: the JSON (and CSV) API under /api/ that the page, scripts and notebooks use.
//
//   GET /api/runs                                       every run: name, recipe, stage, status,
//                                                       step of total, last eval accuracy, times
//   GET /api/runs/<id>                                  one run: its stages with headline
//                                                       figures, metric names, sample steps
//   GET /api/runs/<id>/metrics?names=a,b&since_step=N   series by step (all names without names=);
//                              &format=csv              name,step,value,time rows instead
//   GET /api/runs/<id>/samples?step=N                   the step's prompts and completions
//                                                       (the latest sample step without step=)
//   GET /api/runs/<id>/reflection?since_step=N&words=a,b  reflection-word rate per sample step
// Every run endpoint takes &stage=NAME (default: the run's latest stage). Non-finite numbers are
// JSON null. Status: running, finished, stopped, failed, or stale (running, but nothing written
// for stale_after_seconds: the trainer probably died without saying so).
//
// A bad request is an HttpError (400 malformed id, name, number or unknown parameter; 404 a run,
// stage, metric or sample step that does not exist) whose message says which.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "dashboard/run_catalog.h"
#include "dashboard/run_reader.h"

namespace aha::dashboard {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct ApiReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

struct ApiOptions {
  std::vector<std::string> reflection_words = default_reflection_words();
  double stale_after_seconds = 300;
};

class DashboardApi {
 public:
  DashboardApi(RunCatalog& catalog, ApiOptions options);

  // path: the decoded URL path, starting with "/api/". Throws HttpError for a bad request.
  ApiReply handle(const std::string& path, const QueryParams& query);

 private:
  ApiReply list_runs(const QueryParams& query);
  ApiReply run_detail(const RunLocation& run, const QueryParams& query);
  ApiReply metrics(const RunLocation& run, const QueryParams& query);
  ApiReply samples(const RunLocation& run, const QueryParams& query);
  ApiReply reflection(const RunLocation& run, const QueryParams& query);

  RunCatalog& catalog_;
  ApiOptions options_;
  ReaderPool readers_;
};

}  // namespace aha::dashboard
