// The decoder-only transformer of Qwen2, Llama, Qwen3, Qwen3-MoE and DeepSeek-V3 checkpoints,
// in plain LibTorch tensors: token embedding, N x (RMSNorm -> grouped-query attention with
// rotary embeddings (Qwen3: RMSNorm on each q and k head first; DeepSeek-V3: multi-head latent
// attention, mla_attention.h) -> residual, RMSNorm -> feed-forward -> residual), final RMSNorm,
// tied or separate LM head. Each layer's feed-forward is either the dense SwiGLU MLP or, in the
// MoE layers of ModelConfig::is_moe_layer, a router and routed experts (moe_routing.h, moe.h;
// DeepSeekMoE's gate and shared experts in deepseek_moe.h).
//
// Numerics follow Hugging Face transformers op for op (RMSNorm in float32, rotary tables in
// float32 cast to the model dtype, scaled_dot_product_attention), so that logits agree with
// the reference. Weights are ordinary tensors named as in the HF checkpoint; the learner
// trains them in place and the rollout engine reads the same tensors (no copy per step; under
// ZeRO-3 the parameters are sharded and the rollout reads a copy: policy/learner/fully_sharded.h).
#pragma once
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "policy/model/deepseek_moe.h"
#include "policy/model/mla_attention.h"
#include "policy/model/model_config.h"
#include "policy/model/varlen_attention.h"
#include "policy/model/weight_memory.h"

namespace aha {

enum class MlpKind { dense, moe };

struct DecoderLayerWeights {
  torch::Tensor input_norm, post_attention_norm;       // [H]
  torch::Tensor q_weight, k_weight, v_weight, o_weight;  // [out, in]
  torch::Tensor q_bias, k_bias, v_bias, o_bias;          // undefined when the config has none
  torch::Tensor q_norm, k_norm;                          // [head_dim], Qwen3 only
  MlpKind mlp = MlpKind::dense;
  // Dense layers (undefined in MoE layers):
  torch::Tensor gate_weight, up_weight, down_weight;
  torch::Tensor gate_bias, up_bias, down_bias;
  // MoE layers (undefined in dense ones): the router and the routed experts, stacked as
  // transformers 5 stacks them (checkpoints name them per expert; see checkpoint_tensors()).
  torch::Tensor router_weight;    // [E, H] (float32 for deepseek_v3, as transformers keeps its gate)
  torch::Tensor experts_gate_up;  // [E, 2I, H], each expert's gate rows then up rows
  torch::Tensor experts_down;     // [E, H, I]
  DeepseekMoeWeights deepseek_moe;  // deepseek_v3 MoE layers: the routing bias and shared experts
  MlaWeights mla;                   // deepseek_v3: the attention (q/k/v/o above are then undefined)
};

// Keys and values of past tokens for incremental decoding: per layer one
// [B, kv_heads, capacity, head_dim] tensor each. The rollout engine plans, allocates, shares
// and compacts caches; the transformer only writes and reads slots of them.
// For multi-head latent attention (deepseek_v3) the cache is DeepSeek's compressed one: keys
// holds the normalised latent [B, 1, capacity, kv_lora_rank] and values the rotated rope key
// [B, 1, capacity, qk_rope_head_dim], so kv_lora_rank + qk_rope_head_dim values per token and
// layer (mla_attention.h); rows, slots and capacity mean the same as for the other models.
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  // Optional [B] int64 on the cache's device: no slot below first_slots[b] is row b's, and a
  // cached forward never attends to one (as if key_mask were false there). The CUDA decode
  // attention kernel does not even read them (whole tiles below it are skipped), so a row placed
  // late into a running batch (the rollout's continuous batching) costs its own context, not the
  // oldest row's; the other paths only mask. Read on the device, so a captured CUDA graph follows
  // changes made in place.
  torch::Tensor first_slots;

  static KVCache allocate(const ModelConfig& config, int64_t batch, int64_t capacity, torch::ScalarType dtype,
                          torch::Device device);
  int64_t batch() const { return keys.empty() ? 0 : keys[0].size(0); }
  int64_t capacity() const { return keys.empty() ? 0 : keys[0].size(2); }
  // A new cache holding the given rows (int64 indices; repeats allowed): compaction, and one
  // prompt's cache shared by its G samples.
  KVCache select_rows(const torch::Tensor& rows) const;
};

