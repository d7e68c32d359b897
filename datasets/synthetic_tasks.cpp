#include "datasets/synthetic_tasks.h"

#include <algorithm>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/json.h"
#include "datasets/countdown.h"
#include "datasets/problem_counts.h"
#include "datasets/seeded_random.h"

namespace aha {

namespace {

struct Person {
  const char* name;
  const char* subject;     // he / she
  const char* object;      // him / her
  const char* possessive;  // his / her
};

const std::vector<Person> kPeople = {
    {"Tom", "he", "him", "his"},  {"Anna", "she", "her", "her"}, {"Ravi", "he", "him", "his"},
    {"Mei", "she", "her", "her"}, {"Omar", "he", "him", "his"},  {"Lucia", "she", "her", "her"},
    {"Sam", "he", "him", "his"},  {"Zoe", "she", "her", "her"},
};
const std::vector<std::string> kItems = {"apples", "marbles", "stickers", "books",
                                         "coins",  "pencils", "cookies",  "shells"};

// How a step reads in the question and in the worked answer. Slots: {S} the subject
// ("He" in the first step, "Then he" after), {A} / {The} likewise, {s} {o} {p} the pronouns,
// {items}, {k} the operand, {times} "doubles" / "triples" / "becomes k times as large".
struct Phrasing {
  const char* sentence;
  const char* worked;
};
const std::vector<Phrasing> kAdd = {{"{S} buys {k} more.", "Buying {k} more gives"},
                                    {"{S} finds {k} more.", "Finding {k} more gives"},
                                    {"{A} friend gives {o} {k} more.", "Getting {k} more gives"}};
const std::vector<Phrasing> kTake = {{"{S} gives away {k}.", "Giving away {k} leaves"},
                                     {"{S} loses {k}.", "Losing {k} leaves"},
                                     {"{S} sells {k}.", "Selling {k} leaves"}};
const std::vector<Phrasing> kMultiply = {{"{The} number of {items} {s} has {times}.", "Multiplying by {k} gives"}};
const std::vector<Phrasing> kDivide = {
    {"{S} splits {p} {items} into {k} equal groups and keeps one group.", "Splitting into {k} equal groups leaves"}};

std::string fill(std::string_view pattern, const std::vector<std::pair<std::string_view, std::string>>& fields) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    bool replaced = false;
    for (const auto& [name, value] : fields) {
      if (pattern.substr(i, name.size()) == name) {
        out += value;
        i += name.size();
        replaced = true;
        break;
      }
    }
    if (!replaced) out += pattern[i++];
  }
  return out;
}

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string with_split_and_key(rapidjson::Document& doc, Split split, const std::string& key) {
  auto& a = doc.GetAllocator();
  doc.AddMember("split", rapidjson::StringRef(split_name(split)), a);
  doc.AddMember("key", rapidjson::Value(key.c_str(), a), a);
  return json::to_string(doc);
}

// Draws candidates until n distinct ones of the right split are found. `draw` returns a
// problem and sets its key.
std::vector<Example> collect(size_t n, Split split, const char* task,
                             const std::function<Example(std::string& key)>& draw) {
  std::vector<Example> out;
  std::set<std::string> seen;
  const size_t max_attempts = 1000 + 200 * n;
  for (size_t attempt = 0; out.size() < n; ++attempt) {
    if (attempt >= max_attempts)
      throw Error(std::string(task) + ": could only generate " + std::to_string(out.size()) + " distinct " +
                  split_name(split) + " problems of the " + std::to_string(n) +
                  " requested; widen the number ranges or raise the difficulty");
    std::string key;
    Example ex = draw(key);
    if (is_heldout_key(key) != (split == Split::heldout) || !seen.insert(key).second) continue;
    out.push_back(std::move(ex));
  }
  return out;
}

