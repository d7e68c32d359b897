// Loading JSON Lines data sets into Examples, by named format or by field mapping.
//
//   gsm8k      question -> prompt; answer -> gold = the number after the last "####", commas
//              removed; the worked solution (the whole answer text) -> metadata "solution".
//   math       problem -> prompt; gold = the `answer` field if present, else the content of the
//              last \boxed{...} (or \fbox{...}) in `solution`, nested braces included.
//   aime       problem -> prompt; answer (string or integer) -> gold; id from `id`.
//   humaneval  prompt -> prompt; test + entry_point -> tests; task_id -> id. Kind code.
//   mbpp       prompt (or text) -> prompt; test_list (+ test_imports) -> tests; task_id -> id.
//   plain      options.prompt_field -> prompt, options.answer_field -> gold (a string or an
//              integer; may be absent only for kind code); optional `id`, `kind`, `tests`
//              (an object as example_to_json_line writes it). Reads back what
//              example_to_json_line and `aha data generate` write.
//
// Every format: ids come from the record's id field when it has one, else "<file name>:<line>".
// Fields not mapped above go into metadata (a `metadata` object's members are merged in).
// Empty (whitespace-only) lines are skipped; CRLF line ends and a leading UTF-8 BOM are
// accepted. Files and lines have core/text_lines.h's limits (kMaxJsonlFileBytes,
// kMaxJsonlLineBytes); a path that is not a regular file (a directory, FIFO, device) is an error. Errors are aha::Error naming "<file>:<line>" and the field at fault (bad JSON,
// missing field, wrong type, no final answer). Records skipped by every_nth or after limit are
// not parsed.
#pragma once
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "datasets/example.h"

namespace aha {

enum class JsonlFormat { plain, gsm8k, math, aime, humaneval, mbpp };

// Parses "plain", "gsm8k", "math", "aime", "humaneval", "mbpp"; errors list the names.
JsonlFormat parse_jsonl_format(std::string_view name);
const char* jsonl_format_name(JsonlFormat format);

struct JsonlOptions {
  JsonlFormat format = JsonlFormat::plain;
  std::string prompt_field = "prompt";   // plain only
  std::string answer_field = "answer";   // plain only
  TaskKind plain_kind = TaskKind::math;  // plain records without a `kind` field
  size_t every_nth = 1;                  // keep records 0, n, 2n, ... (counting non-empty lines)
  size_t limit = 0;                      // keep at most this many (0: all)
};

// Reads and parses a file; `source` of each example is the path as given.
std::vector<Example> load_jsonl(const std::filesystem::path& path, const JsonlOptions& options);

// Parses JSONL text; `file_name` names it in errors and in ids.
std::vector<Example> parse_jsonl(std::string_view text, const std::string& file_name, const JsonlOptions& options);

// GSM8K's final answer: the text after the last "####", trimmed, with commas removed
// ("#### 1,234" -> "1234"); nullopt without "####" or with nothing after it.
std::optional<std::string> gsm8k_final_answer(std::string_view solution);

// The content of the last \boxed{...} or \fbox{...} in text, nested braces balanced (escaped
// braces \{ \} are content, not nesting); nullopt when there is none or it is unclosed.
std::optional<std::string> last_boxed(std::string_view text);

}  // namespace aha
