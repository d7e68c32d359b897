#include "policy/model/safetensors.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/json.h"

namespace aha {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit

const std::vector<std::pair<std::string, torch::ScalarType>>& dtype_table() {
  static const std::vector<std::pair<std::string, torch::ScalarType>> table = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
      {"I16", torch::kInt16}, {"I8", torch::kInt8}, {"U8", torch::kUInt8}, {"BOOL", torch::kBool},
      {"F8_E4M3", torch::kFloat8_e4m3fn}, {"F8_E5M2", torch::kFloat8_e5m2}};
  return table;
}

// numel * element size, or nullopt on overflow.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t element) {
  unsigned __int128 n = element;
  for (int64_t d : shape) {
    n *= static_cast<uint64_t>(d);
    if (n > (unsigned __int128)UINT64_MAX) return std::nullopt;
  }
  return static_cast<uint64_t>(n);
}

}  // namespace

torch::ScalarType safetensors_scalar_type(const std::string& dtype, const std::string& context) {
  for (const auto& [name, type] : dtype_table()) {
    if (name == dtype) return type;
  }
  throw Error(context + ": unsupported dtype '" + dtype + "'");
}

std::string safetensors_dtype_name(torch::ScalarType type) {
  for (const auto& [name, t] : dtype_table()) {
    if (t == type) return name;
  }
  throw Error(std::string("cannot store dtype ") + c10::toString(type) + " in safetensors");
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : map_(path) {
  const std::string file = path.string();
  if (map_.size() < 8) throw Error(file + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | map_.data()[i];  // little-endian
  if (header_len > kMaxHeaderBytes || header_len > map_.size() - 8) {
    throw Error(file + ": header length " + std::to_string(header_len) + " exceeds the file size " +
                std::to_string(map_.size()) + " (truncated or not a safetensors file)");
  }
  data_start_ = 8 + header_len;
  const uint64_t data_size = map_.size() - data_start_;
  std::string_view header(reinterpret_cast<const char*>(map_.data()) + 8, header_len);
  auto doc = json::parse(header, file + " (safetensors header)");
  if (!doc.IsObject()) throw Error(file + ": safetensors header is not a JSON object");

  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string name(it->name.GetString(), it->name.GetStringLength());
    const auto& v = it->value;
    if (name == "__metadata__") {
      if (!v.IsObject()) throw Error(file + ": __metadata__ must be an object of strings");
      for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
        if (!m->value.IsString()) throw Error(file + ": __metadata__ values must be strings");
        metadata_[m->name.GetString()] = m->value.GetString();
      }
      continue;
    }
    const std::string ctx = file + ": tensor '" + name + "'";
    json::ObjectReader r(v, ctx);
    SafetensorsEntry e;
    e.name = name;
    e.dtype = r.get_string("dtype");
    e.scalar_type = safetensors_scalar_type(e.dtype, ctx);
    const auto& shape = r.get("shape");
    if (!shape.IsArray()) throw Error(ctx + ": 'shape' must be a list");
    for (const auto& d : shape.GetArray()) {
      if (!d.IsInt64() || d.GetInt64() < 0) throw Error(ctx + ": 'shape' must hold non-negative integers");
      e.shape.push_back(d.GetInt64());
    }
    const auto& off = r.get("data_offsets");
    if (!off.IsArray() || off.Size() != 2 || !off[0].IsUint64() || !off[1].IsUint64()) {
      throw Error(ctx + ": 'data_offsets' must be two non-negative integers");
    }
    e.begin = off[0].GetUint64();
    e.end = off[1].GetUint64();
    if (e.begin > e.end || e.end > data_size) {
      throw Error(ctx + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  "] fall outside the data section of " + std::to_string(data_size) +
                  " bytes (truncated file?)");
    }
    auto expected = byte_size(e.shape, c10::elementSize(e.scalar_type));
    if (!expected || *expected != e.end - e.begin) {
      throw Error(ctx + ": holds " + std::to_string(e.end - e.begin) + " bytes but its shape and dtype " +
                  e.dtype + " need " + (expected ? std::to_string(*expected) : std::string("an overflowing number of")));
    }
    if (index_.count(name)) throw Error(ctx + ": appears twice");
    index_[name] = entries_.size();
    entries_.push_back(std::move(e));
  }
  // No two tensors may share bytes.
  std::vector<const SafetensorsEntry*> sorted;
  for (const auto& e : entries_) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->begin < sorted[i - 1]->end) {
      throw Error(file + ": tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
    }
  }
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const SafetensorsEntry& SafetensorsFile::require(const std::string& name) const {
  const auto* e = find(name);
  if (!e) throw Error(path().string() + ": no tensor named '" + name + "'");
  return *e;
}

