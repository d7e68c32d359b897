#include "policy/learner/optimizer_shards.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/crc.hpp>

#include <algorithm>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "policy/model/safetensors.h"

namespace aha::policy {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kFormat = 2;        // written; format 1 (flat ranges) is still read
constexpr int64_t kFlatRangeFormat = 1;

std::string key_of(const std::string& name, int64_t offset) { return name + "@" + std::to_string(offset); }

uint32_t crc32_of(const MappedFile& file) {
  boost::crc_32_type crc;
  crc.process_bytes(file.data(), file.size());
  return crc.checksum();
}

}  // namespace

std::string shard_file_name(int rank) { return "rank-" + std::to_string(rank) + ".safetensors"; }

ShardFileInfo write_optimizer_shard(const fs::path& dir, int rank, const std::vector<ShardPieceState>& pieces) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  ShardFileInfo info;
  info.rank = rank;
  for (const auto& p : pieces) {
    info.pieces.push_back({p.name, p.offset, p.exp_avg.numel()});
    const std::string key = key_of(p.name, p.offset);
    tensors.emplace_back(key + "/exp_avg", p.exp_avg);
    tensors.emplace_back(key + "/exp_avg_sq", p.exp_avg_sq);
    if (p.master.defined()) tensors.emplace_back(key + "/master", p.master);
    metadata[key + "/step"] = std::to_string(p.step);
  }
  const fs::path path = dir / shard_file_name(rank);
  save_safetensors(path, tensors, metadata);
  const MappedFile written(path);
  info.bytes = static_cast<int64_t>(written.size());
  info.crc32 = crc32_of(written);
  return info;
}

void write_shard_index(const fs::path& dir, const ShardIndex& index) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("format"), w.Int64(kFormat);
  w.Key("sharding"), w.String(index.sharding.c_str());
  w.Key("world_size"), w.Int(index.world_size);
  w.Key("step_count"), w.Int64(index.step_count);
  w.Key("skipped_steps"), w.Int64(index.skipped_steps);
  w.Key("parameters"), w.StartArray();
  for (const auto& [name, numel] : index.parameters) {
    w.StartObject();
    w.Key("name"), w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
    w.Key("numel"), w.Int64(numel);
    w.EndObject();
  }
  w.EndArray();
  w.Key("shards"), w.StartArray();
  for (const auto& s : index.shards) {
    w.StartObject();
    w.Key("rank"), w.Int(s.rank);
    w.Key("file"), w.String(shard_file_name(s.rank).c_str());
    w.Key("pieces"), w.StartArray();
    for (const auto& p : s.pieces) {
      w.StartObject();
      w.Key("name"), w.String(p.name.c_str(), static_cast<rapidjson::SizeType>(p.name.size()));
      w.Key("offset"), w.Int64(p.offset);
      w.Key("length"), w.Int64(p.length);
      w.EndObject();
    }
    w.EndArray();
    w.Key("bytes"), w.Int64(s.bytes);
    w.Key("crc32"), w.Uint(s.crc32);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  write_file_atomic(dir / "index.json", json::text_of(buffer) + "\n");
}

