#include "datasets/countdown.h"

#include "core/error.h"
#include "core/exact_fraction.h"

namespace aha {

namespace {

// Exhaustive search over every way of combining two values. Values live in an arena used as a
// stack (a branch's nodes are dropped when it returns); derivation text is built only when a
// value is recorded, which keeps the search cheap enough to run once per generated instance.
class Search {
 public:
  Search(const std::vector<int64_t>& numbers, bool all_numbers) : all_numbers_(all_numbers), total_(numbers.size()) {
    std::vector<Item> items;
    for (int64_t n : numbers) {
      arena_.push_back(SearchNode{Fraction{n, 1}, 0, -1, -1});
      items.push_back(Item{static_cast<int>(arena_.size()) - 1, 1, n > 0});
    }
    run(items);
  }

  std::map<int64_t, CountdownDerivation> take() {
    std::map<int64_t, CountdownDerivation> out;
    for (auto& [value, f] : found_) out.emplace(value, std::move(f.derivation));
    return out;
  }

 private:
  struct SearchNode {
    Fraction value;
    char op;  // 0: a given number
    int left, right;
  };
  struct Item {
    int node;
    size_t numbers_used;
    bool clean;  // every value on the way (this one included) is a positive integer
  };
  struct Found {
    CountdownDerivation derivation;
    bool clean;
  };

  std::string expression(int node) const {
    const SearchNode& n = arena_[node];
    if (n.op == 0) return std::to_string(n.value.num);
    std::string out;
    for (int child : {n.left, n.right}) {
      bool wrap = arena_[child].op != 0;
      if (child == n.right) {
        out += ' ';
        out += n.op;
        out += ' ';
      }
      if (wrap) out += '(';
      out += expression(child);
      if (wrap) out += ')';
    }
    return out;
  }

  void steps(int node, std::vector<std::string>& out) const {
    const SearchNode& n = arena_[node];
    if (n.op == 0) return;
    steps(n.left, out);
    steps(n.right, out);
    out.push_back(arena_[n.left].value.to_string() + " " + n.op + " " + arena_[n.right].value.to_string() + " = " +
                  n.value.to_string());
  }

  // Records integer values (made from all the numbers only, when all_numbers_), keeping the
  // first derivation found unless a later one is clean and it was not, so that solutions read
  // naturally where they can.
  void record(const Item& item) {
    const Fraction& v = arena_[item.node].value;
    if (v.den != 1 || (all_numbers_ && item.numbers_used != total_)) return;
    auto it = found_.find(v.num);
    if (it != found_.end() && (it->second.clean || !item.clean)) return;
    Found f{{expression(item.node), {}}, item.clean};
    steps(item.node, f.derivation.steps);
    if (it == found_.end())
      found_.emplace(v.num, std::move(f));
    else
      it->second = std::move(f);
  }

  void run(const std::vector<Item>& items) {
    for (const Item& item : items) record(item);
    if (items.size() < 2) return;
    std::vector<Item> next;
    for (size_t i = 0; i < items.size(); ++i) {
      for (size_t j = 0; j < items.size(); ++j) {
        if (i == j) continue;
        for (char op : {'+', '-', '*', '/'}) {
          if ((op == '+' || op == '*') && j < i) continue;  // commutative: one order is enough
          Fraction value;
          if (apply_operation(op, arena_[items[i].node].value, arena_[items[j].node].value, value) !=
              FractionError::none)
            continue;
          size_t mark = arena_.size();
          arena_.push_back(SearchNode{value, op, items[i].node, items[j].node});
          next.clear();
          for (size_t k = 0; k < items.size(); ++k)
            if (k != i && k != j) next.push_back(items[k]);
          next.push_back(Item{static_cast<int>(mark), items[i].numbers_used + items[j].numbers_used,
                              items[i].clean && items[j].clean && value.den == 1 && value.num > 0});
          run(next);
          arena_.resize(mark);
        }
      }
    }
    // Subsets of the numbers are covered: every intermediate item is recorded on the way.
  }

  bool all_numbers_;
  size_t total_;
  std::vector<SearchNode> arena_;
  std::map<int64_t, Found> found_;
};

}  // namespace

std::map<int64_t, CountdownDerivation> countdown_reachable_integers(const std::vector<int64_t>& numbers,
                                                                    bool all_numbers) {
  // The search grows like n! * 6^(n-1); past 6 numbers it is too slow to be useful.
  require(numbers.size() <= 6, "countdown search takes at most 6 numbers, got " + std::to_string(numbers.size()));
  return Search(numbers, all_numbers).take();
}

std::optional<CountdownDerivation> solve_countdown(const std::vector<int64_t>& numbers, int64_t target) {
  auto found = countdown_reachable_integers(numbers);
  auto it = found.find(target);
  if (it == found.end()) return std::nullopt;
  return it->second;
}

}  // namespace aha
