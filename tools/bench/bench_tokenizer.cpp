// bench_tokenizer: encode throughput (MB/s of UTF-8 input) of aha's Tokenizer, one thread and
// all threads, on documents from a JSONL file ({"text": ...} per line). Run it through
// tokenizer_throughput.py, which measures Hugging Face tokenizers on the same documents in
// the same run and prints the ratios.
//
//   bench_tokenizer --model DIR --docs FILE [--repeat 3] [--threads N]
// Prints one JSON object: {"bytes", "tokens", "checksum", "single_mb_s", "threads", "multi_mb_s"};
// tokens and checksum let the driver check that both sides produced the same ids.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/files.h"
#include "core/json.h"
#include "core/thread_pool.h"
#include "policy/tokenizer/tokenizer.h"

namespace {

std::vector<std::string> read_docs(const std::string& path) {
  std::string data = aha::read_file(path);
  std::vector<std::string> docs;
  size_t start = 0;
  while (start < data.size()) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) end = data.size();
    if (end > start) {
      auto line = aha::json::parse(std::string_view(data).substr(start, end - start), path);
      docs.emplace_back(line["text"].GetString(), line["text"].GetStringLength());
    }
    start = end + 1;
  }
  return docs;
}

// --model DIR --docs FILE [--repeat N] [--threads N]
std::map<std::string, std::string> parse_args(int argc, char** argv) {
  std::map<std::string, std::string> args{{"repeat", "3"},
                                          {"threads", std::to_string(std::thread::hardware_concurrency())}};
  for (int i = 1; i < argc; i += 2) {
    std::string name = argv[i];
    if (name.rfind("--", 0) != 0 || i + 1 >= argc)
      throw aha::Error("usage: bench_tokenizer --model DIR --docs FILE [--repeat N] [--threads N]");
    args[name.substr(2)] = argv[i + 1];
  }
  for (const auto& [name, value] : args)
    if (name != "model" && name != "docs" && name != "repeat" && name != "threads")
      throw aha::Error("unknown option --" + name + " (options: --model, --docs, --repeat, --threads)");
  if (!args.count("model") || !args.count("docs")) throw aha::Error("--model and --docs are required");
  return args;
}

int positive(const std::string& name, const std::string& value) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(value, &used);
  } catch (const std::exception&) {
  }
  if (n < 1 || used != value.size()) throw aha::Error("--" + name + " expects a positive integer, got '" + value + "'");
  return n;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto args = parse_args(argc, argv);
    aha::Tokenizer tok = aha::Tokenizer::from_dir(args["model"]);
    std::vector<std::string> docs = read_docs(args["docs"]);
    int repeat = positive("repeat", args["repeat"]);
    auto threads = static_cast<size_t>(positive("threads", args["threads"]));
    size_t bytes = 0;
    for (const auto& d : docs) bytes += d.size();

    // Warm-up pass (fills the word cache, as the Hugging Face side's warm-up does), and the
    // checksum of every id.
    uint64_t tokens = 0, checksum = 1469598103934665603ull;
    for (const auto& d : docs) {
      for (aha::TokenId id : tok.encode(d)) {
        ++tokens;
        checksum = (checksum ^ static_cast<uint64_t>(id)) * 1099511628211ull;
      }
    }
    double best_single = 1e30;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      size_t sink = 0;
      for (const auto& d : docs) sink += tok.encode(d).size();
      best_single = std::min(best_single, seconds_since(t0));
      if (sink != tokens) throw aha::Error("bench_tokenizer: token count changed between passes");
    }
    aha::ThreadPool pool(threads);
    double best_multi = 1e30;
    for (int r = 0; r < repeat; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      auto all = tok.encode_batch(docs, true, &pool);
      best_multi = std::min(best_multi, seconds_since(t0));
    }
    double mb = static_cast<double>(bytes) / 1e6;
    std::printf("{\"bytes\": %zu, \"tokens\": %llu, \"checksum\": \"%016llx\", \"single_mb_s\": %.3f, "
                "\"threads\": %zu, \"multi_mb_s\": %.3f}\n",
                bytes, static_cast<unsigned long long>(tokens), static_cast<unsigned long long>(checksum),
                mb / best_single, threads, mb / best_multi);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_tokenizer: " << e.what() << "\n";
    return 1;
  }
}
