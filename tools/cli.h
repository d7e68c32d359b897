// The `aha` command line's plumbing: each command's declarative spec (its options with their
// meaning and default, positional words, examples), the parser and the help generated from it,
// and the table of commands.
//
// Each command group lives in its own cmd_*.cpp and registers itself with a static
// CommandRegistration, so adding a command touches no shared file. main.cpp parses a command's
// words with the command's own Spec before calling it, so the help can never list an option
// the parser rejects, nor miss one it accepts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace aha::cli {

// A command-line mistake: an unknown command or option, a missing or extra argument, a value
// an option cannot take. `aha` exits 2 for it (1 for other errors, 3 for internal ones).
class UsageError : public Error {
 public:
  using Error::Error;
};

// One option of a command.
struct Option {
  std::string name{};   // "model" for --model; "name!" is a switch, "name*" takes all values up
                        // to the next option (e.g. --decode 1 2 3)
  std::string value{};  // what the value is, for the help: "DIR", "N" ("" for a switch)
  std::string fallback{};  // the default, for the help: "0", "cpu"; "required" or "" (none)
  std::string help{};   // what it means
  std::string alias{};  // a short form, e.g. "-n" for --n ("" for none)
};

struct Spec {
  std::string usage{};                  // after "aha CMD ": e.g. "RECIPE.json [options]"
  std::string description{};            // a few sentences: what the command does
  std::vector<Option> options{};
  size_t max_positional = 0;            // positional words accepted (Args::kAnyPositional: any)
  std::vector<std::string> examples{};  // whole command lines, "aha ..."

  // Options by name alone ("model", "quick!"), no help text: for the benchmarks in tools/bench,
  // which are developers' programs rather than `aha` commands.
  static Spec of_names(const std::vector<std::string>& names) {
    Spec spec;
    for (const auto& name : names) spec.options.push_back({.name = name});
    return spec;
  }
};

// The help of `aha CMD --help`: usage, description, every option with its default and meaning,
// examples and the exit statuses.
std::string help_text(const std::string& command, const Spec& spec);

// What `aha --help` and the help of every command say about exit statuses.
extern const char* const kExitStatusText;

// `--help` or `-h` among a command's words: the help is printed whatever else is given (even
// with required options missing), after the option names are checked.
bool wants_help(const std::vector<std::string>& words);

// Parsed arguments: `--name value` options, `--flag` switches and positional words.
// Every option a command accepts must be in its Spec; anything else is a UsageError naming it,
// and so is a positional word beyond those the command takes (a stray word is usually a typo,
// e.g. a value whose option name was forgotten, and ignoring it runs something else than asked).
// Every error an Args method throws is a UsageError.
class Args {
 public:
  static constexpr size_t kAnyPositional = static_cast<size_t>(-1);

  // With wants_help(words), only option names are checked: the help is what is asked for.
  Args(const std::vector<std::string>& words, const Spec& spec, const std::string& command);

  const std::string& command() const { return command_; }
  bool help() const { return help_; }
  bool flag(const std::string& name) const;
  std::optional<std::string> get(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback) const;
  std::string required(const std::string& name) const;
  // An integer option in [min, max]: the whole word must be a decimal integer ("12abc",
  // "1e3" and " 5" are not) inside the range, else an error names the option, the value and
  // the range; never truncated or wrapped. The fallback is returned as is when absent.
  int64_t get_int(const std::string& name, int64_t fallback, int64_t min = INT64_MIN,
                  int64_t max = INT64_MAX) const;
  double get_double(const std::string& name, double fallback) const;
  std::vector<std::string> list(const std::string& name) const;  // repeated or "name*"
  const std::vector<std::string>& positional() const { return positional_; }
  std::string positional(size_t index, const std::string& what) const;  // required

 private:
  std::string command_;
  bool help_ = false;
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// "1,2,3" -> {1, 2, 3}: non-negative integers; errors (UsageError) name --option.
std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option);

// "a,c" -> {"a", "c"}: each name one of `known`; an unknown or empty one is a UsageError naming
// --option, the name and the known ones.
std::set<std::string> parse_name_list(const std::string& text, const std::string& option,
                                      const std::vector<std::string>& known);

struct Command {
  std::string name;     // e.g. "model init"
  std::string summary;  // one line for `aha help`
  Spec spec;
  std::function<int(const Args&)> run;  // the words after the name, parsed with `spec`
};

std::vector<Command>& registry();

struct CommandRegistration {
  explicit CommandRegistration(Command command) { registry().push_back(std::move(command)); }
};

}  // namespace aha::cli