torch::Tensor SafetensorsFile::view(const std::string& name) const {
  const auto& e = require(name);
  void* ptr = const_cast<unsigned char*>(map_.data() + data_start_ + e.begin);
  return torch::from_blob(ptr, e.shape, torch::TensorOptions().dtype(e.scalar_type));
}

torch::Tensor SafetensorsFile::load(const std::string& name, std::optional<torch::ScalarType> dtype,
                                    torch::Device device) const {
  auto src = view(name);
  return src.to(device, dtype.value_or(src.scalar_type()), /*non_blocking=*/false, /*copy=*/true);
}

uint64_t SafetensorsTensorSpec::nbytes() const {
  auto n = byte_size(shape, c10::elementSize(dtype));
  if (!n) throw Error("safetensors: tensor '" + name + "' has an overflowing size");
  return *n;
}

std::vector<SafetensorsTensorSpec> safetensors_specs(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::vector<SafetensorsTensorSpec> out;
  out.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw Error("safetensors: tensor '" + name + "' is undefined");
    out.push_back({name, tensor.scalar_type(), tensor.sizes().vec()});
  }
  return out;
}

namespace {

// The header: 8 bytes of length, then the JSON padded to keep the data section 8-byte aligned.
std::string header_bytes(const std::filesystem::path& path, const std::vector<SafetensorsTensorSpec>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  rapidjson::Document header(rapidjson::kObjectType);
  auto& alloc = header.GetAllocator();
  if (!metadata.empty()) {
    rapidjson::Value meta(rapidjson::kObjectType);
    for (const auto& [k, v] : metadata) {
      meta.AddMember(rapidjson::Value(k.c_str(), alloc), rapidjson::Value(v.c_str(), alloc), alloc);
    }
    header.AddMember("__metadata__", meta, alloc);
  }
  uint64_t offset = 0;
  for (const auto& spec : tensors) {
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("dtype", rapidjson::Value(safetensors_dtype_name(spec.dtype).c_str(), alloc), alloc);
    rapidjson::Value shape(rapidjson::kArrayType);
    for (int64_t d : spec.shape) {
      if (d < 0) throw Error(path.string() + ": tensor '" + spec.name + "' has a negative dimension");
      shape.PushBack(d, alloc);
    }
    entry.AddMember("shape", shape, alloc);
    rapidjson::Value offs(rapidjson::kArrayType);
    const uint64_t nbytes = spec.nbytes();
    offs.PushBack(offset, alloc).PushBack(offset + nbytes, alloc);
    entry.AddMember("data_offsets", offs, alloc);
    header.AddMember(rapidjson::Value(spec.name.c_str(), alloc), entry, alloc);
    offset += nbytes;
  }
  std::string text = json::to_string(header);
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data section 8-byte aligned
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(static_cast<unsigned char>(uint64_t(text.size()) >> (8 * i)));
  return out + text;
}

std::string shape_text(torch::IntArrayRef shape) { return c10::str(shape); }

}  // namespace

