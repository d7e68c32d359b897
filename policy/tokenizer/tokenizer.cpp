#include "policy/tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "core/thread_pool.h"
#include "policy/tokenizer/tokenizer_pipeline.h"
#include "policy/tokenizer/tokenizer_spec.h"

namespace aha {

Tokenizer Tokenizer::from_dir(const std::filesystem::path& dir) { return Tokenizer(read_tokenizer_dir(dir)); }

Tokenizer Tokenizer::from_json(std::string_view tokenizer_json, const std::string& source) {
  return Tokenizer(parse_tokenizer_json(tokenizer_json, source));
}

Tokenizer::Tokenizer(const TokenizerSpec& spec) : pipeline_(std::make_shared<TokenizerPipeline>(spec)) {}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = pipeline_->prefix_ids;
  pipeline_->encode(text, ids);
  if (add_special_tokens) ids.insert(ids.end(), pipeline_->suffix_ids.begin(), pipeline_->suffix_ids.end());
  return ids;
}

std::vector<std::vector<TokenId>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          bool add_special_tokens, ThreadPool* pool) const {
  if (!pool) {
    static ThreadPool shared_pool;  // one thread per core, made on first use
    pool = &shared_pool;
  }
  std::vector<std::vector<TokenId>> result(texts.size());
  // A few chunks per thread: balances uneven text lengths without a task per text.
  size_t chunks = std::min(texts.size(), pool->size() * 4);
  std::vector<std::future<void>> done;
  for (size_t c = 0; c < chunks; ++c) {
    size_t begin = texts.size() * c / chunks, end = texts.size() * (c + 1) / chunks;
    done.push_back(pool->submit([&, begin, end] {
      for (size_t i = begin; i < end; ++i) result[i] = encode(texts[i], add_special_tokens);
    }));
  }
  for (auto& f : done) f.wait();
  for (auto& f : done) f.get();  // rethrows a task's exception
  return result;
}

bool Tokenizer::has_token(TokenId id) const {
  const auto& p = *pipeline_;
  return id >= 0 && static_cast<size_t>(id) < p.exists.size() && p.exists[static_cast<size_t>(id)];
}

const std::string& Tokenizer::token_bytes(TokenId id) const {
  const auto& p = *pipeline_;
  if (id < 0 || static_cast<size_t>(id) >= p.exists.size() || !p.exists[static_cast<size_t>(id)])
    throw Error(p.source + ": token id " + std::to_string(id) + " is not in the vocabulary");
  return p.bytes[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::string out;
  for (TokenId id : ids) {
    const std::string& b = token_bytes(id);
    if (skip_special_tokens && pipeline_->special[static_cast<size_t>(id)]) continue;
    out += b;
  }
  return out;
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  auto it = pipeline_->id_of_text.find(std::string(token));
  if (it == pipeline_->id_of_text.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  const auto& p = *pipeline_;
  if (id < 0 || static_cast<size_t>(id) >= p.exists.size() || !p.exists[static_cast<size_t>(id)]) return std::nullopt;
  return p.text[static_cast<size_t>(id)];
}

bool Tokenizer::is_special(TokenId id) const {
  const auto& p = *pipeline_;
  return id >= 0 && static_cast<size_t>(id) < p.special.size() && p.special[static_cast<size_t>(id)];
}

size_t Tokenizer::vocab_size() const { return pipeline_->count; }
TokenId Tokenizer::id_limit() const { return static_cast<TokenId>(pipeline_->exists.size()); }
std::optional<TokenId> Tokenizer::bos_id() const { return pipeline_->bos; }
std::optional<TokenId> Tokenizer::eos_id() const { return pipeline_->eos; }
std::optional<TokenId> Tokenizer::pad_id() const { return pipeline_->pad; }
std::optional<TokenId> Tokenizer::unk_id() const { return pipeline_->unk; }

}  // namespace aha
