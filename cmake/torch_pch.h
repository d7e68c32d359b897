// The precompiled header shared by every target that uses LibTorch: parsing these headers
// dominates compile time, so they are parsed once per build.
#pragma once
#include <torch/torch.h>