SafetensorsWriter::SafetensorsWriter(const std::filesystem::path& path, std::vector<SafetensorsTensorSpec> tensors,
                                     const std::map<std::string, std::string>& metadata)
    : path_(path), tensors_(std::move(tensors)), out_(path) {
  const std::string header = header_bytes(path_, tensors_, metadata);
  out_.write(header.data(), header.size());
}

void SafetensorsWriter::write(const std::string& name, const torch::Tensor& tensor) {
  if (next_ >= tensors_.size())
    throw Error(path_.string() + ": tensor '" + name + "' comes after the " + std::to_string(tensors_.size()) +
                " tensors the header lists");
  const auto& spec = tensors_[next_];
  if (!tensor.defined()) throw Error(path_.string() + ": tensor '" + name + "' is undefined");
  if (name != spec.name || tensor.scalar_type() != spec.dtype || tensor.sizes() != torch::IntArrayRef(spec.shape))
    throw Error(path_.string() + ": tensor '" + name + "' (" + c10::toString(tensor.scalar_type()) + " " +
                shape_text(tensor.sizes()) + ") comes where the header lists '" + spec.name + "' (" +
                c10::toString(spec.dtype) + " " + shape_text(spec.shape) + ")");
  auto t = tensor.detach();
  if (t.device().is_cpu()) {
    t = t.contiguous();  // no copy when it is already
    out_.write(t.data_ptr(), t.nbytes());
  } else {
    // Off the CPU: a bounded host buffer at a time, never the whole tensor copied to the host.
    auto flat = t.reshape({-1});
    const int64_t element = static_cast<int64_t>(t.element_size());
    const int64_t chunk = std::max<int64_t>(1, kWriteChunkBytes / element);
    for (int64_t at = 0; at < flat.numel(); at += chunk) {
      const auto host = flat.narrow(0, at, std::min(chunk, flat.numel() - at)).to(torch::kCPU);
      out_.write(host.data_ptr(), host.nbytes());
    }
  }
  ++next_;
}

void SafetensorsWriter::commit() {
  if (next_ < tensors_.size())
    throw Error(path_.string() + ": tensor '" + tensors_[next_].name + "' was never written (" +
                std::to_string(next_) + " of " + std::to_string(tensors_.size()) + ")");
  out_.commit();
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  for (const auto& [name, tensor] : tensors)
    if (!tensor.defined()) throw Error(path.string() + ": tensor '" + name + "' is undefined");
  SafetensorsWriter out(path, safetensors_specs(tensors), metadata);
  for (const auto& [name, tensor] : tensors) out.write(name, tensor);
  out.commit();
}

CheckpointReader::CheckpointReader(const std::filesystem::path& dir) : dir_(dir) {
  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(index)) {
    auto doc = json::parse(read_file(index), index.string());
    json::ObjectReader r(doc, index.string());
    const auto& map = r.get("weight_map");
    if (!map.IsObject()) throw Error(index.string() + ": 'weight_map' must be an object");
    std::map<std::string, size_t> shard_of_file;
    for (auto it = map.MemberBegin(); it != map.MemberEnd(); ++it) {
      if (!it->value.IsString()) throw Error(index.string() + ": weight_map values must be file names");
      std::string shard = it->value.GetString();
      if (shard.find('/') != std::string::npos || shard == "..") {
        throw Error(index.string() + ": shard name '" + shard + "' must be a file in the same directory");
      }
      auto found = shard_of_file.find(shard);
      if (found == shard_of_file.end()) {
        if (!std::filesystem::exists(dir / shard)) {
          throw Error(index.string() + ": shard '" + shard + "' listed for tensor '" + it->name.GetString() +
                      "' does not exist");
        }
        files_.push_back(std::make_unique<SafetensorsFile>(dir / shard));
        found = shard_of_file.emplace(shard, files_.size() - 1).first;
      }
      std::string name = it->name.GetString();
      if (!files_[found->second]->find(name)) {
        throw Error(index.string() + ": tensor '" + name + "' is listed in shard '" + shard + "' but not stored there");
      }
      where_[name] = found->second;
    }
  } else if (std::filesystem::exists(single)) {
    files_.push_back(std::make_unique<SafetensorsFile>(single));
    for (const auto& e : files_.back()->entries()) where_[e.name] = 0;
  } else {
    throw Error(dir.string() + ": no model.safetensors or model.safetensors.index.json");
  }
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

