#include "tools/data_args.h"

#include "core/error.h"

namespace aha {

DatasetSpec data_spec_from_arg(const std::string& value, const std::string& format) {
  require(!value.empty(), "--data is empty");
  if (value.front() == '{') return parse_dataset_spec(value, "--data " + value);
  DatasetSpec spec;
  spec.path = value;
  spec.jsonl.format = parse_jsonl_format(format);
  return spec;
}

}  // namespace aha
