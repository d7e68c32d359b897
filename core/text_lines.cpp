#include "core/text_lines.h"

#include "core/error.h"
#include "core/files.h"

namespace aha {

std::string read_jsonl_file(const std::filesystem::path& path) { return read_file(path, kMaxJsonlFileBytes); }

void for_each_nonblank_line(std::string_view text, const std::string& name,
                            const std::function<bool(std::string_view line, size_t number)>& fn,
                            size_t max_line_bytes) {
  size_t pos = text.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // a UTF-8 byte order mark
  for (size_t number = 1; pos < text.size(); ++number) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const size_t length = end - pos;
    if (length > max_line_bytes) {
      throw Error(name + " line " + std::to_string(number) + " is " + byte_size_text(length) + " long, over the " +
                  byte_size_text(max_line_bytes) + " limit for one line");
    }
    std::string_view line = text.substr(pos, length);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (!fn(line, number)) return;
  }
}

}  // namespace aha
