// Benchmark: weight sync from the learner to a rollout worker (policy/parallel/weight_sync.h),
// the broadcast asynchronous GRPO's split layout makes after every learner update. Run one
// process per rank with torchrun's variables (tools/bench/gpu_weight_sync.sh starts 2 on one
// host, rank 0 the learner on cuda:0, rank 1 the worker on cuda:1):
//
//   bench_weight_sync --model CONFIG.json [--dtype bfloat16] [--bucket-mb 64] [--repeats 5]
//                     [--link-gbs 450] [--backend nccl|gloo] [--device cuda|cpu]
//
// Each rank builds the model of CONFIG (random weights, seed = rank, so the receivers' differ
// until synced) in --dtype on its device; rank 0 broadcasts its parameters and buffers
// --repeats times after one warm-up. Rank 0 prints one line per bucket size measured: bytes,
// buckets, the median seconds, GB/s, and the fraction of --link-gbs (GB/s one way of the link
// between the two devices; an H200's NVLink 4 is 450 GB/s each way), i.e. the time the link's
// bound allows over the time taken. The last line checks that the receivers hold the root's
// weights (a checksum per rank compared through an all-reduce).
#include <torch/cuda.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "policy/model/model_config.h"
#include "policy/model/model_io.h"
#include "policy/parallel/communicator.h"
#include "policy/parallel/weight_sync.h"
#include "tools/cli.h"

int main(int argc, char** argv) {
  try {
    aha::cli::Args args(std::vector<std::string>(argv + 1, argv + argc),
                        aha::cli::Spec::of_names({"model", "dtype", "bucket-mb*", "repeats", "link-gbs", "backend", "device"}),
                        "bench_weight_sync");
    auto world = aha::parallel::world_from_environment();
    aha::require(world.distributed(), "bench_weight_sync: run it with torchrun's variables (RANK, WORLD_SIZE, ...), "
                                      "2 ranks or more: see tools/bench/gpu_weight_sync.sh");
    const std::string device_kind = args.get("device", torch::cuda::is_available() ? "cuda" : "cpu");
    const torch::Device device = device_kind == "cuda" ? torch::Device(torch::kCUDA, static_cast<int8_t>(world.local_rank))
                                                       : torch::Device(torch::kCPU);
    aha::parallel::ParallelOptions options;
    options.backend = aha::parallel::parse_backend(args.get("backend", "auto"));
    auto comm = aha::parallel::Communicator::connect(world, options, device);
    const auto config = aha::ModelConfig::from_file(args.required("model"));
    const auto dtype = args.get("dtype", "bfloat16") == "float32" ? torch::kFloat32 : torch::kBFloat16;
    auto model = aha::init_model(config, static_cast<uint64_t>(world.rank), dtype, device);
    std::vector<torch::Tensor> tensors;
    for (auto& [name, t] : model->named_parameters()) tensors.push_back(t);
    for (auto& [name, t] : model->named_buffers()) tensors.push_back(t);
    const int64_t repeats = args.get_int("repeats", 5, 1, 1000);
    const double link = args.get_double("link-gbs", 450.0);
    std::vector<std::string> sizes = args.list("bucket-mb");
    if (sizes.empty()) sizes = {"16", "64", "256"};
    for (const auto& text : sizes) {
      const int64_t bucket = static_cast<int64_t>(std::stod(text) * (1 << 20));
      aha::parallel::sync_weights(*comm, tensors, 0, 0, bucket);  // warm-up: connections, buffers
      std::vector<double> seconds;
      aha::parallel::WeightSyncResult r;
      for (int64_t i = 0; i < repeats; ++i) {
        comm->patient_barrier("start of a timed sync");
        r = aha::parallel::sync_weights(*comm, tensors, i + 1, 0, bucket);
        // The receivers' time is the sync's: the root's broadcast may return before delivery.
        auto slowest = comm->all_reduce({r.seconds}, c10d::ReduceOp::MAX, "all-reduce of sync times");
        seconds.push_back(slowest[0]);
      }
      std::sort(seconds.begin(), seconds.end());
      const double median = seconds[seconds.size() / 2];
      const double gbs = double(r.bytes) / median / 1e9;
      if (world.rank == 0)
        std::printf("weight_sync model=%s dtype=%s ranks=%d backend=%s bucket_mb=%s bytes=%lld buckets=%lld "
                    "seconds=%.4f GB/s=%.1f link_bound_GB/s=%.1f fraction_of_bound=%.3f\n",
                    config.model_type.c_str(), dtype == torch::kFloat32 ? "float32" : "bfloat16", comm->size(),
                    comm->backend_name().c_str(), text.c_str(), static_cast<long long>(r.bytes),
                    static_cast<long long>(r.buckets), median, gbs, link, gbs / link);
    }
    // Correctness: every rank's checksum equals the root's.
    double sum = 0;
    for (const auto& t : tensors) sum += t.to(torch::kFloat64).sum().item<double>();
    auto range = comm->all_reduce({sum, -sum}, c10d::ReduceOp::MAX, "all-reduce of checksums");
    if (world.rank == 0)
      std::printf("weight_sync check: receivers %s the root's weights\n",
                  range[0] == -range[1] ? "hold" : "DO NOT hold");
    comm->finish();
    return range[0] == -range[1] ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "bench_weight_sync: " << e.what() << "\n";
    return 1;
  }
}
