// `aha`: the command line. Finds the longest registered command name that prefixes the
// arguments ("model init" before "model"), parses the rest with the command's Spec and runs it,
// or prints its help (`--help`, `-h`, `aha help CMD`). Exit statuses: cli::kExitStatusText.
#include <c10/util/Exception.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <filesystem>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "core/error.h"
#include "reward/model/reward_model_reward.h"
#include "tools/cli.h"

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void print_help() {
  std::cout << "aha: GRPO reasoning training (DeepSeek-R1 style) in C++/LibTorch\n\n"
               "usage: aha COMMAND [options]     (aha COMMAND --help, or aha help COMMAND, for its options)\n"
               "       aha --version\n\nCommands:\n";
  for (const auto& c : aha::cli::registry()) std::cout << "  aha " << c.name << "\n      " << c.summary << "\n";
  std::cout << "\n" << aha::cli::kExitStatusText;
}

#ifndef AHA_VERSION
#error "AHA_VERSION comes from project(aha VERSION ...) through tools/CMakeLists.txt"
#endif

void print_version() {
#ifdef AHA_WITH_CUDA
  const bool built_with_cuda = true;
#else
  const bool built_with_cuda = false;
#endif
  std::cout << "aha " << AHA_VERSION << "\n"
            << "LibTorch " << TORCH_VERSION << "\n"
            << "built with CUDA: " << (built_with_cuda ? "yes" : "no") << "\n"
            << "CUDA available: " << (torch::cuda::is_available() ? "yes" : "no") << "\n";
}

// The registered command whose name is the longest prefix of `words`; nullptr if none.
// `used` is set to the number of words its name takes.
const aha::cli::Command* find_command(const std::vector<std::string>& words, size_t& used) {
  const aha::cli::Command* best = nullptr;
  size_t best_len = 0;
  for (const auto& c : aha::cli::registry()) {
    std::vector<std::string> parts;
    size_t start = 0, space;
    while ((space = c.name.find(' ', start)) != std::string::npos) {
      parts.push_back(c.name.substr(start, space - start));
      start = space + 1;
    }
    parts.push_back(c.name.substr(start));
    if (parts.size() > words.size() || parts.size() <= best_len) continue;
    if (std::equal(parts.begin(), parts.end(), words.begin())) {
      best = &c;
      best_len = parts.size();
    }
  }
  used = best_len;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  aha::reward::register_reward_model_reward();  // a reward kind above reward/ (reward/model/)
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || (words[0] == "help" && words.size() == 1)) {
    print_help();
    return words.empty() ? 2 : 0;
  }
  if (words[0] == "--version" || words[0] == "version") {
    print_version();
    return 0;
  }
  const bool help_command = words[0] == "help";  // aha help CMD
  if (help_command) words.erase(words.begin());
  size_t best_len = 0;
  const aha::cli::Command* best = find_command(words, best_len);
  if (!best) {
    std::string asked;
    for (const auto& w : words) asked += (asked.empty() ? "" : " ") + w;
    std::cerr << "aha: unknown command '" << (help_command ? asked : words[0]) << "'; run 'aha help' for the list\n";
    return 2;
  }
  if (help_command && best_len != words.size()) {
    std::cerr << "aha help: unexpected words after '" << best->name << "'; run 'aha help " << best->name << "'\n";
    return 2;
  }
  // One line on stderr whatever escapes: bad input and failed operations are errors (exit 1);
  // only what no check foresaw is an internal error (exit 3). Never a LibTorch stack trace.
  const std::string prefix = "aha " + best->name + ": ";
  try {
    if (help_command) {
      std::cout << aha::cli::help_text(best->name, best->spec);
      return 0;
    }
    const aha::cli::Args args(std::vector<std::string>(words.begin() + best_len, words.end()), best->spec, best->name);
    if (args.help()) {
      std::cout << aha::cli::help_text(best->name, best->spec);
      return 0;
    }
    return best->run(args);
  } catch (const aha::cli::UsageError& e) {
    std::cerr << prefix << "error: " << e.what() << "\n" << prefix << "run 'aha " << best->name << " --help' for its usage\n";
    return 2;
  } catch (const aha::Error& e) {
    std::cerr << prefix << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << prefix << "error: " << e.what() << "\n";  // names the path(s) and the reason
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << prefix << "error: out of memory: the request needs more memory than this machine has; "
                           "lower the sizes it asks for\n";
    return 1;
  } catch (const c10::OutOfMemoryError& e) {
    std::cerr << prefix << "error: out of device memory: " << first_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const c10::Error& e) {
    const std::string message = first_line(e.what_without_backtrace());
    if (message.find("can't allocate") != std::string::npos || message.find("Cannot allocate") != std::string::npos) {
      std::cerr << prefix << "error: out of memory: " << message << "; lower the sizes the request asks for\n";
      return 1;
    }
    std::cerr << prefix << "internal error: " << message << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << prefix << "internal error: " << first_line(e.what()) << "\n";
    return 3;
  }
}
