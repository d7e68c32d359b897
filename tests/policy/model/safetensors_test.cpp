// safetensors reading and writing: round trips, sharding, and every kind of bad file.
#include "policy/model/safetensors.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include <rapidjson/document.h>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"

namespace fs = std::filesystem;

namespace {

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("aha_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { aha::remove_tree(dir_); }

  // A file made of an explicit header and data section.
  fs::path raw(const std::string& header, const std::string& data, const std::string& name = "x.safetensors") {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
    aha::write_file_atomic(dir_ / name, bytes + header + data);
    return dir_ / name;
  }

  std::string error_opening(const fs::path& p) {
    try {
      aha::SafetensorsFile f(p);
    } catch (const aha::Error& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

TEST_F(Safetensors, RoundTripKeepsDtypeShapeAndValues) {
  auto f32 = torch::randn({3, 5});
  auto bf16 = torch::randn({7}).to(torch::kBFloat16);
  auto f16 = torch::randn({2, 2, 2}).to(torch::kFloat16);
  auto i64 = torch::arange(10, torch::kInt64).view({2, 5}).t();  // non-contiguous
  auto empty = torch::empty({0, 4});
  aha::save_safetensors(dir_ / "a.safetensors", {{"f32", f32}, {"bf16", bf16}, {"f16", f16}, {"i64", i64}, {"empty", empty}},
                        {{"format", "pt"}});
  aha::SafetensorsFile file(dir_ / "a.safetensors");
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_TRUE(torch::equal(file.load("f32"), f32));
  EXPECT_TRUE(torch::equal(file.load("bf16"), bf16));
  EXPECT_TRUE(torch::equal(file.load("f16"), f16));
  EXPECT_TRUE(torch::equal(file.load("i64"), i64));
  EXPECT_EQ(file.load("empty").sizes(), empty.sizes());
  EXPECT_EQ(file.find("bf16")->dtype, "BF16");
  // Conversion on load.
  EXPECT_TRUE(torch::allclose(file.load("bf16", torch::kFloat32), bf16.to(torch::kFloat32)));
}

TEST_F(Safetensors, ReadsAHandWrittenFile) {
  // Two little-endian F32 values 1.0 and -2.0, and one I8, laid out by hand.
  std::string data("\x00\x00\x80\x3f\x00\x00\x00\xc0\x05", 9);
  auto p = raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I8","shape":[],"data_offsets":[8,9]}})", data);
  aha::SafetensorsFile f(p);
  auto a = f.load("a");
  EXPECT_FLOAT_EQ(a[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(a[1].item<float>(), -2.0f);
  EXPECT_EQ(f.load("b").item<int8_t>(), 5);
}

TEST_F(Safetensors, TruncatedFileIsNamedWithTheTensor) {
  aha::save_safetensors(dir_ / "t.safetensors", {{"weight", torch::randn({64, 64})}});
  auto bytes = aha::read_file(dir_ / "t.safetensors");
  aha::write_file_atomic(dir_ / "t.safetensors", bytes.substr(0, bytes.size() - 100));
  auto msg = error_opening(dir_ / "t.safetensors");
  EXPECT_NE(msg.find("t.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  // Cut inside the header, and inside the length itself.
  aha::write_file_atomic(dir_ / "t.safetensors", bytes.substr(0, 20));
  EXPECT_NE(error_opening(dir_ / "t.safetensors").find("header length"), std::string::npos);
  aha::write_file_atomic(dir_ / "t.safetensors", bytes.substr(0, 5));
  EXPECT_NE(error_opening(dir_ / "t.safetensors").find("shorter than"), std::string::npos);
}

TEST_F(Safetensors, CorruptHeadersAreRejected) {
  struct Case { std::string header; std::string data; std::string expect; };
  std::vector<Case> cases = {
      {"{not json", "", "invalid JSON"},
      {"[1,2]", "", "not a JSON object"},
      {R"({"w":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", "abcd", "unsupported dtype 'F99'"},
      {R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd", "non-negative"},
      {R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd", "need 8"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "abcd", "outside the data section"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", "abcd", "outside the data section"},
      {R"({"w":{"dtype":"F32","shape":[1]}})", "abcd", "'data_offsets'"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"v":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
       "abcdefgh", "overlap"},
      {R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,4]}})", "abcd",
       "overflowing"},
      {R"({"__metadata__":{"a":1}})", "", "__metadata__"},
  };
  for (const auto& c : cases) {
    auto msg = error_opening(raw(c.header, c.data));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "header " << c.header << " gave: " << msg;
  }
  // Header length pointing far past the end of the file.
  std::string bytes = "\xff\xff\xff\xff\xff\xff\xff\x7f{}";
  aha::write_file_atomic(dir_ / "huge.safetensors", bytes);
  EXPECT_NE(error_opening(dir_ / "huge.safetensors").find("exceeds the file size"), std::string::npos);
}

TEST_F(Safetensors, ShardedCheckpointRoundTrip) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (int i = 0; i < 6; ++i) tensors.emplace_back("t" + std::to_string(i), torch::randn({50, 10}));
  aha::save_checkpoint_tensors(dir_ / "ckpt", tensors, /*max_shard_bytes=*/4500);
  EXPECT_TRUE(fs::exists(dir_ / "ckpt/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir_ / "ckpt/model-00003-of-00003.safetensors"));
  EXPECT_FALSE(fs::exists(dir_ / "ckpt/model.safetensors"));
  aha::CheckpointReader reader(dir_ / "ckpt");
  EXPECT_EQ(reader.names().size(), 6u);
  for (const auto& [name, t] : tensors) EXPECT_TRUE(torch::equal(reader.load(name), t)) << name;
  // Saving again unsharded replaces the index.
  aha::save_checkpoint_tensors(dir_ / "ckpt", tensors);
  EXPECT_FALSE(fs::exists(dir_ / "ckpt/model.safetensors.index.json"));
  EXPECT_TRUE(torch::equal(aha::CheckpointReader(dir_ / "ckpt").load("t5"), tensors[5].second));
}

TEST_F(Safetensors, BadIndexIsRejected) {
  fs::create_directories(dir_ / "c");
  aha::save_safetensors(dir_ / "c/s1.safetensors", {{"a", torch::ones({2})}});
  auto open_error = [&](const std::string& index) {
    aha::write_file_atomic(dir_ / "c/model.safetensors.index.json", index);
    try {
      aha::CheckpointReader r(dir_ / "c");
    } catch (const aha::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(open_error(R"({"weight_map": {"a": "missing.safetensors"}})").find("does not exist"), std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map": {"b": "s1.safetensors"}})").find("not stored there"), std::string::npos);
  EXPECT_NE(open_error(R"({"weight_map": {"a": "../s1.safetensors"}})").find("same directory"), std::string::npos);
  EXPECT_NE(open_error(R"({"metadata": {}})").find("weight_map"), std::string::npos);
  EXPECT_EQ(open_error(R"({"weight_map": {"a": "s1.safetensors"}})"), "");
  fs::create_directories(dir_ / "empty");
  EXPECT_THROW(aha::CheckpointReader(dir_ / "empty"), aha::Error);
}

}  // namespace

namespace {

// save_safetensors as it was before it wrote through SafetensorsWriter (every tensor copied to
// the host first, then one header and the data): the bytes the streaming writer must keep.
std::string one_shot_bytes(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  rapidjson::Document header(rapidjson::kObjectType);
  auto& alloc = header.GetAllocator();
  rapidjson::Value meta(rapidjson::kObjectType);
  meta.AddMember("format", "pt", alloc);
  header.AddMember("__metadata__", meta, alloc);
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    rapidjson::Value entry(rapidjson::kObjectType);
    entry.AddMember("dtype", rapidjson::Value(aha::safetensors_dtype_name(t.scalar_type()).c_str(), alloc), alloc);
    rapidjson::Value shape(rapidjson::kArrayType);
    for (int64_t d : t.sizes()) shape.PushBack(d, alloc);
    entry.AddMember("shape", shape, alloc);
    rapidjson::Value offs(rapidjson::kArrayType);
    offs.PushBack(uint64_t(data.size()), alloc).PushBack(uint64_t(data.size() + t.nbytes()), alloc);
    entry.AddMember("data_offsets", offs, alloc);
    header.AddMember(rapidjson::Value(name.c_str(), alloc), entry, alloc);
    data.append(static_cast<const char*>(t.data_ptr()), t.nbytes());
  }
  std::string text = aha::json::to_string(header);
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string len(8, '\0');
  for (int i = 0; i < 8; ++i) len[i] = char((uint64_t(text.size()) >> (8 * i)) & 0xff);
  return len + text + data;
}

}  // namespace

// The streaming writer, given the names, dtypes and shapes first and the tensors one by one
// (ZeRO-3's streamed save), writes the bytes of the one-shot writer; so do save_safetensors and
// save_checkpoint_tensors (written through it), sharded too: each file is the one-shot file of
// its tensors.
TEST_F(Safetensors, StreamedWriterWritesTheOneShotBytes) {
  torch::manual_seed(3);
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"a", torch::randn({3, 5})},
      {"b.weight", torch::randn({4, 6}).to(torch::kBFloat16).t()},  // not contiguous
      {"c", torch::arange(7, torch::kInt64)},
      {"empty", torch::zeros({0, 3})},
      {"d", torch::randn({2, 2, 2}).to(torch::kFloat16)}};
  const std::string want = one_shot_bytes(tensors);
  {
    aha::SafetensorsWriter out(dir_ / "streamed.safetensors", aha::safetensors_specs(tensors));
    for (const auto& [name, t] : tensors) out.write(name, t);
    EXPECT_FALSE(fs::exists(dir_ / "streamed.safetensors")) << "renamed into place only by commit()";
    out.commit();
  }
  EXPECT_TRUE(aha::read_file(dir_ / "streamed.safetensors") == want);
  aha::save_safetensors(dir_ / "one.safetensors", tensors);
  EXPECT_TRUE(aha::read_file(dir_ / "one.safetensors") == want);

  // Files of at most 64 bytes of data: a (60), b (48), c and empty (56), d (16).
  aha::CheckpointWriter sharded(dir_ / "sharded", aha::safetensors_specs(tensors), 64);
  for (const auto& [name, t] : tensors) sharded.write(name, t);
  sharded.commit();
  const std::vector<std::vector<size_t>> files = {{0}, {1}, {2, 3}, {4}};
  for (size_t f = 0; f < files.size(); ++f) {
    std::vector<std::pair<std::string, torch::Tensor>> part;
    for (size_t i : files[f]) part.push_back(tensors[i]);
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", f + 1, files.size());
    EXPECT_TRUE(aha::read_file(dir_ / "sharded" / name) == one_shot_bytes(part)) << name;
  }
  aha::save_checkpoint_tensors(dir_ / "whole", tensors, 64);
  for (const char* name : {"model-00001-of-00004.safetensors", "model-00004-of-00004.safetensors",
                           "model.safetensors.index.json"})
    EXPECT_EQ(aha::read_file(dir_ / "sharded" / name), aha::read_file(dir_ / "whole" / name)) << name;
  EXPECT_NE(aha::read_file(dir_ / "sharded" / "model.safetensors.index.json").find("\"empty\": \"model-00003-of-00004"),
            std::string::npos);
}

// A tensor out of the header's order, of another dtype or shape, or one never written is an
// error naming it, and leaves no file (nor a temporary) behind.
TEST_F(Safetensors, StreamedWriterRefusesWhatTheHeaderDoesNotList) {
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = {{"a", torch::zeros({2})}, {"b", torch::zeros({3})}};
  auto error_of = [&](const std::function<void(aha::SafetensorsWriter&)>& f) {
    std::string message;
    try {
      aha::SafetensorsWriter out(dir_ / "x.safetensors", aha::safetensors_specs(tensors));
      f(out);
    } catch (const aha::Error& e) {
      message = e.what();
    }
    return message;
  };
  EXPECT_NE(error_of([](auto& out) { out.write("b", torch::zeros({3})); }).find("'b' (Float [3]) comes where the header lists 'a' (Float [2])"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& out) { out.write("a", torch::zeros({2}, torch::kFloat64)); }).find("lists 'a'"), std::string::npos);
  EXPECT_NE(error_of([](auto& out) { out.write("a", torch::zeros({1, 2})); }).find("lists 'a'"), std::string::npos);
  EXPECT_NE(error_of([](auto& out) {
              out.write("a", torch::zeros({2}));
              out.commit();
            }).find("tensor 'b' was never written (1 of 2)"),
            std::string::npos);
  EXPECT_NE(error_of([](auto& out) {
              out.write("a", torch::zeros({2}));
              out.write("b", torch::zeros({3}));
              out.write("c", torch::zeros({3}));
            }).find("'c' comes after the 2 tensors"),
            std::string::npos);
  size_t left = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++left;
  EXPECT_EQ(left, 0u);
}