OptimizerShardReader::OptimizerShardReader(const fs::path& dir, const std::vector<std::pair<std::string, int64_t>>& parameters)
    : dir_(dir) {
  const fs::path index_path = dir / "index.json";
  const std::string what = "optimizer shard index " + index_path.string();
  auto doc = json::parse(read_file(index_path), what);
  json::ObjectReader r(doc, what);
  r.reject_unknown({"format", "sharding", "world_size", "step_count", "skipped_steps", "parameters", "shards"});
  const int64_t format = r.get_int("format");
  require(format == kFormat || format == kFlatRangeFormat,
          what + ": field 'format' must be " + std::to_string(kFormat) + " (or the older " +
              std::to_string(kFlatRangeFormat) + "), got " + std::to_string(format));
  index_.sharding = r.get_string("sharding");
  index_.world_size = static_cast<int>(r.get_int("world_size"));
  index_.step_count = r.get_int("step_count");
  index_.skipped_steps = r.get_int("skipped_steps");
  require(index_.world_size >= 1, what + ": 'world_size' must be >= 1");

  const auto& params = r.get("parameters");
  require(params.IsArray(), what + ": 'parameters' must be a list");
  for (const auto& p : params.GetArray()) {
    json::ObjectReader pr(p, what + ": parameters");
    index_.parameters.emplace_back(pr.get_string("name"), pr.get_int("numel"));
  }
  require(index_.parameters.size() == parameters.size(),
          what + ": " + std::to_string(index_.parameters.size()) + " parameters, the model has " +
              std::to_string(parameters.size()));
  for (size_t i = 0; i < parameters.size(); ++i) {
    require(index_.parameters[i] == parameters[i],
            what + ": parameter " + std::to_string(i) + " is '" + index_.parameters[i].first + "' of " +
                std::to_string(index_.parameters[i].second) + " elements, the model's is '" + parameters[i].first +
                "' of " + std::to_string(parameters[i].second));
    param_of_[parameters[i].first] = i;
  }
  held_.resize(parameters.size());

  const auto& shards = r.get("shards");
  require(shards.IsArray() && shards.Size() == static_cast<rapidjson::SizeType>(index_.world_size),
          what + ": 'shards' must list one shard per rank (" + std::to_string(index_.world_size) + ")");
  int64_t expected_begin = 0;  // format 1: the flat ranges follow one another
  for (const auto& s : shards.GetArray()) {
    json::ObjectReader sr(s, what + ": shards");
    ShardFileInfo info;
    info.rank = static_cast<int>(sr.get_int("rank"));
    info.bytes = sr.get_int("bytes");
    const int64_t crc = sr.get_int("crc32");
    require(crc >= 0 && crc <= 0xffffffffLL, what + ": a shard's 'crc32' is out of range");
    info.crc32 = static_cast<uint32_t>(crc);
    require(info.rank == static_cast<int>(index_.shards.size()) && sr.get_string("file") == shard_file_name(info.rank),
            what + ": shard " + std::to_string(index_.shards.size()) + " must be rank " +
                std::to_string(index_.shards.size()) + " in " + shard_file_name(static_cast<int>(index_.shards.size())));
    // Every file up front, so that a missing one is found before any state changes.
    const fs::path file = dir / shard_file_name(info.rank);
    std::error_code ec;
    require(fs::is_regular_file(file, ec), "optimizer shard " + file.string() + " is missing (the index " +
                                               index_path.string() + " lists it)");
    const auto size = fs::file_size(file, ec);
    require(!ec && static_cast<int64_t>(size) == info.bytes,
            "optimizer shard " + file.string() + " has " + std::to_string(size) + " bytes, the index says " +
                std::to_string(info.bytes) + " (truncated or replaced)");
    const size_t shard = index_.shards.size();
    index_.shards.push_back(info);
    if (format == kFlatRangeFormat) {
      const int64_t begin = sr.get_int("begin"), end = sr.get_int("end");
      require(begin == expected_begin && end >= begin,
              what + ": the shards do not cover the parameters one after another (rank " + std::to_string(info.rank) +
                  " starts at " + std::to_string(begin) + ", expected " + std::to_string(expected_begin) + ")");
      expected_begin = end;
      derive_pieces(shard, begin, end);
      continue;
    }
    const auto& pieces = sr.get("pieces");
    const std::string where = what + ": shard " + shard_file_name(info.rank);
    require(pieces.IsArray(), where + ": 'pieces' must be a list");
    for (const auto& p : pieces.GetArray()) {
      json::ObjectReader pr(p, where + ": pieces");
      ShardPieceInfo piece{pr.get_string("name"), pr.get_int("offset"), pr.get_int("length")};
      const auto it = param_of_.find(piece.name);
      require(it != param_of_.end(), where + " holds a piece of '" + piece.name + "', which is no parameter");
      const int64_t numel = index_.parameters[it->second].second;
      require(piece.offset >= 0 && piece.length > 0 && piece.offset + piece.length <= numel,
              where + ": the piece of '" + piece.name + "' at " + std::to_string(piece.offset) + " of " +
                  std::to_string(piece.length) + " elements lies outside its " + std::to_string(numel));
      held_[it->second].push_back({shard, piece.offset, piece.length});
      index_.shards.back().pieces.push_back(std::move(piece));
    }
  }
  if (format == kFlatRangeFormat) {
    int64_t total = 0;
    for (const auto& [_, numel] : index_.parameters) total += numel;
    require(expected_begin == total, what + ": the shards cover " + std::to_string(expected_begin) +
                                         " elements, the parameters have " + std::to_string(total));
  }
  check_tiling(what);
  files_.resize(index_.shards.size());
}

void OptimizerShardReader::derive_pieces(size_t shard, int64_t begin, int64_t end) {
  int64_t start = 0;
  for (size_t i = 0; i < index_.parameters.size(); ++i) {
    const auto& [name, numel] = index_.parameters[i];
    const int64_t b = std::max(begin, start), e = std::min(end, start + numel);
    if (e > b) {
      held_[i].push_back({shard, b - start, e - b});
      index_.shards[shard].pieces.push_back({name, b - start, e - b});
    }
    start += numel;
  }
}

void OptimizerShardReader::check_tiling(const std::string& what) {
  for (size_t i = 0; i < held_.size(); ++i) {
    auto& pieces = held_[i];
    std::sort(pieces.begin(), pieces.end(), [](const Held& a, const Held& b) { return a.offset < b.offset; });
    const auto& [name, numel] = index_.parameters[i];
    int64_t next = 0;  // the first element not yet covered
    const Held* previous = nullptr;
    for (const auto& p : pieces) {
      // Messages built only on failure: this runs for every piece of every parameter.
      auto file = [&](const Held& h) { return shard_file_name(index_.shards[h.shard].rank); };
      if (p.offset > next)
        throw Error(what + ": parameter '" + name + "' has a gap: elements [" + std::to_string(next) + ", " +
                    std::to_string(p.offset) + ") are in no shard (the next piece is in " + file(p) + ")");
      if (p.offset < next)
        throw Error(what + ": parameter '" + name + "' has overlapping pieces: " + file(p) + " holds it from element " +
                    std::to_string(p.offset) + ", " + file(*previous) + " up to " + std::to_string(next));
      next = p.offset + p.length;
      previous = &p;
    }
    if (next != numel)
      throw Error(what + ": parameter '" + name + "' has a gap: elements [" + std::to_string(next) + ", " +
                  std::to_string(numel) + ") are in no shard");
  }
}

