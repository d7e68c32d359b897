#include "reward/remote/remote_scorer.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <optional>
#include <thread>

#include "core/json.h"
#include "reward/remote/wire_format.h"

namespace aha::reward::remote {
namespace {

using Clock = std::chrono::steady_clock;

struct Chunk {
  size_t begin = 0, end = 0;
};

// The "error" of an error reply, else the start of the body.
std::string reply_message(const HttpReply& reply) {
  try {
    auto doc = json::parse(reply.body, "reply");
    if (doc.IsObject() && doc.HasMember("error") && doc["error"].IsString()) return doc["error"].GetString();
  } catch (const Error&) {
  }
  return reply.body.substr(0, 300);
}

std::string http_status_text(const HttpReply& reply) {
  return "HTTP " + std::to_string(reply.status) + ": " + reply_message(reply);
}

}  // namespace

RemoteScorer::RemoteScorer(std::vector<RewardSpec> specs, RemoteScoringOptions options, std::unique_ptr<Scorer> local)
    : specs_(std::move(specs)), options_(std::move(options)), local_(std::move(local)) {
  require(!options_.servers.empty(), "remote scoring needs at least one reward server");
  require(options_.max_inflight_per_server >= 1, "remote scoring: max_inflight_per_server must be >= 1");
  require(options_.timeout_seconds > 0, "remote scoring: the server timeout must be > 0 seconds");
  for (size_t i = 0; i < options_.servers.size(); ++i)
    servers_.push_back(parse_server_address(options_.servers[i], "reward server " + std::to_string(i)));
  down_.assign(servers_.size(), "");
  std::string problems;
  for (size_t s = 0; s < servers_.size(); ++s) {
    const std::string why = health_problem(s);
    if (!why.empty()) problems += (problems.empty() ? "" : "; ") + servers_[s].text + ": " + why;
  }
  require(problems.empty(), "reward servers failed their health check: " + problems);
  stats_.items_by_server.assign(servers_.size(), 0);
}

RemoteScorer::~RemoteScorer() = default;

std::string RemoteScorer::health_problem(size_t s) const {
  HttpCall call;
  call.target = "/health";
  call.token = options_.token;
  call.timeout_seconds = std::min(options_.health_timeout_seconds, options_.timeout_seconds);
  HttpReply reply;
  try {
    reply = exchange(servers_[s], call);
  } catch (const ServerUnreachable& e) {
    return e.what();
  }
  if (reply.status == 401) return "it refuses our token (" + http_status_text(reply) + "); set reward.server_token";
  if (reply.status != 200) return "the health check answered " + http_status_text(reply);
  try {
    const std::string difference = spec_difference(specs_, parse_health(reply.body, "its health reply"));
    if (!difference.empty())
      return "it serves other rewards than this run scores with: " + difference +
             " (\"there\" is the server; start it with the same rewards)";
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

RemoteScorer::Stats RemoteScorer::last_stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

std::vector<ScoredSample> RemoteScorer::score(std::vector<ScoringInput> inputs) {
  const size_t n = inputs.size();
  std::vector<ScoredSample> results(n);
  Stats stats;
  stats.items_by_server.assign(servers_.size(), 0);
  if (n == 0) return results;

  // A server dropped in an earlier call may be back (restarted).
  for (size_t s = 0; s < servers_.size(); ++s)
    if (!down_[s].empty() && health_problem(s).empty()) down_[s].clear();
  auto all_down_error = [&] {
    std::string why;
    for (size_t s = 0; s < servers_.size(); ++s) why += (why.empty() ? "" : "; ") + servers_[s].text + ": " + down_[s];
    return Error("every reward server is down, " + std::to_string(n) + " items not all scored: " + why);
  };
  size_t slots = local_ ? 1 : 0;
  for (size_t s = 0; s < servers_.size(); ++s)
    if (down_[s].empty()) slots += options_.max_inflight_per_server;
  if (slots == 0) throw all_down_error();

  const size_t chunk_size =
      options_.chunk_size > 0 ? options_.chunk_size : std::max<size_t>(1, (n + 2 * slots - 1) / (2 * slots));
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Chunk> pending;
  for (size_t begin = 0; begin < n; begin += chunk_size) pending.push_back({begin, std::min(n, begin + chunk_size)});
  std::vector<bool> taken(n, false);
  size_t unscored = n;
  std::string fatal;

  // Waits for a chunk; none when the batch is done, failed, or (for a server) it is down.
  auto next_chunk = [&](std::optional<size_t> server) -> std::optional<Chunk> {
    std::unique_lock<std::mutex> lock(mutex);
    auto finished = [&] { return unscored == 0 || !fatal.empty() || (server && !down_[*server].empty()); };
    changed.wait(lock, [&] { return finished() || !pending.empty(); });
    if (finished()) return std::nullopt;
    Chunk chunk = pending.front();
    pending.pop_front();
    return chunk;
  };
  auto accept = [&](const Chunk& chunk, std::vector<ScoredSample>&& scored, size_t* counter) {
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t i = chunk.begin; i < chunk.end; ++i) {
      if (taken[i]) continue;  // never happens: a chunk is sent again only after its server failed
      taken[i] = true;
      results[i] = std::move(scored[i - chunk.begin]);
      --unscored;
      ++*counter;
    }
    changed.notify_all();
  };
  auto fail = [&](const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (fatal.empty()) fatal = message;
    changed.notify_all();
  };
  auto give_back = [&](const Chunk& chunk, std::optional<size_t> drop_server, const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex);
    pending.push_front(chunk);
    ++stats.chunks_retried;
    if (drop_server && down_[*drop_server].empty()) down_[*drop_server] = why;
    changed.notify_all();
  };

  auto serve = [&](size_t s) {
    std::optional<Clock::time_point> busy_since;
    while (auto chunk = next_chunk(s)) {
      HttpCall call;
      call.post = true;
      call.target = "/score";
      call.token = options_.token;
      call.timeout_seconds = options_.timeout_seconds;
      call.body = score_request_json(specs_, inputs, chunk->begin, chunk->end);
      HttpReply reply;
      try {
        reply = exchange(servers_[s], call);
      } catch (const ServerUnreachable& e) {
        give_back(*chunk, s, e.what());
        return;
      }
      const std::string who = "reward server " + servers_[s].text;
      if (reply.status == 200) {
        busy_since.reset();
        std::vector<ScoredSample> scored;
        try {
          scored = parse_score_reply(reply.body, chunk->end - chunk->begin, "its reply");
        } catch (const Error& e) {
          give_back(*chunk, s, e.what());
          return;
        }
        accept(*chunk, std::move(scored), &stats.items_by_server[s]);
      } else if (reply.status == 503) {  // busy: its other clients come first for a while
        if (!busy_since) busy_since = Clock::now();
        if (std::chrono::duration<double>(Clock::now() - busy_since.value()).count() > options_.timeout_seconds) {
          give_back(*chunk, s, "it stayed busy for over " + std::to_string(options_.timeout_seconds) + " s (" +
                                   http_status_text(reply) + ")");
          return;
        }
        give_back(*chunk, std::nullopt, "");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      } else if (reply.status == 413 && chunk->end - chunk->begin > 1) {
        const size_t middle = chunk->begin + (chunk->end - chunk->begin) / 2;
        std::lock_guard<std::mutex> lock(mutex);
        pending.push_front({middle, chunk->end});
        pending.push_front({chunk->begin, middle});
        changed.notify_all();
      } else if (reply.status >= 500) {
        give_back(*chunk, s, "it failed: " + http_status_text(reply));
        return;
      } else {  // the request itself is wrong: another server would refuse it too
        fail(who + " refused items " + std::to_string(chunk->begin) + ".." + std::to_string(chunk->end - 1) +
             " of the batch (" + http_status_text(reply) + ")");
        return;
      }
    }
  };
  auto serve_locally = [&] {
    while (auto chunk = next_chunk(std::nullopt)) {
      std::vector<ScoringInput> part(inputs.begin() + static_cast<std::ptrdiff_t>(chunk->begin),
                                     inputs.begin() + static_cast<std::ptrdiff_t>(chunk->end));
      try {
        accept(*chunk, local_->score(std::move(part)), &stats.items_local);
      } catch (const std::exception& e) {
        fail(std::string("local scoring failed: ") + e.what());
        return;
      }
    }
  };

  std::vector<std::thread> lanes;
  try {
    for (size_t s = 0; s < servers_.size(); ++s)
      if (down_[s].empty())
        for (size_t k = 0; k < options_.max_inflight_per_server; ++k) lanes.emplace_back(serve, s);
    if (local_) lanes.emplace_back(serve_locally);
  } catch (const std::system_error& e) {
    fail(std::string("cannot start a thread for remote scoring: ") + e.what());
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    auto every_server_down = [&] {
      return !local_ && std::all_of(down_.begin(), down_.end(), [](const std::string& why) { return !why.empty(); });
    };
    changed.wait(lock, [&] { return unscored == 0 || !fatal.empty() || every_server_down(); });
    if (unscored > 0 && fatal.empty()) fatal = all_down_error().what();
    changed.notify_all();
  }
  for (auto& lane : lanes) lane.join();
  {
    std::lock_guard<std::mutex> lock(stats_mutex_);
    stats_ = stats;
  }
  if (unscored > 0) throw Error(fatal);
  return results;
}

}  // namespace aha::reward::remote
