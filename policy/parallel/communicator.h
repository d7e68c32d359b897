// A rank's connection to its world: the c10d rendezvous (TCPStore on MASTER_ADDR:MASTER_PORT,
// served by rank 0, or by the launcher: World::agent_store), one c10d backend for tensor
// collectives (ProcessGroupNCCL when every rank drives a GPU, ProcessGroupGloo otherwise, or as
// chosen), and the heartbeat (heartbeat.h).
//
// Every collective is called in the same order on every rank (c10d's rule). A collective that
// fails or times out throws aha::Error naming the operation, this rank's activity and, from the
// heartbeats, the rank that died or hung. A single process never builds a Communicator: code
// takes a null pointer as "world size 1" and skips every collective.
#pragma once
#include <torch/torch.h>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "policy/parallel/world.h"

namespace aha::parallel {

enum class BackendKind { automatic, gloo, nccl };
// "auto", "gloo" or "nccl"; throws aha::Error naming the choices otherwise.
BackendKind parse_backend(const std::string& name);
// Whether this build can make the backend (Gloo needs its headers at build time, NCCL a CUDA
// build with nccl.h).
bool backend_available(BackendKind kind);

struct ParallelOptions {
  BackendKind backend = BackendKind::automatic;
  // Collectives (and the rendezvous) that take longer fail with an error.
  double timeout_seconds = 600;
  // A rank silent for this long is dead or hung: the others stop (heartbeat.h).
  double heartbeat_timeout_seconds = 60;
  double heartbeat_interval_seconds = 1;
  // Gradient buckets for the all-reduce overlapped with backward (gradient_sync.h).
  int64_t bucket_megabytes = 25;
};

class Heartbeat;

class Communicator {
 public:
  // Rendezvous with the other ranks of `world` (which must be distributed) and build the
  // backend. `device` is the device this rank trains on: NCCL needs every rank on a CUDA
  // device; automatic picks NCCL only when every rank is on one (agreed through the store).
  static std::shared_ptr<Communicator> connect(const World& world, const ParallelOptions& options,
                                               torch::Device device);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return world_.rank; }
  int size() const { return world_.world_size; }
  const World& world() const { return world_; }
  const ParallelOptions& options() const { return options_; }
  std::string backend_name() const;
  // Where collective tensors must live: the CUDA device under NCCL, the CPU under Gloo.
  torch::Device device() const { return comm_device_; }

  // In place on every rank; `t` may live anywhere (it is copied to device() and back if needed).
  void all_reduce(torch::Tensor& t, c10d::ReduceOp op = c10d::ReduceOp::SUM, const std::string& what = "all-reduce");
  std::vector<double> all_reduce(std::vector<double> values, c10d::ReduceOp op, const std::string& what);
  void broadcast(torch::Tensor& t, int root, const std::string& what = "broadcast");
  // Asynchronous all-reduce of tensors already on device(); finish with wait().
  c10::intrusive_ptr<c10d::Work> all_reduce_async(std::vector<torch::Tensor>& tensors, c10d::ReduceOp op);
  // Asynchronous sum of `t` (on device(), contiguous) into rank `root`'s `t`; the other ranks'
  // `t` is left unspecified. Finish with wait(). (ZeRO-2: each gradient range to its owner.)
  c10::intrusive_ptr<c10d::Work> reduce_async(torch::Tensor& t, int root);
  // Asynchronous broadcast of rank `root`'s `t` (on device(), contiguous) into every rank's `t`.
  // Finish with wait(). (ZeRO-3: a block's gather, prefetched while the previous block computes.)
  c10::intrusive_ptr<c10d::Work> broadcast_async(torch::Tensor& t, int root);
  // Every rank's `mine` (the same shape on every rank), in rank order, on device().
  std::vector<torch::Tensor> all_gather(const torch::Tensor& mine, const std::string& what = "all-gather");
  // All-to-all of rows (expert parallelism): `input` [sum(send_rows), ...] is cut into
  // consecutive blocks of send_rows[r] rows, block r going to rank r; the result holds
  // recv_rows[r] rows from rank r, in rank order, on device(). Every rank's send_rows[r] must
  // equal rank r's recv_rows[this rank] (exchange the counts first); zero rows are allowed.
  torch::Tensor all_to_all(const torch::Tensor& input, const std::vector<int64_t>& send_rows,
                           const std::vector<int64_t>& recv_rows, const std::string& what = "all-to-all");
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);

  // Waits for every rank without a collective timeout (rank 0 may evaluate or write a
  // checkpoint for long); only the heartbeat ends it, when a rank dies or hangs.
  void patient_barrier(const std::string& what);

  // For the others' error messages (heartbeat.h), e.g. "step 3: sampling".
  void set_activity(const std::string& what);
  // Tells the others why this rank stops (call before rethrowing an error).
  void publish_failure(const std::string& message);
  // Normal end: stops the heartbeat; rank 0, when it serves the store, waits until every rank
  // has finished with it.
  void finish();

 private:
  Communicator();
  [[noreturn]] void fail(const std::string& what, const std::string& cause);
  // Rank 0 serves the rendezvous store unless the launcher does.
  bool serves_store() const { return world_.rank == 0 && !world_.agent_store; }

  World world_;
  ParallelOptions options_;
  torch::Device comm_device_ = torch::kCPU;
  BackendKind kind_ = BackendKind::gloo;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::unique_ptr<Heartbeat> heartbeat_;
  int64_t barriers_ = 0;
  bool finished_ = false;
};

// Rows [begin, end) of `count` that rank `rank` of `world_size` takes: contiguous, sizes
// differing by at most one, lower ranks first.
std::pair<int64_t, int64_t> share_of(int64_t count, int rank, int world_size);

}  // namespace aha::parallel
