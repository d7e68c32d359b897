#include "datasets/data_iterator.h"

#include <numeric>

#include "core/error.h"
#include "core/json.h"
#include "datasets/seeded_random.h"

namespace aha {

std::string DataCursor::to_json() const {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& a = doc.GetAllocator();
  doc.AddMember("epoch", epoch, a);
  doc.AddMember("position", position, a);
  doc.AddMember("seed", seed, a);
  doc.AddMember("size", size, a);
  doc.AddMember("shuffle", shuffle, a);
  return json::to_string(doc);
}

DataCursor DataCursor::from_json(std::string_view text, const std::string& what) {
  rapidjson::Document doc = json::parse(text, what);
  json::ObjectReader r(doc, what);
  r.reject_unknown({"epoch", "position", "seed", "size", "shuffle"});
  auto uint_field = [&](const char* key) -> uint64_t {
    const rapidjson::Value& v = r.get(key);
    if (!v.IsUint64())
      throw Error(what + ": field '" + key + "' must be a non-negative integer, got " + json::to_string(v));
    return v.GetUint64();
  };
  DataCursor c;
  c.epoch = uint_field("epoch");
  c.position = uint_field("position");
  c.seed = uint_field("seed");
  c.size = uint_field("size");
  c.shuffle = r.get_bool("shuffle");
  return c;
}

DataIterator::DataIterator(size_t size, uint64_t seed, bool shuffle) : size_(size), seed_(seed), shuffle_(shuffle) {
  require(size > 0, "data iterator: the data set is empty");
  build_order();
}

void DataIterator::build_order() {
  order_.resize(size_);
  std::iota(order_.begin(), order_.end(), size_t{0});
  if (shuffle_) {
    SeededRandom rng(mix_seed(seed_, epoch_));
    rng.shuffle(order_);
  }
}

std::vector<size_t> DataIterator::next_indices(size_t n) {
  require(n >= 1, "data iterator: batch size must be at least 1");
  std::vector<size_t> out;
  out.reserve(n);
  while (out.size() < n) {
    if (position_ == size_) {
      ++epoch_;
      position_ = 0;
      build_order();
    }
    out.push_back(order_[position_++]);
  }
  return out;
}

std::vector<Example> DataIterator::next_batch(const std::vector<Example>& examples, size_t n) {
  require(examples.size() == size_,
          "data iterator: built for " + std::to_string(size_) + " examples, given " + std::to_string(examples.size()));
  std::vector<Example> batch;
  for (size_t i : next_indices(n)) batch.push_back(examples[i]);
  return batch;
}

DataCursor DataIterator::cursor() const { return DataCursor{epoch_, position_, seed_, size_, shuffle_}; }

void DataIterator::restore(const DataCursor& c) {
  auto mismatch = [&](const char* field, const std::string& saved, const std::string& here) {
    throw Error("data cursor: saved for " + std::string(field) + " " + saved + " but this iterator has " + here);
  };
  if (c.size != size_) mismatch("size", std::to_string(c.size), std::to_string(size_));
  if (c.seed != seed_) mismatch("seed", std::to_string(c.seed), std::to_string(seed_));
  if (c.shuffle != shuffle_) mismatch("shuffle", c.shuffle ? "true" : "false", shuffle_ ? "true" : "false");
  require(c.position <= size_, "data cursor: position " + std::to_string(c.position) + " is past the data set's " +
                                   std::to_string(size_) + " examples");
  epoch_ = c.epoch;
  position_ = static_cast<size_t>(c.position);
  build_order();
}

}  // namespace aha
