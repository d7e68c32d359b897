// `aha serve rewards`: scores batches for runs on other machines (reward/remote/).
//
//   aha serve rewards --rewards SPEC [--port P] [--host H] [--token T] [--threads N]
//                     [--max-request-bytes B] [--max-inflight N] [--max-connections N]
//                     [--read-timeout S]
#include <cstdlib>
#include <iostream>

#include "core/error.h"
#include "reward/remote/reward_server.h"
#include "reward/reward_registry.h"
#include "tools/cli.h"

namespace aha {
namespace {

int serve_rewards(const cli::Args& args) {
  reward::remote::RewardServerOptions options;
  options.host = args.get("host", "127.0.0.1");
  options.port = static_cast<uint16_t>(args.get_int("port", 7000, 0, 65535));
  options.token = args.get("token", "");
  // A token on the command line is visible to every user of the machine (ps); the
  // environment is not.
  if (options.token.empty())
    if (const char* env = std::getenv("AHA_REWARD_SERVER_TOKEN")) options.token = env;
  options.threads = static_cast<size_t>(args.get_int("threads", 0, 0, 256));
  options.max_request_bytes = static_cast<size_t>(args.get_int("max-request-bytes", 64 << 20, 1024, int64_t{1} << 32));
  options.max_inflight = static_cast<size_t>(args.get_int("max-inflight", 4, 1, 1024));
  options.max_connections = static_cast<size_t>(args.get_int("max-connections", 256, 1, 65536));
  options.read_timeout_seconds = static_cast<double>(args.get_int("read-timeout", 30, 1, 3600));
  const auto specs = reward::parse_reward_specs(args.required("rewards"));
  reward::remote::RewardServer server(options, specs);
  std::string names;
  for (const auto& spec : specs) names += (names.empty() ? "" : ", ") + spec.name;
  std::cout << "aha serve rewards: serving " << names << " at " << server.url()
            << (options.token.empty() ? "" : " (token required)") << "  (Ctrl-C stops it)" << std::endl;
  server.run(/*handle_signals=*/true);
  return 0;
}

const cli::CommandRegistration kServeRewards(
    {"serve rewards", "score batches for runs on other machines: aha serve rewards --rewards math_accuracy --port 7000",
     {.usage = "--rewards SPEC [options]",
      .description =
          "An HTTP/JSON server that scores batches of completions with the rewards of SPEC (built-ins, code in the\n"
          "sandbox, plug-ins) on this machine's cores: GET /health, POST /score {\"items\": [sample, ...]} where a\n"
          "sample is a line of `aha reward score`'s input. A recipe uses it with reward.servers. It listens on\n"
          "127.0.0.1; a --host reachable from other machines needs --token (or AHA_REWARD_SERVER_TOKEN).",
      .options = {{"rewards", "SPEC", "required", "name:weight,... (e.g. math_accuracy:1,format:0.5) or a JSON file; the "
                                                  "run's rewards must be the same"},
                  {"port", "P", "7000", "the TCP port (0: any free port)"},
                  {"host", "H", "127.0.0.1", "the address to listen on; not a loopback one only with a token"},
                  {"token", "T", "$AHA_REWARD_SERVER_TOKEN", "a secret every request must carry (Authorization: Bearer T)"},
                  {"threads", "N", "0 (one per CPU)", "scoring threads"},
                  {"max-request-bytes", "B", "67108864", "larger requests are refused (413)"},
                  {"max-inflight", "N", "4", "batches scored at once; later ones wait their turn"},
                  {"max-connections", "N", "256", "more connections are answered 503 and closed"},
                  {"read-timeout", "S", "30", "seconds a request may take to arrive whole (slow clients are cut off)"}},
      .max_positional = 0,
      .examples = {"aha serve rewards --rewards math_accuracy:1,format:0.5 --port 7000",
                   "AHA_REWARD_SERVER_TOKEN=$(openssl rand -hex 16) aha serve rewards --rewards rewards.json --host 0.0.0.0",
                   "curl -s localhost:7000/health"}},
     serve_rewards});

}  // namespace
}  // namespace aha