Example draw_arithmetic(SeededRandom& rng, const ArithmeticConfig& c, Split split, std::string& key) {
  const Person& p = rng.pick(kPeople);
  const std::string& items = rng.pick(kItems);
  const std::string he = p.subject, He = capitalised(p.subject);
  int64_t value = rng.uniform(c.start_min, c.start_max);
  int steps = static_cast<int>(rng.uniform(c.min_steps, c.max_steps));
  std::string prompt = std::string(p.name) + " has " + std::to_string(value) + " " + items + ".";
  std::string solution = std::string(p.name) + " starts with " + std::to_string(value) + " " + items + ".";
  key = std::to_string(value);
  for (int s = 0; s < steps; ++s) {
    std::vector<char> ops = {'+'};
    if (value >= 1) ops.push_back('-');
    if (c.factor_max >= 2 && value >= 1 && value * 2 <= c.value_max) ops.push_back('*');
    std::vector<int64_t> divisors;
    for (int64_t d = 2; d <= c.divisor_max; ++d)
      if (value >= d && value % d == 0) divisors.push_back(d);
    if (!divisors.empty()) ops.push_back('/');
    if (value + 1 > c.value_max) ops.erase(ops.begin());  // no room to add
    char op = rng.pick(ops);
    int64_t k = 0, next = 0;
    if (op == '+') {
      k = rng.uniform(1, std::min(c.operand_max, c.value_max - value));
      next = value + k;
    } else if (op == '-') {
      k = rng.uniform(1, std::min(c.operand_max, value));
      next = value - k;
    } else if (op == '*') {
      k = rng.uniform(2, std::max<int64_t>(2, std::min(c.factor_max, c.value_max / value)));
      next = value * k;
    } else {
      k = rng.pick(divisors);
      next = value / k;
    }
    const std::vector<Phrasing>& choices = op == '+' ? kAdd : op == '-' ? kTake : op == '*' ? kMultiply : kDivide;
    const Phrasing& phrasing = rng.pick(choices);
    const std::string times = k == 2   ? "doubles"
                              : k == 3 ? "triples"
                                       : "becomes " + std::to_string(k) + " times as large";
    const std::vector<std::pair<std::string_view, std::string>> fields = {{"{S}", s == 0 ? He : "Then " + he},
                                                                          {"{A}", s == 0 ? "A" : "Then a"},
                                                                          {"{The}", s == 0 ? "The" : "Then the"},
                                                                          {"{s}", he},
                                                                          {"{o}", p.object},
                                                                          {"{p}", p.possessive},
                                                                          {"{items}", items},
                                                                          {"{k}", std::to_string(k)},
                                                                          {"{times}", times}};
    std::string sentence = fill(phrasing.sentence, fields), worked = fill(phrasing.worked, fields);
    prompt += " " + sentence;
    solution += " " + worked + " " + std::to_string(value) + " " + op + " " + std::to_string(k) + " = " +
                std::to_string(next) + ".";
    key += std::string(1, op) + std::to_string(k);
    value = next;
  }
  prompt += " How many " + items + " does " + he + " have now?";
  solution += " The answer is " + std::to_string(value) + ".";

  Example ex;
  ex.prompt = prompt;
  ex.gold = std::to_string(value);
  ex.kind = TaskKind::math;
  ex.source = "synthetic:arithmetic";
  rapidjson::Document meta(rapidjson::kObjectType);
  auto& a = meta.GetAllocator();
  meta.AddMember("task", "arithmetic", a);
  meta.AddMember("steps", steps, a);
  meta.AddMember("solution", rapidjson::Value(solution.c_str(), a), a);
  ex.metadata = with_split_and_key(meta, split, key);
  return ex;
}

