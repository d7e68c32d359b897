#include "datasets/base_corpus.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/json.h"
#include "datasets/seeded_random.h"
#include "datasets/synthetic_tasks.h"

namespace aha {
namespace {

// Problems per generator call: distinct by key within a call, so small enough that the easiest
// difficulty (about 1,800 distinct train problems) always has them.
constexpr size_t kProblemsPerCall = 400;

const std::vector<std::string> kNames = {"Tom", "Anna", "Ravi", "Mei", "Omar", "Lucia", "Sam", "Zoe", "Ben", "Nora"};
const std::vector<std::string> kSubjects = {
    "The user",    "The assistant", "A student", "The teacher", "{name}", "My friend",
    "Each player", "The reader",    "A child",   "The writer",  "{name}"};
const std::vector<std::string> kVerbs = {
    "asks a question about", "solves",  "thinks about", "explains", "writes down",
    "checks",                "answers", "reads",        "provides an answer to", "works through"};
const std::vector<std::string> kObjects = {
    "the problem", "the question", "the puzzle", "a math question", "the reasoning process", "the numbers",
    "the last step", "a short story", "the first example", "the hard part"};
const std::vector<std::string> kTails = {
    "", " in the mind", " step by step", " first", " and then provides the answer", " before answering",
    " carefully", " with a friend", " in a conversation", " and then gives the answer"};
const std::vector<std::string> kSentences = {
    "A conversation between {name} and {other} can be long or short.",
    "In a conversation, the user asks and the assistant answers.",
    "The reasoning process happens in the mind before the answer is given.",
    "{name} thinks about the question first and then provides the answer.",
    "The notes are enclosed within brackets, so they are easy to find.",
    "{name} and {other} bring apples and pears, respectively.",
    "The answer here is short, but the reasoning here is long.",
    "Some pages put the reasoning between tags, i.e., labels that mark where it begins and ends.",
    "A good assistant explains the reasoning process and then states the answer.",
    "The user reads the answer and asks another question.",
    "Each question has an answer, and each answer has a reason.",
    "Thinking first helps, i.e., the mind checks each step.",
    "{name} solves it quickly, and {other} solves it slowly.",
    "The teacher provides the user with a hint and the assistant with a task.",
    "Words enclosed within quotes are what someone said.",
    "The first and second numbers are three and five, respectively."};

std::string fill_names(std::string s, SeededRandom& rng) {
  const std::string name = rng.pick(kNames);
  std::string other = rng.pick(kNames);
  if (other == name) other = name == "Tom" ? "Anna" : "Tom";
  for (auto [key, value] : {std::pair<std::string, std::string>{"{name}", name}, {"{other}", other}}) {
    for (size_t at; (at = s.find(key)) != std::string::npos;) s.replace(at, key.size(), value);
  }
  return s;
}

std::string solution_of(const Example& ex) {
  auto meta = json::parse(ex.metadata, "metadata of example '" + ex.id + "'");
  return json::ObjectReader(meta, "metadata of example '" + ex.id + "'").get_string("solution");
}

constexpr int kStyles = 7;

// Style counts by largest remainder of weight / total * documents, ties to the earlier style.
std::vector<int64_t> style_counts(const BaseCorpusSpec& s) {
  const double w[kStyles] = {s.plain, s.dialogue, s.tagged, s.prose, s.drill, s.chinese, s.checked};
  double total = 0;
  for (double x : w) total += x;
  std::vector<int64_t> counts(kStyles);
  std::vector<std::pair<double, int>> remainders;
  int64_t assigned = 0;
  for (int i = 0; i < kStyles; ++i) {
    double exact = w[i] / total * double(s.documents);
    counts[i] = int64_t(std::floor(exact));
    assigned += counts[i];
    remainders.emplace_back(exact - double(counts[i]), i);
  }
  std::stable_sort(remainders.begin(), remainders.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (int64_t k = 0; assigned < s.documents; ++k, ++assigned) ++counts[size_t(remainders[size_t(k)].second)];
  return counts;
}

// n train problems, spread evenly over the difficulties, in calls of kProblemsPerCall.
std::vector<Example> problems(size_t n, const BaseCorpusSpec& s, bool countdown) {
  std::vector<Example> out;
  const int levels = s.max_difficulty - s.min_difficulty + 1;
  for (int level = 0; level < levels; ++level) {
    size_t want = n / size_t(levels) + (size_t(level) < n % size_t(levels) ? 1 : 0);
    const int d = s.min_difficulty + level;
    for (uint64_t call = 0; want > 0; ++call) {
      size_t k = std::min(want, kProblemsPerCall);
      uint64_t seed = mix_seed(mix_seed(s.seed, uint64_t(d)), call);
      ArithmeticConfig arithmetic = ArithmeticConfig::for_difficulty(d);
      if (s.min_steps > 0) arithmetic.min_steps = s.min_steps;
      if (s.max_steps > 0) arithmetic.max_steps = s.max_steps;
      auto part = countdown ? generate_countdown(k, seed, CountdownConfig::for_difficulty(d), Split::train)
                            : generate_arithmetic(k, seed, arithmetic, Split::train);
      for (auto& ex : part) out.push_back(std::move(ex));
      want -= k;
    }
  }
  return out;
}

bool about_mei(const Example& ex) { return ex.kind == TaskKind::math && ex.prompt.starts_with("Mei "); }

// Keeps `chinese` of the problems about Mei, spread evenly over them (and so over the
// difficulties, which come in order), and replaces the others by problems about other people
// from a second seeded batch over the same difficulties, so that no other style writes about Mei.
void keep_mei_for_chinese(std::vector<Example>& arithmetic, int64_t chinese, const BaseCorpusSpec& spec) {
  const auto mei = std::count_if(arithmetic.begin(), arithmetic.end(), about_mei);
  if (mei <= chinese) return;
  BaseCorpusSpec other = spec;
  other.seed = mix_seed(spec.seed, stable_hash("base corpus replacements for Mei"));
  // About one problem in ten is about Mei: twice the need leaves ample others.
  std::vector<Example> spare = problems(size_t(2 * (mei - chinese) + 16), other, false);
  std::erase_if(spare, about_mei);
  size_t next_spare = 0;
  int64_t seen = 0;
  for (Example& ex : arithmetic) {
    if (!about_mei(ex)) continue;
    const int64_t i = seen++;  // the i-th of Mei's problems is kept when the kept count steps up
    if ((i + 1) * chinese / mei > i * chinese / mei) continue;
    require(next_spare < spare.size(), "base corpus: too few problems to replace those about Mei");
    ex = spare[next_spare++];
  }
}

std::string key_of(const Example& ex) {
  auto meta = json::parse(ex.metadata, "metadata of example '" + ex.id + "'");
  return json::ObjectReader(meta, "metadata").get_string("key");
}

// "{framing}" with the question and the tagged reasoning, the tags on lines of their own a third
// of the time, as some pages write them.
std::string framed(const std::string& prompt, std::string tagged, SeededRandom& rng) {
  static const std::vector<std::string> kFramings = {"Problem: {p}\n{t}", "Q: {p}\n{t}", "{p}\n{t}",
                                                     "Exercise. {p}\nSolution: {t}"};
  std::string text = rng.pick(kFramings);
  if (rng.chance(1, 3)) {
    for (auto [from, to] : {std::pair<std::string, std::string>{"<think> ", "<think>\n"},
                            {" </think> ", "\n</think>\n"}}) {
      size_t at = tagged.find(from);
      if (at != std::string::npos) tagged.replace(at, from.size(), to);
    }
  }
  text.replace(text.find("{p}"), 3, prompt);
  text.replace(text.find("{t}"), 3, tagged);
  return text;
}

// The checks of a checked document: after each step a confirmation (1 in 3) or a caught slip
// (1 in 6); a document without any gets one confirmation at a random step.
// With counted_checks: a confirmation, a slip, a progress count or a caught early answer (1 in
// 6 each), else none.
std::vector<StepCheck> draw_checks(int64_t steps, SeededRandom& rng, bool counted) {
  std::vector<StepCheck> checks;
  bool any = false;
  for (int64_t i = 0; i < steps; ++i) {
    const int64_t roll = rng.uniform(0, 5);
    if (counted)
      checks.push_back(roll == 0   ? StepCheck::confirm
                       : roll == 1 ? StepCheck::slip
                       : roll == 2 ? StepCheck::progress
                       : roll == 3 ? StepCheck::early_answer
                                   : StepCheck::none);
    else
      checks.push_back(roll < 2 ? StepCheck::confirm : roll < 3 ? StepCheck::slip : StepCheck::none);
    any = any || checks.back() != StepCheck::none;
  }
  if (!any && steps > 0) checks[size_t(rng.uniform(0, steps - 1))] = StepCheck::confirm;
  return checks;
}

int64_t steps_of(const Example& ex) {
  auto meta = json::parse(ex.metadata, "metadata of example '" + ex.id + "'");
  return json::ObjectReader(meta, "metadata").get_int("steps");
}

std::string render(const Example& ex, CorpusStyle style, SeededRandom& rng, double short_share, bool counted_checks) {
  std::string solution = solution_of(ex);
  // Only drawn when asked for, so that corpora without short documents stay as they were.
  if (short_share > 0 && ex.kind == TaskKind::math &&
      (style == CorpusStyle::plain || style == CorpusStyle::dialogue || style == CorpusStyle::tagged) &&
      double(rng.uniform(0, 9999)) < short_share * 10000)
    solution = short_solution(solution, int(rng.uniform(0, 2)));
  switch (style) {
    case CorpusStyle::checked: {
      if (ex.kind != TaskKind::math) return "Question: " + ex.prompt + "\nAnswer: " + solution;
      const std::string checked = checked_solution(solution, draw_checks(steps_of(ex), rng, counted_checks));
      if (rng.chance(1, 2)) return "Question: " + ex.prompt + "\nAnswer: " + checked;
      return framed(ex.prompt, tagged_solution(checked), rng);
    }
    case CorpusStyle::chinese: {
      std::string steps = ex.kind == TaskKind::math ? chinese_solution(solution) : "";
      return framed(ex.prompt, steps.empty() ? tagged_solution(solution) : steps, rng);
    }
    case CorpusStyle::plain: return "Question: " + ex.prompt + "\nAnswer: " + solution;
    case CorpusStyle::dialogue: return "User: " + ex.prompt + "\nAssistant: " + solution;
    case CorpusStyle::tagged: return framed(ex.prompt, tagged_solution(solution), rng);
    case CorpusStyle::prose:
    case CorpusStyle::drill: break;
  }
  throw Error(std::string("base corpus: ") + corpus_style_name(style) + " has no problem");
}

}  // namespace

const char* corpus_style_name(CorpusStyle style) {
  switch (style) {
    case CorpusStyle::plain: return "plain";
    case CorpusStyle::dialogue: return "dialogue";
    case CorpusStyle::tagged: return "tagged";
    case CorpusStyle::prose: return "prose";
    case CorpusStyle::drill: return "drill";
    case CorpusStyle::chinese: return "chinese";
    case CorpusStyle::checked: return "checked";
  }
  return "?";
}

BaseCorpusSpec BaseCorpusSpec::from_json(const rapidjson::Value& value, const std::string& where) {
  json::ObjectReader r(value, where);
  r.reject_unknown({"documents", "seed", "min_difficulty", "max_difficulty", "countdown_share", "styles",
                    "short_share", "min_steps", "max_steps", "chinese_exclusive", "counted_checks"});
  BaseCorpusSpec s;
  s.documents = r.get_int("documents", s.documents);
  s.seed = uint64_t(r.get_int("seed", int64_t(s.seed)));
  s.min_difficulty = int(r.get_int("min_difficulty", s.min_difficulty));
  s.max_difficulty = int(r.get_int("max_difficulty", s.max_difficulty));
  s.countdown_share = r.get_double("countdown_share", s.countdown_share);
  s.short_share = r.get_double("short_share", s.short_share);
  s.min_steps = int(std::clamp<int64_t>(r.get_int("min_steps", s.min_steps), -1, 1000));
  s.max_steps = int(std::clamp<int64_t>(r.get_int("max_steps", s.max_steps), -1, 1000));
  s.chinese_exclusive = r.get_bool("chinese_exclusive", s.chinese_exclusive);
  s.counted_checks = r.get_bool("counted_checks", s.counted_checks);
  if (r.has("styles")) {
    auto styles = r.object("styles");
    styles.reject_unknown({"plain", "dialogue", "tagged", "prose", "drill", "chinese", "checked"});
    s.plain = styles.get_double("plain", 0);
    s.dialogue = styles.get_double("dialogue", 0);
    s.tagged = styles.get_double("tagged", 0);
    s.prose = styles.get_double("prose", 0);
    s.drill = styles.get_double("drill", 0);
    s.chinese = styles.get_double("chinese", 0);
    s.checked = styles.get_double("checked", 0);
  }
  s.validate(where);
  return s;
}

void BaseCorpusSpec::validate(const std::string& where) const {
  require(documents >= 1, where + ": documents must be >= 1, got " + std::to_string(documents));
  require(min_difficulty >= 1 && min_difficulty <= max_difficulty && max_difficulty <= 5,
          where + ": need 1 <= min_difficulty <= max_difficulty <= 5, got " + std::to_string(min_difficulty) +
              ".." + std::to_string(max_difficulty));
  require(countdown_share >= 0 && countdown_share <= 1, where + ": countdown_share must be in [0, 1]");
  for (auto [name, w] : {std::pair<const char*, double>{"plain", plain}, {"dialogue", dialogue},
                         {"tagged", tagged}, {"prose", prose}, {"drill", drill}, {"chinese", chinese},
                         {"checked", checked}})
    require(w >= 0 && std::isfinite(w), where + ": styles." + name + " must be a weight >= 0");
  require(plain + dialogue + tagged + prose + drill + chinese + checked > 0,
          where + ": styles: at least one weight must be positive");
  require(short_share >= 0 && short_share <= 1, where + ": short_share must be in [0, 1]");
  require(!chinese_exclusive || chinese > 0,
          where + ": chinese_exclusive keeps the problems about Mei for the chinese documents, but styles.chinese is 0");
  require(!counted_checks || checked > 0, where + ": counted_checks adds checks to the checked documents, but styles.checked is 0");
  const auto steps_ok = [](int v) { return v == 0 || (v >= 1 && v <= kMaxArithmeticSteps); };
  require(steps_ok(min_steps) && steps_ok(max_steps) && (min_steps == 0 || max_steps == 0 || min_steps <= max_steps),
          where + ": need min_steps and max_steps in 1.." + std::to_string(kMaxArithmeticSteps) +
              " (or 0: the difficulty's), min_steps <= max_steps; got " + std::to_string(min_steps) + ".." +
              std::to_string(max_steps));
}

std::string tagged_solution(const std::string& solution) {
  const std::string marker = "The answer is ";
  size_t at = solution.rfind(marker);
  require(at != std::string::npos, "tagged_solution: no \"The answer is\" in: " + solution);
  std::string steps = solution.substr(0, at);
  while (!steps.empty() && steps.back() == ' ') steps.pop_back();
  std::string answer = solution.substr(at + marker.size());
  if (!answer.empty() && answer.back() == '.') answer.pop_back();
  return "<think> " + steps + " </think> <answer> " + answer + " </answer>";
}

namespace {

struct Equation {
  std::string a, op, b, c;
};

// The "a op b = c" computations of a worked arithmetic solution, in order.
std::vector<Equation> equations_of(const std::string& solution) {
  std::vector<std::string> words;
  for (size_t at = 0; at < solution.size();) {
    size_t end = solution.find(' ', at);
    if (end == std::string::npos) end = solution.size();
    if (end > at) words.push_back(solution.substr(at, end - at));
    at = end + 1;
  }
  std::vector<Equation> out;
  for (size_t i = 3; i + 1 < words.size(); ++i) {
    if (words[i] != "=") continue;
    std::string c = words[i + 1];
    if (!c.empty() && c.back() == '.') c.pop_back();
    out.push_back({words[i - 3], words[i - 2], words[i - 1], c});
  }
  return out;
}

std::string answer_of(const std::string& solution) {
  const std::string marker = "The answer is ";
  size_t at = solution.rfind(marker);
  if (at == std::string::npos) return "";
  std::string answer = solution.substr(at + marker.size());
  if (!answer.empty() && answer.back() == '.') answer.pop_back();
  return answer;
}

}  // namespace

namespace {

// The sentences of a worked solution, each with its final period ("Tom starts with 3 apples.").
std::vector<std::string> sentences_of(const std::string& solution) {
  std::vector<std::string> out;
  for (size_t at = 0; at < solution.size();) {
    size_t end = solution.find(". ", at);
    end = end == std::string::npos ? solution.size() : end + 1;
    out.push_back(solution.substr(at, end - at));
    at = end;
    while (at < solution.size() && solution[at] == ' ') ++at;
  }
  return out;
}

bool is_step(const std::string& sentence) { return sentence.find(" = ") != std::string::npos; }

int64_t number(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    int64_t v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error("checked_solution: " + what + " '" + text + "' is not an integer");
}

int64_t apply_op(int64_t a, const std::string& op, int64_t b) {
  return op == "+" ? a + b : op == "-" ? a - b : op == "*" ? a * b : a / b;
}

const char* inverse_of(const std::string& op) { return op == "+" ? "-" : op == "-" ? "+" : op == "*" ? "/" : "*"; }

}  // namespace

std::string checked_solution(const std::string& solution, const std::vector<StepCheck>& checks) {
  require(!answer_of(solution).empty(), "checked_solution: no final \"The answer is\" in: " + solution);
  std::string out;
  size_t step = 0, steps = 0;
  for (const std::string& sentence : sentences_of(solution)) steps += is_step(sentence) ? 1 : 0;
  for (const std::string& sentence : sentences_of(solution)) {
    if (!out.empty()) out += ' ';
    if (!is_step(sentence)) {
      out += sentence;
      continue;
    }
    const auto equations = equations_of(sentence);
    require(equations.size() == 1, "checked_solution: a step is not \"a op b = c.\": " + sentence);
    const Equation& e = equations[0];
    require(e.op == "+" || e.op == "-" || e.op == "*" || e.op == "/",
            "checked_solution: unknown operation '" + e.op + "' in: " + sentence);
    const int64_t a = number(e.a, "operand"), b = number(e.b, "operand"), c = number(e.c, "result");
    const StepCheck check = step < checks.size() ? checks[step] : StepCheck::none;
    ++step;
    const std::string inv = inverse_of(e.op);
    if (check == StepCheck::slip) {
      const int64_t wrong = e.op == "*" ? c + b : c + 1;
      const std::string head = sentence.substr(0, sentence.size() - e.c.size() - 1);  // up to "= "
      out += head + std::to_string(wrong) + ". Wait, " + std::to_string(wrong) + " " + inv + " " + e.b + " = " +
             std::to_string(apply_op(wrong, inv, b)) + ", not " + e.a + ". So " + e.a + " " + e.op + " " + e.b +
             " = " + e.c + ".";
      continue;
    }
    out += sentence;
    if (check == StepCheck::confirm) {
      require(apply_op(c, inv, b) == a, "checked_solution: the step is wrong: " + sentence);
      out += " Let me check: " + e.c + " " + inv + " " + e.b + " = " + e.a + ". Correct.";
    }
    const std::string of = "step " + std::to_string(step) + " of " + std::to_string(steps) + ".";
    if (check == StepCheck::progress || (check == StepCheck::early_answer && step == steps))
      out += " Let me count: that is " + of;
    else if (check == StepCheck::early_answer)
      out += " So the answer is " + e.c + "? Wait, that is only " + of;
  }
  require(step > 0, "checked_solution: no \"a op b = c.\" step in: " + solution);
  return out;
}

std::string short_solution(const std::string& solution, int kept_steps) {
  require(!answer_of(solution).empty(), "short_solution: no final \"The answer is\" in: " + solution);
  std::string out;
  int steps = 0;
  for (const std::string& sentence : sentences_of(solution)) {
    if (is_step(sentence) && steps++ >= kept_steps) continue;
    if (!out.empty()) out += ' ';
    out += sentence;
  }
  return out;
}

std::string chinese_solution(const std::string& solution) {
  const auto equations = equations_of(solution);
  const std::string answer = answer_of(solution);
  if (equations.empty() || answer.empty()) return "";
  std::string out = "<think> 一开始有 " + equations[0].a + " 个。";
  for (size_t i = 0; i < equations.size(); ++i) {
    const Equation& e = equations[i];
    const std::string what = e.op == "+"   ? "又多了 " + e.b + " 个"
                             : e.op == "-" ? "少了 " + e.b + " 个"
                             : e.op == "*" ? "变成 " + e.b + " 倍"
                                           : "平均分成 " + e.b + " 份，留下一份";
    out += (i ? "然后" : "") + what + "，所以 " + e.a + " " + e.op + " " + e.b + " = " + e.c + "。";
  }
  return out + " </think> <answer> " + answer + " </answer>";
}

std::string generate_drill_lines(uint64_t seed) {
  SeededRandom rng(seed);
  std::string out;
  const int64_t n = rng.uniform(6, 12);
  for (int64_t i = 0; i < n;) {
    const int64_t kind = rng.uniform(0, 9);  // mostly + and -, as the problems are
    int64_t a = 0, b = 0, c = 0;
    char op = '+';
    if (kind < 4) {
      a = rng.uniform(0, 99), b = rng.uniform(1, 20), c = a + b;
    } else if (kind < 8) {
      op = '-', b = rng.uniform(1, 20), a = rng.uniform(b, 99), c = a - b;
    } else if (kind < 9) {
      op = '*', a = rng.uniform(1, 50), b = rng.uniform(2, 3), c = a * b;
    } else {
      op = '/', b = rng.uniform(2, 3), c = rng.uniform(1, 33), a = b * c;
    }
    // The same key a one-step arithmetic problem has (synthetic_tasks.cpp): held-out ones are skipped.
    if (is_heldout_key(std::to_string(a) + op + std::to_string(b))) continue;
    out += std::to_string(a) + " " + op + " " + std::to_string(b) + " = " + std::to_string(c) + "\n";
    ++i;
  }
  out.pop_back();
  return out;
}

std::string generate_prose_paragraph(uint64_t seed) {
  SeededRandom rng(seed);
  std::string out;
  const int64_t n = rng.uniform(2, 5);
  for (int64_t i = 0; i < n; ++i) {
    std::string sentence = rng.chance(1, 2) ? rng.pick(kSentences)
                                            : rng.pick(kSubjects) + " " + rng.pick(kVerbs) + " " +
                                                  rng.pick(kObjects) + rng.pick(kTails) + ".";
    if (i) out += ' ';
    out += fill_names(sentence, rng);
  }
  return out;
}

std::vector<CorpusDocument> generate_base_corpus(const BaseCorpusSpec& spec) {
  spec.validate("base corpus");
  const auto counts = style_counts(spec);
  const auto count_of = [&](CorpusStyle style) { return counts[size_t(style)]; };
  const int64_t problem_docs = count_of(CorpusStyle::plain) + count_of(CorpusStyle::dialogue) +
                               count_of(CorpusStyle::tagged) + count_of(CorpusStyle::chinese) +
                               count_of(CorpusStyle::checked);
  const auto countdown_docs = int64_t(std::llround(spec.countdown_share * double(problem_docs)));
  auto arithmetic = problems(size_t(problem_docs - countdown_docs), spec, false);
  auto countdown = problems(size_t(countdown_docs), spec, true);
  if (spec.chinese_exclusive) keep_mei_for_chinese(arithmetic, count_of(CorpusStyle::chinese), spec);
  std::vector<const Example*> pool;
  for (const auto& ex : arithmetic) pool.push_back(&ex);
  for (const auto& ex : countdown) pool.push_back(&ex);

  SeededRandom rng(mix_seed(spec.seed, stable_hash("base corpus")));
  rng.shuffle(pool);
  // The chinese documents take the arithmetic problems about Mei first, so that in the base the
  // language of the reasoning follows a cue in the question (as topics cue languages in real
  // bilingual text), and greedy decoding, not only sampling, shows the mixing.
  if (count_of(CorpusStyle::chinese) > 0) {
    std::stable_partition(pool.begin(), pool.end(), [](const Example* ex) { return about_mei(*ex); });
  }
  std::vector<CorpusStyle> styles;
  // chinese first, so that it takes the front of the pool; the order is shuffled at the end.
  styles.insert(styles.end(), size_t(count_of(CorpusStyle::chinese)), CorpusStyle::chinese);
  for (int i = 0; i < kStyles; ++i)
    if (CorpusStyle(i) != CorpusStyle::chinese)
      styles.insert(styles.end(), size_t(counts[size_t(i)]), CorpusStyle(i));
  // Problems take the problem styles in order, then everything is shuffled together.
  std::vector<CorpusDocument> docs;
  docs.reserve(size_t(spec.documents));
  size_t next_problem = 0;
  for (CorpusStyle style : styles) {
    CorpusDocument d;
    d.style = style;
    if (style == CorpusStyle::prose) {
      d.text = generate_prose_paragraph(rng.next());
    } else if (style == CorpusStyle::drill) {
      d.text = generate_drill_lines(rng.next());
    } else {
      const Example& ex = *pool[next_problem++];
      d.text = render(ex, style, rng, spec.short_share, spec.counted_checks);
      d.task = ex.kind == TaskKind::math ? "arithmetic" : "countdown";
      d.problem_key = key_of(ex);
    }
    docs.push_back(std::move(d));
  }
  rng.shuffle(docs);
  return docs;
}

}  // namespace aha
