// One `--data` value as `aha eval` and `aha distill` read it: a data set spec when it starts with
// '{' (datasets/dataset_spec.h), else a JSON Lines file read in `format` (--format), so both
// commands take the same data the same way.
#pragma once
#include <string>

#include "datasets/dataset_spec.h"

namespace aha {

// Throws aha::Error naming the value when it is empty or not a valid spec.
DatasetSpec data_spec_from_arg(const std::string& value, const std::string& format);

}  // namespace aha