Example draw_countdown(SeededRandom& rng, const CountdownConfig& c, Split split, std::string& key) {
  // Redraw numbers until some integer target in range (other than the numbers) is reachable.
  constexpr int kMaxDraws = 1000;
  for (int draw = 0; draw < kMaxDraws; ++draw) {
    int count = static_cast<int>(rng.uniform(c.min_numbers, c.max_numbers));
    std::vector<int64_t> numbers;
    for (int i = 0; i < count; ++i) numbers.push_back(rng.uniform(c.number_min, c.number_max));
    auto reachable = countdown_reachable_integers(numbers, c.use_all_numbers);
    std::vector<int64_t> targets;
    for (const auto& [value, derivation] : reachable)
      if (value >= c.target_min && value <= c.target_max &&
          std::find(numbers.begin(), numbers.end(), value) == numbers.end())
        targets.push_back(value);
    if (targets.empty()) continue;
    int64_t target = rng.pick(targets);
    const CountdownDerivation& d = reachable.at(target);

    std::vector<int64_t> sorted = numbers;
    std::sort(sorted.begin(), sorted.end());
    key.clear();
    for (int64_t n : sorted) key += std::to_string(n) + ",";
    key += "=" + std::to_string(target);

    std::string list;
    for (size_t i = 0; i < numbers.size(); ++i) list += (i ? ", " : "") + std::to_string(numbers[i]);
    Example ex;
    ex.prompt = "Using the numbers [" + list + "], create an equation that equals " + std::to_string(target) +
                ". You can use basic arithmetic operations (+, -, *, /) and each number can be used at most once.";
    ex.gold = std::to_string(target);
    ex.kind = TaskKind::custom;
    ex.source = "synthetic:countdown";
    std::string solution;
    for (const auto& step : d.steps) solution += step + ". ";
    solution += "So " + d.expression + " = " + std::to_string(target) + ". The answer is " + d.expression + ".";

    rapidjson::Document meta(rapidjson::kObjectType);
    auto& a = meta.GetAllocator();
    meta.AddMember("task", "countdown", a);
    rapidjson::Value nums(rapidjson::kArrayType);
    for (int64_t n : numbers) nums.PushBack(n, a);
    meta.AddMember("numbers", nums, a);
    meta.AddMember("target", target, a);
    meta.AddMember("expression", rapidjson::Value(d.expression.c_str(), a), a);
    meta.AddMember("solution", rapidjson::Value(solution.c_str(), a), a);
    ex.metadata = with_split_and_key(meta, split, key);
    return ex;
  }
  throw Error("countdown: no target in " + std::to_string(c.target_min) + ".." + std::to_string(c.target_max) +
              " was reachable in " + std::to_string(kMaxDraws) + " draws of numbers in " +
              std::to_string(c.number_min) + ".." + std::to_string(c.number_max) + "; widen the target range");
}

// Refuses, before any drawing, a request for more distinct problems than can exist.
void check_possible(size_t n, uint64_t most, const char* task, Split split) {
  if (n <= most) return;
  throw Error(std::string(task) + ": n = " + std::to_string(n) + " is more than the " + std::to_string(most) +
              " distinct " + split_name(split) +
              " problems this configuration can produce (at most); lower n, or raise the difficulty");
}

void check_difficulty(int difficulty) {
  require(difficulty >= 1 && difficulty <= 5, "difficulty must be 1..5, got " + std::to_string(difficulty));
}

// Stream seeds: a train and a held-out call with the same seed draw different candidates.
uint64_t stream_seed(uint64_t seed, const char* task, Split split) {
  return mix_seed(mix_seed(seed, stable_hash(task)), split == Split::train ? 1 : 2);
}

}  // namespace

Split parse_split(std::string_view name) {
  if (name == "train") return Split::train;
  if (name == "heldout") return Split::heldout;
  throw Error("unknown split '" + std::string(name) + "'; expected train or heldout");
}

const char* split_name(Split split) { return split == Split::train ? "train" : "heldout"; }

bool is_heldout_key(std::string_view problem_key) { return stable_hash(problem_key) % 1000 < kHeldoutPerMille; }