const SafetensorsFile& CheckpointReader::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_.string() + ": checkpoint has no tensor '" + name + "'");
  return *files_[it->second];
}

const SafetensorsEntry& CheckpointReader::entry(const std::string& name) const {
  return *file_of(name).find(name);
}

torch::Tensor CheckpointReader::load(const std::string& name, std::optional<torch::ScalarType> dtype,
                                     torch::Device device) const {
  return file_of(name).load(name, dtype, device);
}

namespace {

std::string shard_file_name(size_t i, size_t n) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return name;
}

}  // namespace

CheckpointWriter::CheckpointWriter(const std::filesystem::path& dir, std::vector<SafetensorsTensorSpec> tensors,
                                   uint64_t max_shard_bytes)
    : dir_(dir), files_(1) {
  std::filesystem::create_directories(dir_);
  uint64_t in_shard = 0;
  for (auto& spec : tensors) {
    const uint64_t n = spec.nbytes();
    if (in_shard > 0 && in_shard + n > max_shard_bytes) {
      files_.emplace_back();
      in_shard = 0;
    }
    files_.back().push_back(std::move(spec));
    in_shard += n;
    total_ += n;
  }
}

CheckpointWriter::~CheckpointWriter() = default;

void CheckpointWriter::open_file() {
  const auto name = files_.size() == 1 ? std::string("model.safetensors") : shard_file_name(file_, files_.size());
  out_ = std::make_unique<SafetensorsWriter>(dir_ / name, files_[file_]);
}

void CheckpointWriter::write(const std::string& name, const torch::Tensor& tensor) {
  // Files without tensors (an empty list) have nothing to wait for: opened at commit().
  while (file_ < files_.size() && out_ && out_->written() == files_[file_].size()) {
    out_->commit();
    out_.reset();
    ++file_;
  }
  if (file_ >= files_.size())
    throw Error(dir_.string() + ": tensor '" + name + "' comes after every tensor the checkpoint lists");
  if (!out_) open_file();
  out_->write(name, tensor);
}

void CheckpointWriter::commit() {
  for (; file_ < files_.size(); ++file_) {
    if (!out_) open_file();
    out_->commit();  // throws naming the first tensor not written
    out_.reset();
  }
  std::error_code ec;
  if (files_.size() == 1) {
    std::filesystem::remove(dir_ / "model.safetensors.index.json", ec);
    return;
  }
  rapidjson::Document index(rapidjson::kObjectType);
  auto& alloc = index.GetAllocator();
  rapidjson::Value meta(rapidjson::kObjectType);
  meta.AddMember("total_size", total_, alloc);
  index.AddMember("metadata", meta, alloc);
  rapidjson::Value map(rapidjson::kObjectType);
  for (size_t i = 0; i < files_.size(); ++i) {
    const std::string name = shard_file_name(i, files_.size());
    for (const auto& spec : files_[i]) {
      map.AddMember(rapidjson::Value(spec.name.c_str(), alloc), rapidjson::Value(name.c_str(), alloc), alloc);
    }
  }
  index.AddMember("weight_map", map, alloc);
  write_file_atomic(dir_ / "model.safetensors.index.json", json::to_string(index, true) + "\n");
  std::filesystem::remove(dir_ / "model.safetensors", ec);
}

void save_checkpoint_tensors(const std::filesystem::path& dir,
                             const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                             uint64_t max_shard_bytes) {
  CheckpointWriter out(dir, safetensors_specs(tensors), max_shard_bytes);
  for (const auto& [name, tensor] : tensors) out.write(name, tensor);
  out.commit();
}

}  // namespace aha
