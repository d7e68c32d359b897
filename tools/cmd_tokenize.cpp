// `aha tokenize`: shows how a model's tokenizer cuts text, or decodes ids.
//
//   aha tokenize --model DIR "text"          one line per token: id, then the piece
//   aha tokenize --model DIR --file F        the text of file F, byte for byte
//   aha tokenize --model DIR -               the text of standard input (also --file -)
//   aha tokenize --model DIR --json "text"   {"ids": [...], "pieces": [...]}
//   aha tokenize --model DIR --decode 1 2 3  the text of the ids ({"text": ...} with --json)
//
// DIR holds tokenizer.json (or vocab.json + merges.txt), and tokenizer_config.json if any.
// --no-special-tokens leaves out the post-processor's tokens (e.g. Llama 3's BOS);
// --skip-special drops special tokens when decoding.
#include <charconv>
#include <iostream>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/standard_input.h"
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

// The most text read from a file or standard input: it is held in memory with its ids, and a
// larger input is far more likely a mistake (a disk image, `yes |`) than a text to inspect.
constexpr size_t kMaxTextBytes = size_t{256} << 20;

// The text to encode: the argument, --file F, or standard input (`-` or --file -), exactly one.
std::string input_text(const cli::Args& args) {
  const auto file = args.get("file");
  const size_t sources = args.positional().size() + (file ? 1 : 0);
  if (sources != 1)
    throw cli::UsageError("give the text in exactly one way: as one argument (quote it), with --file F, or on "
                          "standard input with - (got " + std::to_string(sources) + ")");
  const std::string& source = file ? *file : args.positional()[0];
  if (source == "-") return read_standard_input(kMaxTextBytes);
  return file ? read_file(*file, kMaxTextBytes) : source;
}

int run_tokenize(const cli::Args& args) {
  const std::string model = args.required("model");
  bool as_json = args.flag("json");
  if (args.flag("decode") && (!args.positional().empty() || args.get("file")))
    throw cli::UsageError("give either text (an argument, --file or -) or --decode ids, not both");
  const std::string text = args.flag("decode") ? std::string() : input_text(args);  // before the tokenizer loads
  Tokenizer tok = Tokenizer::from_dir(model);
  if (args.flag("decode")) {
    std::vector<TokenId> ids = parse_ids(args.list("decode"));
    if (ids.empty()) throw Error("--decode needs at least one id");
    const std::string decoded = tok.decode(ids, args.flag("skip-special"));
    if (as_json) std::cout << "{\"text\": " << quoted(utf8::lossy(decoded)) << "}\n";
    else std::cout << decoded << "\n";
    return 0;
  }
  std::vector<TokenId> ids = tok.encode(text, !args.flag("no-special-tokens"));
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
     {.usage = "--model DIR (TEXT | --file F | - | --decode ID...) [options]",
      .description =
          "Prints one line per token (the id, then the piece as JSON) for the text given as one argument, read\n"
          "from --file F, or from standard input (- or --file -); files and standard input are read byte for\n"
          "byte (NUL bytes and CRLF kept). With --decode, prints the text of the ids.",
      .options = {{"model", "DIR", "required", "a folder with tokenizer.json (or vocab.json + merges.txt)"},
                  {"file", "F", "", "read the text from file F (- for standard input), at most 256 MiB"},
                  {"json!", "", "", "print {\"ids\": [...], \"pieces\": [...]} (with --decode, {\"text\": ...})"},
                  {"decode*", "ID", "", "decode these token ids instead"},
                  {"no-special-tokens!", "", "", "leave out the post-processor's tokens (e.g. Llama 3's BOS)"},
                  {"skip-special!", "", "", "drop special tokens when decoding"}},
      .max_positional = 1,
      .examples = {"aha tokenize --model models/tiny 'What is 2+3?'",
                   "cat prompt.txt | aha tokenize --model models/tiny --json -"}},
                                          run_tokenize});

}  // namespace
}  // namespace aha