// Inference-only copies of each layer's projections concatenated, [q; k; v] and [gate; up]
// (rows in that order; gate/up undefined in MoE layers; none at all for MLA), so that a cached forward runs one matrix product for each group
// instead of three and two: the same products, so the same results. They are copies: after
// the weights change (an optimizer step), Transformer::refresh() must run before they are
// used again. Biases are undefined where the config has none.
struct FusedProjections {
  std::vector<torch::Tensor> qkv_weight, qkv_bias, gate_up_weight, gate_up_bias;  // per layer
  bool empty() const { return qkv_weight.empty(); }
};

// Hooks around each block of a training forward, for fully sharded parameters (ZeRO-3,
// policy/learner/fully_sharded.h): enter() makes the block's weights present before it runs and
// leave() may free them after (and arrange, through an autograd node on its output, that
// backward makes them present again before the block's backward). Blocks: 0 the token
// embedding, 1..L the decoder layers, L + 1 the final norm, L + 2 the untied LM head (a tied
// head is block 0 again); Transformer::head_block() says which. hidden_states() and
// token_logprobs() call them; a caller that applies the LM head itself (lm_head_weight(),
// logits()) brackets that use with head_block(). The rollout's cached forward never calls them.
class BlockHooks {
 public:
  virtual ~BlockHooks() = default;
  // `x`: the block's input (undefined for the embedding); returns what the block should read.
  virtual torch::Tensor enter(size_t block, const torch::Tensor& x) = 0;
  // `y`: the block's output; returns what the next block should read. backward_needs_weights:
  // false where the block's backward reads no weight (the embedding lookup).
  virtual torch::Tensor leave(size_t block, const torch::Tensor& y, bool backward_needs_weights) = 0;
};

class Transformer {
 public:
  // Allocates weights (uninitialised) of `dtype` on `device`; WeightMemory::none gives the
  // parameters no memory (weight_memory.h: ZeRO-3's sharded load), the buffers still have theirs.
  Transformer(ModelConfig config, torch::ScalarType dtype, torch::Device device,
              WeightMemory memory = WeightMemory::allocated);

  const ModelConfig& config() const { return config_; }
  torch::ScalarType dtype() const { return dtype_; }
  torch::Device device() const { return device_; }

  // Parameters with their names, in checkpoint order. The LM head is listed only when it is
  // not tied to the embedding. Names are the checkpoint's except for the stacked experts of
  // MoE layers, named as transformers 5's parameters ("mlp.experts.gate_up_proj",
  // "mlp.experts.down_proj").
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;
  // The tensors as a Hugging Face checkpoint names them: named_parameters() with each stacked
  // expert tensor replaced by views of it per expert ("mlp.experts.{e}.gate_proj.weight",
  // ".up_proj.weight", ".down_proj.weight": the hub layout, which transformers' save_pretrained
  // writes), unless fused_experts keeps transformers 5's stacked names. The views share the
  // weights' storage: loading copies into them, saving reads them.
  // They are followed by the buffers (named_buffers()).
  std::vector<std::pair<std::string, torch::Tensor>> checkpoint_tensors(bool fused_experts = false) const;
  // Where each of checkpoint_tensors() lies, from the shapes alone (so also for weights without
  // memory): `tensor` indexes named_parameters() followed by named_buffers(), and the checkpoint
  // tensor is the contiguous elements [offset, offset + numel of shape) of it, flattened.
  struct CheckpointSlot {
    std::string name;
    size_t tensor = 0;
    int64_t offset = 0;
    std::vector<int64_t> shape;
  };
  std::vector<CheckpointSlot> checkpoint_layout(bool fused_experts = false) const;
  std::vector<torch::Tensor> parameters() const;
  // Tensors of the checkpoint that are not trained and not in parameters(): DeepSeek-V3's
  // routing bias e_score_correction_bias, frozen during RL. Loaded and saved with the rest.
  std::vector<std::pair<std::string, torch::Tensor>> named_buffers() const;
  const torch::Tensor& lm_head_weight() const { return tied() ? embed_ : lm_head_; }
  bool tied() const { return config_.tie_word_embeddings; }

