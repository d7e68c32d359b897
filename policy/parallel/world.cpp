#include "policy/parallel/world.h"

#include <cstdlib>
#include <vector>

#include "core/error.h"

namespace aha::parallel {
namespace {

int parse_int(const std::string& name, const std::string& text, int low, int high) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used);
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < low || v > high)
    throw Error("environment variable " + name + "=" + text + " is not an integer in [" + std::to_string(low) + ", " +
                std::to_string(high) + "]");
  return static_cast<int>(v);
}

bool parse_yes_no(const std::string& name, const std::optional<std::string>& text) {
  if (!text || *text == "False" || *text == "false" || *text == "0") return false;
  if (*text == "True" || *text == "true" || *text == "1") return true;
  throw Error("environment variable " + name + "=" + *text + " is not True, true, 1, False, false or 0");
}

void check_world(const World& w, const std::string& rank_name, const std::string& size_name,
                 const std::string& local_name, const std::string& local_size_name) {
  if (w.rank >= w.world_size)
    throw Error(rank_name + "=" + std::to_string(w.rank) + " is not below " + size_name + "=" +
                std::to_string(w.world_size));
  if (w.local_world_size > w.world_size)
    throw Error(local_size_name + "=" + std::to_string(w.local_world_size) + " exceeds " + size_name + "=" +
                std::to_string(w.world_size));
  if (w.local_rank >= w.local_world_size)
    throw Error(local_name + "=" + std::to_string(w.local_rank) + " is not below " + local_size_name + "=" +
                std::to_string(w.local_world_size));
  if (w.local_rank > w.rank)
    throw Error(local_name + "=" + std::to_string(w.local_rank) + " exceeds " + rank_name + "=" +
                std::to_string(w.rank) + ": a process's local rank counts the ranks on its node only");
}

World from_torchrun(const Environment& env) {
  const std::vector<std::string> names = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                                          "MASTER_PORT"};
  std::string missing;
  for (const auto& n : names)
    if (!env(n)) missing += (missing.empty() ? "" : ", ") + n;
  if (!missing.empty())
    throw Error("torchrun-style launch: " + missing + " not set (a distributed launch sets all of RANK, WORLD_SIZE, "
                "LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT; a single process sets none)");
  World w;
  w.launcher = "torchrun";
  w.world_size = parse_int("WORLD_SIZE", *env("WORLD_SIZE"), 1, 1 << 20);
  w.rank = parse_int("RANK", *env("RANK"), 0, 1 << 20);
  w.local_world_size = parse_int("LOCAL_WORLD_SIZE", *env("LOCAL_WORLD_SIZE"), 1, 1 << 20);
  w.local_rank = parse_int("LOCAL_RANK", *env("LOCAL_RANK"), 0, 1 << 20);
  w.master_addr = *env("MASTER_ADDR");
  if (w.master_addr.empty()) throw Error("environment variable MASTER_ADDR is empty");
  w.master_port = parse_int("MASTER_PORT", *env("MASTER_PORT"), 1, 65535);
  w.agent_store = parse_yes_no("TORCHELASTIC_USE_AGENT_STORE", env("TORCHELASTIC_USE_AGENT_STORE"));
  check_world(w, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE");
  return w;
}

World from_slurm(const Environment& env) {
  auto need = [&](const std::vector<std::string>& choices) {
    for (const auto& n : choices)
      if (auto v = env(n)) return std::make_pair(n, *v);
    std::string list;
    for (const auto& n : choices) list += (list.empty() ? "" : " or ") + n;
    throw Error("Slurm job step (SLURM_STEP_ID is set): " + list + " is not set");
  };
  World w;
  w.launcher = "slurm";
  const auto [size_name, size] = need({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"});
  w.world_size = parse_int(size_name, size, 1, 1 << 20);
  w.rank = parse_int("SLURM_PROCID", need({"SLURM_PROCID"}).second, 0, 1 << 20);
  w.local_rank = parse_int("SLURM_LOCALID", need({"SLURM_LOCALID"}).second, 0, 1 << 20);
  const auto [per_node_name, per_node] = need({"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", "SLURM_NTASKS_PER_NODE"});
  const int node = env("SLURM_NODEID") ? parse_int("SLURM_NODEID", *env("SLURM_NODEID"), 0, 1 << 20) : 0;
  try {
    w.local_world_size = slurm_tasks_on_node(per_node, node);
  } catch (const Error& e) {
    throw Error("environment variable " + per_node_name + "=" + per_node + ": " + e.what());
  }
  if (auto addr = env("MASTER_ADDR"); addr && !addr->empty()) {
    w.master_addr = *addr;
  } else {
    const auto [list_name, list] = need({"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"});
    try {
      w.master_addr = first_slurm_host(list);
    } catch (const Error& e) {
      throw Error("environment variable " + list_name + "=" + list + ": " + e.what());
    }
  }
  if (auto port = env("MASTER_PORT")) {
    w.master_port = parse_int("MASTER_PORT", *port, 1, 65535);
  } else {
    const auto job = need({"SLURM_JOB_ID", "SLURM_JOBID"});
    w.master_port = 29500 + parse_int(job.first, job.second, 0, 2147483647) % 1000;
  }
  check_world(w, "SLURM_PROCID", size_name, "SLURM_LOCALID", per_node_name);
  return w;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  int depth = 0;
  size_t end = nodelist.size();
  for (size_t i = 0; i < nodelist.size(); ++i) {
    if (nodelist[i] == '[') ++depth;
    if (nodelist[i] == ']') --depth;
    if (nodelist[i] == ',' && depth == 0) {
      end = i;
      break;
    }
  }
  const std::string first = nodelist.substr(0, end);
  const size_t open = first.find('[');
  if (first.empty()) throw Error("empty host list");
  if (open == std::string::npos) return first;
  const size_t close = first.find(']', open);
  if (close == std::string::npos) throw Error("unbalanced '[' in host list");
  std::string range = first.substr(open + 1, close - open - 1);
  range = range.substr(0, range.find(','));
  range = range.substr(0, range.find('-'));
  if (range.empty()) throw Error("empty range in host list");
  return first.substr(0, open) + range + first.substr(close + 1);
}

int slurm_tasks_on_node(const std::string& tasks_per_node, int node) {
  // Comma-separated counts, each optionally "(xN)": N consecutive nodes with that count.
  int seen = 0;
  size_t pos = 0;
  while (pos <= tasks_per_node.size()) {
    size_t comma = tasks_per_node.find(',', pos);
    if (comma == std::string::npos) comma = tasks_per_node.size();
    const std::string item = tasks_per_node.substr(pos, comma - pos);
    const size_t paren = item.find("(x");
    const int count = parse_int("tasks per node", item.substr(0, paren), 1, 1 << 20);
    int repeat = 1;
    if (paren != std::string::npos) {
      if (item.back() != ')') throw Error("expected '(xN)' in '" + item + "'");
      repeat = parse_int("tasks per node repeat", item.substr(paren + 2, item.size() - paren - 3), 1, 1 << 20);
    }
    if (node < seen + repeat) return count;
    seen += repeat;
    pos = comma + 1;
  }
  throw Error("lists " + std::to_string(seen) + " node(s), but SLURM_NODEID is " + std::to_string(node));
}

World world_from_environment(const Environment& env) {
  for (const char* n : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"})
    if (env(n)) return from_torchrun(env);
  if (env("SLURM_STEP_ID") || env("SLURM_STEPID")) {
    World w = from_slurm(env);
    if (w.world_size > 1) return w;
  }
  return World{};
}

World world_from_environment() {
  return world_from_environment([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
}

}  // namespace aha::parallel