size_t OptimizerShardReader::param_index(const std::string& name) const {
  const auto it = param_of_.find(name);
  require(it != param_of_.end(),
          "optimizer shard index " + (dir_ / "index.json").string() + " has no parameter '" + name + "'");
  return it->second;
}

OptimizerShardReader::~OptimizerShardReader() = default;

const SafetensorsFile& OptimizerShardReader::open(size_t shard) {
  if (!files_[shard]) {
    const fs::path path = dir_ / shard_file_name(static_cast<int>(shard));
    {
      const MappedFile data(path);
      require(crc32_of(data) == index_.shards[shard].crc32,
              "optimizer shard " + path.string() + " does not match its CRC-32 in the index (corrupt)");
    }
    files_[shard] = std::make_unique<SafetensorsFile>(path);
  }
  return *files_[shard];
}

void OptimizerShardReader::for_each_held(size_t param, int64_t offset, int64_t length,
                                         const std::function<void(const Overlap&)>& visit) {
  require(param < index_.parameters.size() && offset >= 0 && length >= 0 &&
              offset + length <= index_.parameters[param].second,
          "optimizer shards: read outside a parameter");
  const std::string& name = index_.parameters[param].first;
  const int64_t end = offset + length;
  for (const auto& held : held_[param]) {  // by offset, tiling the parameter
    const int64_t ob = std::max(offset, held.offset), oe = std::min(end, held.offset + held.length);
    if (oe <= ob) continue;
    const auto& file = open(held.shard);
    const std::string key = key_of(name, held.offset);
    visit({file, key, "optimizer shard " + file.path().string() + ": piece " + key, held.length, ob - held.offset,
           oe - ob});
  }
}

OptimizerShardReader::Range OptimizerShardReader::read(size_t param, int64_t offset, int64_t length) {
  std::vector<torch::Tensor> avg, avg_sq;
  int64_t step = -1;
  for_each_held(param, offset, length, [&](const Overlap& o) {
    const auto meta = o.file.metadata().find(o.key + "/step");
    require(meta != o.file.metadata().end(), o.where + " has no step count");
    int64_t piece_step = 0;
    try {
      piece_step = std::stoll(meta->second);
    } catch (const std::exception&) {
      throw Error(o.where + ": step count '" + meta->second + "' is not a number");
    }
    require(step < 0 || step == piece_step, o.where + ": step count differs from the parameter's other pieces");
    step = piece_step;
    using Part = std::pair<const char*, std::vector<torch::Tensor>*>;
    for (auto [suffix, out] : {Part{"/exp_avg", &avg}, Part{"/exp_avg_sq", &avg_sq}}) {
      const auto* entry = o.file.find(o.key + suffix);
      require(entry != nullptr, o.where + " lacks " + o.key + suffix);
      require(entry->shape == std::vector<int64_t>{o.held_length},
              o.where + suffix + " has the wrong shape for the piece the index gives");
      out->push_back(o.file.view(o.key + suffix).narrow(0, o.begin, o.length));
    }
  });
  Range range;
  range.step = std::max<int64_t>(step, 0);
  range.exp_avg = avg.empty() ? torch::zeros({0}) : torch::cat(avg);
  range.exp_avg_sq = avg_sq.empty() ? torch::zeros({0}) : torch::cat(avg_sq);
  return range;
}

torch::Tensor OptimizerShardReader::read_master(size_t param, int64_t offset, int64_t length) {
  std::vector<torch::Tensor> parts;
  std::string with, without;  // a piece that has a master and one that has none
  for_each_held(param, offset, length, [&](const Overlap& o) {
    const auto* entry = o.file.find(o.key + "/master");
    if (!entry) {
      without = o.where;
      return;
    }
    with = o.where;
    require(entry->scalar_type == torch::kFloat32 && entry->shape == std::vector<int64_t>{o.held_length},
            o.where + "/master must be float32 [" + std::to_string(o.held_length) + "] as the index gives the piece, not " +
                entry->dtype + " " + c10::str(entry->shape));
    parts.push_back(o.file.view(o.key + "/master").narrow(0, o.begin, o.length));
  });
  require(with.empty() || without.empty(),
          with + " has float32 master weights and " + without + " none: the checkpoint's pieces disagree");
  return parts.empty() ? torch::Tensor() : torch::cat(parts);
}

}  // namespace aha::policy