ArithmeticConfig ArithmeticConfig::for_difficulty(int d) {
  check_difficulty(d);
  ArithmeticConfig c;
  switch (d) {
    case 1: c = {1, 1, 2, 50, 20, 0, 0, 100}; break;
    case 2: c = {1, 2, 2, 30, 20, 3, 3, 300}; break;
    case 3: c = {2, 3, 5, 50, 30, 4, 4, 1000}; break;
    case 4: c = {3, 4, 10, 100, 50, 5, 5, 3000}; break;
    default: c = {4, 6, 10, 200, 100, 9, 9, 10000};
  }
  return c;
}

CountdownConfig CountdownConfig::for_difficulty(int d) {
  check_difficulty(d);
  CountdownConfig c;
  switch (d) {
    case 1: c = {3, 3, 1, 10, 1, 30, true}; break;
    case 2: c = {3, 4, 1, 25, 1, 100, true}; break;
    case 3: c = {4, 4, 1, 50, 1, 100, true}; break;
    case 4: c = {4, 4, 1, 99, 1, 200, true}; break;
    default: c = {4, 4, 1, 99, 100, 999, true};
  }
  return c;
}

std::vector<Example> generate_arithmetic(size_t n, uint64_t seed, const ArithmeticConfig& c, Split split) {
  require(c.min_steps >= 1 && c.min_steps <= c.max_steps, "arithmetic: need 1 <= min_steps <= max_steps");
  require(c.start_min >= 0 && c.start_min <= c.start_max && c.start_max <= c.value_max,
          "arithmetic: need 0 <= start_min <= start_max <= value_max");
  require(c.operand_max >= 1 && c.value_max >= 1, "arithmetic: operand_max and value_max must be at least 1");
  check_possible(n, max_distinct_problems(c, split), "arithmetic", split);
  SeededRandom rng(stream_seed(seed, "arithmetic", split));
  auto out = collect(n, split, "arithmetic", [&](std::string& key) { return draw_arithmetic(rng, c, split, key); });
  for (size_t i = 0; i < out.size(); ++i)
    out[i].id = "arithmetic-" + std::string(split_name(split)) + "-" + std::to_string(seed) + "-" + std::to_string(i);
  return out;
}

std::vector<Example> generate_countdown(size_t n, uint64_t seed, const CountdownConfig& c, Split split) {
  require(c.min_numbers >= 2 && c.min_numbers <= c.max_numbers && c.max_numbers <= 6,
          "countdown: need 2 <= min_numbers <= max_numbers <= 6");
  require(c.number_min >= 1 && c.number_min <= c.number_max, "countdown: need 1 <= number_min <= number_max");
  require(c.target_min <= c.target_max, "countdown: need target_min <= target_max");
  check_possible(n, max_distinct_problems(c, split), "countdown", split);
  SeededRandom rng(stream_seed(seed, "countdown", split));
  auto out = collect(n, split, "countdown", [&](std::string& key) { return draw_countdown(rng, c, split, key); });
  for (size_t i = 0; i < out.size(); ++i)
    out[i].id = "countdown-" + std::string(split_name(split)) + "-" + std::to_string(seed) + "-" + std::to_string(i);
  return out;
}

std::string worked_text(const Example& example) {
  rapidjson::Document meta = json::parse(example.metadata, "metadata of example '" + example.id + "'");
  json::ObjectReader r(meta, "metadata of example '" + example.id + "'");
  return "Question: " + example.prompt + "\nAnswer: " + r.get_string("solution");
}

std::string generate_pretraining_corpus(size_t documents, uint64_t seed, int difficulty, Split split) {
  size_t countdowns = documents / 3;
  auto arithmetic =
      generate_arithmetic(documents - countdowns, seed, ArithmeticConfig::for_difficulty(difficulty), split);
  auto countdown = generate_countdown(countdowns, seed, CountdownConfig::for_difficulty(difficulty), split);
  std::string corpus;
  size_t a = 0, c = 0;
  for (size_t i = 0; i < documents; ++i) {
    const Example& ex = (i % 3 == 2 && c < countdown.size()) ? countdown[c++] : arithmetic[a++];
    corpus += worked_text(ex) + "\n\n";
  }
  return corpus;
}

}  // namespace aha
