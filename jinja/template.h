// A Jinja template parsed once and rendered many times, as transformers renders chat templates:
// jinja2 with trim_blocks and lstrip_blocks, the globals raise_exception, strftime_now and
// namespace, transformers' tojson, and loop controls (break, continue).
//
// Contract: the output is byte-identical to jinja2's for the supported subset (see parser.h);
// whatever is outside it is an aha::Error at parse time or, for a value of an unsupported type
// met while rendering, at render time, naming the template, the line and the construct. Render
// errors name the line too; raise_exception's message is quoted in the error. Rendering is
// bounded: loops and output size have limits (RenderLimits) that end it with an error.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "jinja/ast.h"
#include "jinja/value.h"

namespace aha::jinja {

struct RenderLimits {
  uint64_t max_loop_iterations = 10'000'000;         // over all loops of one render
  size_t max_output_bytes = size_t{256} << 20;       // also bounds each string built
};

struct RenderOptions {
  RenderLimits limits;
  // strftime_now(format): the local time now, as Python's datetime.now().strftime(format).
  // Replaceable so that tests can fix the date.
  std::function<std::string(const std::string& format)> strftime_now;
};

class Template {
 public:
  // `name` is used in every error ("chat_template (tokenizer_config.json) line 3: ...").
  Template(const std::string& source, std::string name);
  std::string render(const Dict& variables, const RenderOptions& options = {}) const;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const Body> body_;
};

// Python's time.strftime for the local time now (the default strftime_now).
std::string strftime_now_local(const std::string& format);

}  // namespace aha::jinja
