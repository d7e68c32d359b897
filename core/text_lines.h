// Line-by-line reading of JSON Lines text, with the limits every JSONL reader applies: a whole
// file at most kMaxJsonlFileBytes, one line at most kMaxJsonlLineBytes. A 50 MB "prompt" line
// is a corrupt or hostile file, not a data set, and downstream work (tokenising, decoding) is
// not linear in it; the limits turn it into an error naming the file, the line and the limit.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace aha {

constexpr size_t kMaxJsonlLineBytes = size_t{8} << 20;  // 8 MiB: the largest real records are ~100 KB
constexpr size_t kMaxJsonlFileBytes = size_t{2} << 30;  // 2 GiB, held in memory with its parse

// read_file with the JSONL file limit.
std::string read_jsonl_file(const std::filesystem::path& path);

// Calls fn(line, number) for each line of text that is not blank (spaces, tabs, a CR); number
// counts from 1 over every line. A leading UTF-8 byte order mark is skipped and a trailing
// "\r" stays in the line (JSON treats it as space). Stops early when fn returns false. A line
// longer than max_line_bytes throws aha::Error "<name> line <n>: ... limit ..." before fn sees it.
void for_each_nonblank_line(std::string_view text, const std::string& name,
                            const std::function<bool(std::string_view line, size_t number)>& fn,
                            size_t max_line_bytes = kMaxJsonlLineBytes);

}  // namespace aha