  // Final-norm hidden states [B, T, H].
  //   input_ids      [B, T] int64
  //   attention_mask [B, T] (1 real token, 0 padding) or undefined for no padding
  //   positions      [B, T] int64 or undefined: then cumsum(mask) - 1 (left padding) or 0..T-1
  //   segment_ids    [B, T] int64 or undefined: several sequences packed in one row (SFT
  //                  packing); a token attends only to earlier tokens of its own segment, 0 is
  //                  padding (attention_mask is then ignored); needs positions (each
  //                  segment's from 0), so a packed row computes what its sequences alone would.
  //                  Where varlen_attention_supported() holds (CUDA, bf16/fp16 or autocast) and
  //                  the attention is not MLA, the segments go to the variable-length flash
  //                  kernel (varlen_attention.h) without any [T, T] mask; elsewhere (the CPU)
  //                  a block-diagonal causal mask.
  //   router_logits  when given, receives each MoE layer's router logits [B*T, E] (model dtype,
  //                  differentiable), in layer order, for the auxiliary loss (moe_routing.h).
  //                  With activation checkpointing they are outputs of the recomputed layer:
  //                  their gradient reaches the router as without it.
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                              const torch::Tensor& positions = {}, const torch::Tensor& segment_ids = {},
                              std::vector<torch::Tensor>* router_logits = nullptr) const;

  // Activation checkpointing for training: when on and grad mode is enabled, hidden_states()
  // keeps only each decoder layer's input and recomputes the layer during backward (under the
  // CUDA autocast state of the forward). As PyTorch's reentrant checkpoint, the recompute
  // accumulates weight gradients into their .grad directly: use loss.backward(), not
  // torch::autograd::grad(), with it on.
  void set_activation_checkpointing(bool on) { checkpoint_layers_ = on; }

  // Block hooks (see BlockHooks; null: none). Not owned; must outlive their use.
  void set_block_hooks(BlockHooks* hooks) { block_hooks_ = hooks; }
  BlockHooks* block_hooks() const { return block_hooks_; }
  // Expert parallelism (moe.h's ExpertDispatch; null: none): every forward's MoE layers send
  // their routed experts' work through it, so every forward is then collective, and their
  // expert tensors hold only this rank's slice (the rollout samples from a whole copy). Not
  // owned; must outlive its use.
  void set_expert_dispatch(const ExpertDispatch* dispatch) { expert_dispatch_ = dispatch; }
  const ExpertDispatch* expert_dispatch() const { return expert_dispatch_; }
  size_t head_block() const { return tied() ? 0 : layers_.size() + 2; }
  size_t block_count() const { return layers_.size() + (tied() ? 2 : 3); }
  bool activation_checkpointing() const { return checkpoint_layers_; }

  // Logits [..., V] in the model dtype (as transformers returns them).
  torch::Tensor logits(const torch::Tensor& hidden) const;

  // Log-probability [B, T-1] (float32) of each token input_ids[:, t+1] given the tokens up to t,
  // at the given sampling temperature, without materialising [B, T, V] (see token_logprobs.h).
  // Differentiable. With entropy != nullptr also fills the per-position entropy [B, T-1].
  torch::Tensor token_logprobs(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                               const torch::Tensor& positions = {}, double temperature = 1.0,
                               torch::Tensor* entropy = nullptr) const;

  // Forward over new tokens with a KV cache (prefill into the cache, or one decode step).
  //   input_ids, positions [B, S]
  //   slots     [S] int64: the cache slots the new tokens take, the same for every row
  //   key_mask  [B, L] bool: the cache slots [0, L) each row may attend to (its real earlier
  //             tokens and the new ones); L <= capacity. A new token also never attends to a
  //             slot after its own.
  // Writes the new keys/values into the cache and returns final-norm hidden states [B, S, H].
  // Every shape depends only on B, S and L, so a decode step can be captured in a CUDA graph.
  // With `fused` (from fuse_projections(), refreshed since the last weight change) the
  // projections use its concatenated copies.
  torch::Tensor hidden_states_cached(const torch::Tensor& input_ids, const torch::Tensor& positions,
                                     const torch::Tensor& slots, const torch::Tensor& key_mask, KVCache& cache,
                                     const FusedProjections* fused = nullptr) const;

  // Decode kernels (policy/cuda_decode.h): on a CUDA device in bf16/fp16, a cached forward of
  // one token per row with fused projections runs fused residual+RMSNorm, SiLU*up and
  // rotary+cache-write kernels instead of the LibTorch ops (same roundings, float32 sums in
  // another order). On by default; off gives the LibTorch path (the CPU path). Models with q/k
  // norms (Qwen3) or MoE layers always take the LibTorch path: the kernels have neither.
  void set_decode_kernels(bool on) { decode_kernels_ = on; }
  // Packed segments through the variable-length kernel where it applies (see hidden_states). On
  // by default; off forces the block-diagonal mask (the reference the CUDA tests compare with).
  void set_varlen_attention(bool on) { varlen_attention_ = on; }
  bool varlen_attention() const { return varlen_attention_; }
  bool decode_kernels() const { return decode_kernels_; }
  // With the decode kernels, the attention is the tensor-core decode attention kernel instead of
  // SDPA: about twice as fast at 0.5B shapes, as close to a float64 attention as SDPA, and its
  // behaviour log-probs as close to a float32 forward, and to the learner's autocast-bf16
  // forward of float32 master weights, as SDPA decoding's (tests/rollout/decode_kernels_test.cpp).
  // On by default. Off (SDPA) only matters for a learner in pure bf16 on short sequences: there
  // SDPA decoding and SDPA teacher forcing run the same cuDNN kernel and agree almost bit for
  // bit, which no other attention implementation does (PyTorch's math SDPA disagrees as much as
  // this kernel).
  void set_decode_attention_kernel(bool on) { decode_attention_kernel_ = on; }
  bool decode_attention_kernel() const { return decode_attention_kernel_; }

  // Allocates the concatenated projection copies and fills them from the current weights.
  FusedProjections fuse_projections() const;
  // Copies the current weights into `fused` in place (its tensors keep their addresses, so
  // CUDA graphs captured over them stay valid).
  void refresh(FusedProjections& fused) const;
  // Bytes fuse_projections() allocates for a model of `config` with `element_size`-byte weights.
  static int64_t fused_projection_bytes(const ModelConfig& config, int64_t element_size);

 private:
  torch::Tensor cached_attention(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& slots, const torch::Tensor& mask,
                                 torch::Tensor& cache_k, torch::Tensor& cache_v, const FusedProjections* fused,
                                 size_t layer) const;
  torch::Tensor fused_mlp(const DecoderLayerWeights& w, const FusedProjections& fused, size_t layer,
                          const torch::Tensor& x) const;
  // [B, 1, S, L] additive (0 / -inf, model dtype) mask of a cached forward: key_mask [B, L], no
  // slot after the query's own (slots [S], on key_mask's device) and, when first_slots [B] is
  // defined, none below the row's first slot.
  torch::Tensor attention_mask(const torch::Tensor& key_mask, const torch::Tensor& slots,
                               const torch::Tensor& first_slots = {}) const;
  // The decode-kernel path (transformer_decode_cuda.cpp): whether it applies, and the step.
  bool uses_decode_kernels(int64_t new_tokens, const FusedProjections* fused) const;
  torch::Tensor decode_step_cuda(const torch::Tensor& input_ids, const torch::Tensor& cos, const torch::Tensor& sin,
                                 const torch::Tensor& slots, const torch::Tensor& key_mask, KVCache& cache,
                                 const FusedProjections& fused) const;
  // With varlen (packed sequences on the variable-length kernel) mask is ignored.
  torch::Tensor attention(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin, const torch::Tensor& mask, const VarlenLayout* varlen = nullptr) const;
  torch::Tensor mlp(const DecoderLayerWeights& w, const torch::Tensor& x) const;
  // The layer's feed-forward on x [..., H]: the dense MLP, or routing + routed experts (whose
  // router logits are appended to router_logits when given).
  torch::Tensor feed_forward(const DecoderLayerWeights& w, const torch::Tensor& x,
                             std::vector<torch::Tensor>* router_logits) const;
  // Qwen3's per-head RMSNorm of q or k [..., heads, head_dim] (identity without q/k norms).
  torch::Tensor head_norm(const torch::Tensor& x, const torch::Tensor& weight) const;
  torch::Tensor decoder_layer(const DecoderLayerWeights& w, const torch::Tensor& x, const torch::Tensor& cos,
                              const torch::Tensor& sin, const torch::Tensor& mask,
                              std::vector<torch::Tensor>* router_logits = nullptr,
                              const VarlenLayout* varlen = nullptr) const;
  friend struct CheckpointedDecoderLayer;

  ModelConfig config_;
  torch::ScalarType dtype_;
  torch::Device device_;
  torch::Tensor embed_, final_norm_, lm_head_;
  std::vector<DecoderLayerWeights> layers_;
  torch::Tensor inv_freq_;  // rotary frequencies for every non-dynamic scaling
  bool checkpoint_layers_ = false;
  BlockHooks* block_hooks_ = nullptr;
  const ExpertDispatch* expert_dispatch_ = nullptr;
  bool decode_kernels_ = true;
  bool varlen_attention_ = true;
  bool decode_attention_kernel_ = true;
};

// RMSNorm as transformers computes it: normalise in float32, cast back, scale by weight.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Positions for left-padded batches: cumsum(mask) - 1, clamped at 0 for the padding.
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace aha
