// `aha tokenize`: shows how a model's tokenizer cuts text, or decodes ids.
//
//   aha tokenize --model DIR "text"          one line per token: id, then the piece
//   aha tokenize --model DIR --json "text"   {"ids": [...], "pieces": [...]}
//   aha tokenize --model DIR --decode 1 2 3  the text of the ids ({"text": ...} with --json)
//
// DIR holds tokenizer.json (or vocab.json + merges.txt), and tokenizer_config.json if any.
// --no-special-tokens leaves out the post-processor's tokens (e.g. Llama 3's BOS);
// --skip-special drops special tokens when decoding.
#include <charconv>
#include <iostream>

#include "core/error.h"
#include "core/json.h"
#include "policy/tokenizer/tokenizer.h"
#include "policy/tokenizer/tokenizer_utf8.h"
#include "tools/cli.h"

namespace aha {
namespace {

std::string quoted(const std::string& text) {
  rapidjson::Value v(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  return json::to_string(v);
}

std::vector<TokenId> parse_ids(const std::vector<std::string>& words) {
  std::vector<TokenId> ids;
  for (const auto& w : words) {
    TokenId id = 0;
    auto [ptr, ec] = std::from_chars(w.data(), w.data() + w.size(), id);
    if (ec != std::errc() || ptr != w.data() + w.size() || id < 0)
      throw Error("--decode expects token ids (non-negative integers), got '" + w + "'");
    ids.push_back(id);
  }
  return ids;
}

int run_tokenize(const std::vector<std::string>& words) {
  cli::Args args(words, {"model", "json!", "decode*", "no-special-tokens!", "skip-special!"}, "tokenize", 1);
  Tokenizer tok = Tokenizer::from_dir(args.required("model"));
  bool as_json = args.flag("json");
  if (args.flag("decode")) {
    if (!args.positional().empty()) throw Error("give either text or --decode ids, not both");
    std::vector<TokenId> ids = parse_ids(args.list("decode"));
    if (ids.empty()) throw Error("--decode needs at least one id");
    std::string text = tok.decode(ids, args.flag("skip-special"));
    if (as_json) std::cout << "{\"text\": " << quoted(utf8::lossy(text)) << "}\n";
    else std::cout << text << "\n";
    return 0;
  }
  if (args.positional().size() != 1)
    throw Error("expected one text argument (quote it), got " + std::to_string(args.positional().size()));
  std::vector<TokenId> ids = tok.encode(args.positional()[0], !args.flag("no-special-tokens"));
  if (as_json) {
    std::string out = "{\"ids\": [";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
    out += "], \"pieces\": [";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + quoted(*tok.id_to_token(ids[i]));
    std::cout << out << "]}\n";
  } else {
    for (TokenId id : ids) std::cout << id << "\t" << quoted(*tok.id_to_token(id)) << "\n";
  }
  return 0;
}

const cli::CommandRegistration kTokenize({"tokenize",
                                          "show a tokenizer's ids and pieces for text (--json), or --decode ids",
                                          run_tokenize});

}  // namespace
}  // namespace aha
