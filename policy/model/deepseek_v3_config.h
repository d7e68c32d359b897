// The config.json fields of DeepSeek-V3 (model_type "deepseek_v3", DeepseekV3ForCausalLM) that
// the other families do not have: multi-head latent attention (MlaConfig) and DeepSeekMoE
// (DeepseekMoeConfig), read as transformers reads them; values transformers' DeepseekV3 does
// not implement (another scoring function or top-k method, moe_layer_freq != 1) are errors
// naming the key, never ignored. ModelConfig::from_json calls these for deepseek_v3 only.
#pragma once
#include <cstdint>
#include <string>

#include "core/json.h"
#include "policy/model/model_config.h"

namespace aha {

// Reads the MLA and MoE fields into c.mla and c.deepseek_moe and sets c.head_dim to the rotary
// dims (qk_rope_head_dim), as transformers does. Needs c's generic sizes already read.
void read_deepseek_v3_fields(const json::ObjectReader& r, ModelConfig& c, const std::string& source);

// transformers' softmax scale for MLA: qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2
// when the rope scaling is not the default and mscale_all_dim is set (yarn_apply_mscale).
double mla_softmax_scale(const ModelConfig& c);

// All parameters (active = false) or those one token uses (the routed experts it is sent to,
// the shared experts, attention, dense MLPs, embedding and head), as a double so that absurd
// configs can be refused before any int64 product overflows. The routing bias is a buffer and
// is not counted; the multi-token-prediction layer is ignored, so it is not counted either.
double deepseek_v3_parameter_count(const ModelConfig& c, bool active);

}  // namespace aha
