// The `aha` command line's plumbing: argument parsing and the table of commands.
//
// Each command group lives in its own cmd_*.cpp and registers itself with a static
// CommandRegistration, so adding a command touches no shared file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace aha::cli {

// Parsed arguments: `--name value` options, `--flag` switches and positional words.
// Every option a command accepts must be declared; anything else is an error naming it, and so
// is a positional word beyond those the command takes (a stray word is usually a typo, e.g.
// a value whose option name was forgotten, and ignoring it runs something else than asked).
class Args {
 public:
  static constexpr size_t kAnyPositional = static_cast<size_t>(-1);

  // `spec` lists the accepted options: "name" takes a value, "name!" is a switch,
  // "name*" takes all values up to the next option (e.g. --decode 1 2 3). At most
  // `max_positional` positional words are accepted.
  Args(const std::vector<std::string>& words, const std::vector<std::string>& spec,
       const std::string& command, size_t max_positional = 0);

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
  std::map<std::string, std::vector<std::string>> values_;
  std::vector<std::string> positional_;
};

// "1,2,3" -> {1, 2, 3}: non-negative integers; errors name --option.
std::vector<int64_t> parse_id_list(const std::string& text, const std::string& option);

struct Command {
  std::string name;     // e.g. "model init"
  std::string summary;  // one line for `aha help`
  std::function<int(const std::vector<std::string>&)> run;  // words after the name
};

std::vector<Command>& registry();

struct CommandRegistration {
  explicit CommandRegistration(Command command) { registry().push_back(std::move(command)); }
};

}  // namespace aha::cli
