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

constexpr int kStyles = 6;

// Style counts by largest remainder of weight / total * documents, ties to the earlier style.
std::vector<int64_t> style_counts(const BaseCorpusSpec& s) {
  const double w[kStyles] = {s.plain, s.dialogue, s.tagged, s.prose, s.drill, s.chinese};
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
      auto part = countdown ? generate_countdown(k, seed, CountdownConfig::for_difficulty(d), Split::train)
                            : generate_arithmetic(k, seed, ArithmeticConfig::for_difficulty(d), Split::train);
      for (auto& ex : part) out.push_back(std::move(ex));
      want -= k;
    }
  }
  return out;
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

std::string render(const Example& ex, CorpusStyle style, SeededRandom& rng) {
  const std::string solution = solution_of(ex);
  switch (style) {
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
  }
  return "?";
}

BaseCorpusSpec BaseCorpusSpec::from_json(const rapidjson::Value& value, const std::string& where) {
  json::ObjectReader r(value, where);
  r.reject_unknown({"documents", "seed", "min_difficulty", "max_difficulty", "countdown_share", "styles"});
  BaseCorpusSpec s;
  s.documents = r.get_int("documents", s.documents);
  s.seed = uint64_t(r.get_int("seed", int64_t(s.seed)));
  s.min_difficulty = int(r.get_int("min_difficulty", s.min_difficulty));
  s.max_difficulty = int(r.get_int("max_difficulty", s.max_difficulty));
  s.countdown_share = r.get_double("countdown_share", s.countdown_share);
  if (r.has("styles")) {
    auto styles = r.object("styles");
    styles.reject_unknown({"plain", "dialogue", "tagged", "prose", "drill", "chinese"});
    s.plain = styles.get_double("plain", 0);
    s.dialogue = styles.get_double("dialogue", 0);
    s.tagged = styles.get_double("tagged", 0);
    s.prose = styles.get_double("prose", 0);
    s.drill = styles.get_double("drill", 0);
    s.chinese = styles.get_double("chinese", 0);
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
                         {"tagged", tagged}, {"prose", prose}, {"drill", drill}, {"chinese", chinese}})
    require(w >= 0 && std::isfinite(w), where + ": styles." + name + " must be a weight >= 0");
  require(plain + dialogue + tagged + prose + drill + chinese > 0, where + ": styles: at least one weight must be positive");
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
                               count_of(CorpusStyle::tagged) + count_of(CorpusStyle::chinese);
  const auto countdown_docs = int64_t(std::llround(spec.countdown_share * double(problem_docs)));
  auto arithmetic = problems(size_t(problem_docs - countdown_docs), spec, false);
  auto countdown = problems(size_t(countdown_docs), spec, true);
  std::vector<const Example*> pool;
  for (const auto& ex : arithmetic) pool.push_back(&ex);
  for (const auto& ex : countdown) pool.push_back(&ex);

  SeededRandom rng(mix_seed(spec.seed, stable_hash("base corpus")));
  rng.shuffle(pool);
  // The chinese documents take the arithmetic problems about Mei first, so that in the base the
  // language of the reasoning follows a cue in the question (as topics cue languages in real
  // bilingual text), and greedy decoding, not only sampling, shows the mixing.
  if (count_of(CorpusStyle::chinese) > 0) {
    std::stable_partition(pool.begin(), pool.end(), [](const Example* ex) {
      return ex->kind == TaskKind::math && ex->prompt.starts_with("Mei ");
    });
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
      d.text = render(ex, style, rng);
      d.task = ex.kind == TaskKind::math ? "arithmetic" : "countdown";
      d.problem_key = key_of(ex);
    }
    docs.push_back(std::move(d));
  }
  rng.shuffle(docs);
  return docs;
}

}  // namespace aha
