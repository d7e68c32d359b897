#include "policy/parallel/communicator.h"

#include <torch/cuda.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef AHA_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef AHA_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <thread>

#include "core/error.h"
#include "policy/parallel/heartbeat.h"

namespace aha::parallel {
namespace {

using std::chrono::milliseconds;

milliseconds to_ms(double seconds) { return milliseconds(static_cast<int64_t>(seconds * 1000.0)); }

std::string kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::gloo: return "gloo";
    case BackendKind::nccl: return "nccl";
  }
  return "?";
}

// Every rank says whether it is on a GPU; NCCL only when all are (else Gloo everywhere, so the
// ranks never disagree on the backend).
BackendKind agree_on_backend(c10d::Store& store, const World& world, bool on_gpu) {
  const std::string mine = "aha/on_gpu/" + std::to_string(world.rank);
  store.set(mine, std::vector<uint8_t>{static_cast<uint8_t>(on_gpu ? '1' : '0')});
  bool all = true;
  for (int r = 0; r < world.world_size; ++r) {
    auto v = store.get("aha/on_gpu/" + std::to_string(r));  // waits for that rank (store timeout)
    all = all && !v.empty() && v[0] == '1';
  }
  return all && backend_available(BackendKind::nccl) ? BackendKind::nccl : BackendKind::gloo;
}

}  // namespace

BackendKind parse_backend(const std::string& name) {
  if (name == "auto") return BackendKind::automatic;
  if (name == "gloo") return BackendKind::gloo;
  if (name == "nccl") return BackendKind::nccl;
  throw Error("backend '" + name + "' is not one of auto, gloo, nccl");
}

bool backend_available(BackendKind kind) {
  switch (kind) {
    case BackendKind::automatic: return backend_available(BackendKind::gloo) || backend_available(BackendKind::nccl);
#ifdef AHA_WITH_GLOO
    case BackendKind::gloo: return true;
#else
    case BackendKind::gloo: return false;
#endif
#ifdef AHA_WITH_NCCL
    case BackendKind::nccl: return true;
#else
    case BackendKind::nccl: return false;
#endif
  }
  return false;
}

std::pair<int64_t, int64_t> share_of(int64_t count, int rank, int world_size) {
  const int64_t base = count / world_size, extra = count % world_size;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

Communicator::Communicator() = default;

Communicator::~Communicator() {
  if (!finished_ && serves_store() && heartbeat_) {
    // Leaving with an error: this rank serves the store, so it stays a few heartbeats for the
    // others to read why (its published failure) instead of a bare "store unreachable".
    std::this_thread::sleep_for(to_ms(std::min(3.0, 4 * options_.heartbeat_interval_seconds)));
  }
  heartbeat_.reset();
  backend_.reset();
  store_.reset();
}

std::shared_ptr<Communicator> Communicator::connect(const World& world, const ParallelOptions& options,
                                                    torch::Device device) {
  require(world.distributed(), "Communicator::connect: a world of one process needs no communicator");
  require(options.timeout_seconds > 0 && options.heartbeat_timeout_seconds > 0 && options.heartbeat_interval_seconds > 0,
          "parallel options: timeouts and the heartbeat interval must be > 0");
  require(options.bucket_megabytes > 0, "parallel options: bucket_megabytes must be > 0");
  if (options.backend != BackendKind::automatic && !backend_available(options.backend))
    throw Error("backend " + kind_name(options.backend) + " is not in this build of aha" +
                (options.backend == BackendKind::gloo
                     ? std::string(" (it needs Gloo's headers at build time: Debian's libgloo-dev)")
                     : std::string(" (it needs a CUDA build with NCCL's nccl.h)")));
  if (options.backend == BackendKind::nccl && !device.is_cuda())
    throw Error("backend nccl needs every rank on a CUDA device, and rank " + std::to_string(world.rank) + " is on " +
                device.str());
  if (device.is_cuda() && world.local_world_size > static_cast<int>(torch::cuda::device_count()))
    throw Error("LOCAL_WORLD_SIZE=" + std::to_string(world.local_world_size) + " ranks on this node, but it has " +
                std::to_string(torch::cuda::device_count()) + " GPU(s): one rank drives one GPU");

  std::shared_ptr<Communicator> c(new Communicator());
  c->world_ = world;
  c->options_ = options;
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(world.master_port);
  store_options.isServer = c->serves_store();
  store_options.numWorkers = world.world_size;
  store_options.waitWorkers = false;
  store_options.timeout = to_ms(options.timeout_seconds);
  try {
    c->store_ = c10::make_intrusive<c10d::TCPStore>(world.master_addr, store_options);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(world.rank) + ": rendezvous with " + world.master_addr + ":" +
                std::to_string(world.master_port) + " failed (" + short_cause(e.what()) + ")");
  }
  // Everyone joins before anyone's silence counts (nodes may start minutes apart): the
  // rendezvous itself is bounded by the collective timeout.
  try {
    c->store_->add("aha/joined", 1);
    const auto deadline = std::chrono::steady_clock::now() + to_ms(options.timeout_seconds);
    int64_t joined = 0;
    while ((joined = c->store_->add("aha/joined", 0)) < world.world_size) {
      if (std::chrono::steady_clock::now() > deadline)
        throw Error("rank " + std::to_string(world.rank) + ": only " + std::to_string(joined) + " of " +
                    std::to_string(world.world_size) + " ranks joined at " + world.master_addr + ":" +
                    std::to_string(world.master_port) + " within " + std::to_string(int64_t(options.timeout_seconds)) +
                    " s (--dist-timeout)");
      std::this_thread::sleep_for(milliseconds(20));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(world.rank) + ": rendezvous with " + world.master_addr + ":" +
                std::to_string(world.master_port) + " failed (" + short_cause(e.what()) + ")");
  }
  c->heartbeat_ = std::make_unique<Heartbeat>(c->store_, world.rank, world.world_size,
                                              to_ms(options.heartbeat_interval_seconds),
                                              to_ms(options.heartbeat_timeout_seconds), /*stop_process=*/true,
                                              world.agent_store);
  c->heartbeat_->set_activity("connecting");
  try {
    c->kind_ = options.backend == BackendKind::automatic ? agree_on_backend(*c->store_, world, device.is_cuda())
                                                         : options.backend;
    if (c->kind_ == BackendKind::nccl) {
#ifdef AHA_WITH_NCCL
      c->comm_device_ = device;
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = to_ms(options.timeout_seconds);
      c->backend_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(c->store_, world.rank, world.world_size, nccl_options);
#endif
    } else {
#ifdef AHA_WITH_GLOO
      c->comm_device_ = torch::kCPU;
      auto gloo_options = c10d::ProcessGroupGloo::Options::create_default(to_ms(options.timeout_seconds));
      c->backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(c->store_, world.rank, world.world_size, gloo_options);
#else
      throw Error("this build of aha has no Gloo backend (it needs Gloo's headers at build time: Debian's libgloo-dev); "
                  "run with every rank on a GPU and --backend nccl");
#endif
    }
    require(c->backend_.defined(), "no backend was built");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    c->fail("building the " + kind_name(c->kind_) + " process group", e.what());
  }
  c->heartbeat_->set_activity("connected");
  return c;
}

std::string Communicator::backend_name() const { return kind_name(kind_); }

void Communicator::fail(const std::string& what, const std::string& cause) {
  const std::string activity = heartbeat_ ? heartbeat_->activity() : "";
  // Long enough for a peer that died just now to miss the heartbeats diagnose() looks for.
  const double interval = options_.heartbeat_interval_seconds;
  std::string why = heartbeat_ ? heartbeat_->diagnose(to_ms(std::max(3 * interval, 1.5) + 3 * interval)) : "";
  std::string message = "rank " + std::to_string(world_.rank) + ": " + what + " failed" +
                        (activity.empty() ? "" : " during " + activity) + ": " +
                        (why.empty() ? "" : why + "; ") + "(" + short_cause(cause) + ")";
  publish_failure(message);
  throw Error(message);
}

void Communicator::set_activity(const std::string& what) {
  if (heartbeat_) heartbeat_->set_activity(what);
}

void Communicator::publish_failure(const std::string& message) {
  if (heartbeat_) heartbeat_->publish_failure(message);
}

c10::intrusive_ptr<c10d::Work> Communicator::all_reduce_async(std::vector<torch::Tensor>& tensors, c10d::ReduceOp op) {
  c10d::AllreduceOptions o;
  o.reduceOp = op;
  o.timeout = to_ms(options_.timeout_seconds);
  try {
    return backend_->allreduce(tensors, o);
  } catch (const std::exception& e) {
    fail("all-reduce", e.what());
  }
}

c10::intrusive_ptr<c10d::Work> Communicator::reduce_async(torch::Tensor& t, int root) {
  std::vector<torch::Tensor> v = {t};
  c10d::ReduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  o.rootRank = root;
  o.rootTensor = 0;
  o.timeout = to_ms(options_.timeout_seconds);
  try {
    return backend_->reduce(v, o);
  } catch (const std::exception& e) {
    fail("reduce to rank " + std::to_string(root), e.what());
  }
}

c10::intrusive_ptr<c10d::Work> Communicator::broadcast_async(torch::Tensor& t, int root) {
  std::vector<torch::Tensor> v = {t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = to_ms(options_.timeout_seconds);
  try {
    return backend_->broadcast(v, o);
  } catch (const std::exception& e) {
    fail("broadcast from rank " + std::to_string(root), e.what());
  }
}

std::vector<torch::Tensor> Communicator::all_gather(const torch::Tensor& mine, const std::string& what) {
  std::vector<torch::Tensor> input = {mine.to(comm_device_).contiguous()};
  std::vector<std::vector<torch::Tensor>> output(1);
  for (int r = 0; r < world_.world_size; ++r) output[0].push_back(torch::empty_like(input[0]));
  c10d::AllgatherOptions o;
  o.timeout = to_ms(options_.timeout_seconds);
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = backend_->allgather(output, input, o);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  wait(work, what);
  return output[0];
}

torch::Tensor Communicator::all_to_all(const torch::Tensor& input, const std::vector<int64_t>& send_rows,
                                       const std::vector<int64_t>& recv_rows, const std::string& what) {
  require(send_rows.size() == size_t(world_.world_size) && recv_rows.size() == size_t(world_.world_size),
          what + ": one row count per rank expected");
  int64_t sent = 0, received = 0;
  for (auto n : send_rows) sent += n;
  for (auto n : recv_rows) received += n;
  require(input.dim() >= 1 && input.size(0) == sent, what + ": the input's rows differ from the send counts' sum");
  auto in = input.to(comm_device_).contiguous();
  auto out_sizes = in.sizes().vec();
  out_sizes[0] = received;
  auto out = torch::empty(out_sizes, in.options());
  // alltoall_base splits along dimension 0 in rows.
  std::vector<int64_t> out_splits = recv_rows, in_splits = send_rows;
  c10d::AllToAllOptions o;
  o.timeout = to_ms(options_.timeout_seconds);
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = backend_->alltoall_base(out, in, out_splits, in_splits, o);
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  wait(work, what);
  return out;
}

void Communicator::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  try {
    work->wait(to_ms(options_.timeout_seconds));
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
}

void Communicator::all_reduce(torch::Tensor& t, c10d::ReduceOp op, const std::string& what) {
  std::vector<torch::Tensor> v = {t.device() == comm_device_ && t.is_contiguous() ? t : t.to(comm_device_).contiguous()};
  wait(all_reduce_async(v, op), what);
  if (!v[0].is_same(t)) t.copy_(v[0]);
}

std::vector<double> Communicator::all_reduce(std::vector<double> values, c10d::ReduceOp op, const std::string& what) {
  if (values.empty()) return values;
  auto t = torch::tensor(values, torch::kFloat64);
  all_reduce(t, op, what);
  t = t.cpu();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void Communicator::broadcast(torch::Tensor& t, int root, const std::string& what) {
  std::vector<torch::Tensor> v = {t.device() == comm_device_ && t.is_contiguous() ? t : t.to(comm_device_).contiguous()};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = to_ms(options_.timeout_seconds);
  try {
    wait(backend_->broadcast(v, o), what);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
  if (!v[0].is_same(t)) t.copy_(v[0]);
}

void Communicator::patient_barrier(const std::string& what) {
  const std::string key = "aha/barrier/" + std::to_string(barriers_++);
  set_activity("waiting for " + what);
  try {
    store_->add(key, 1);
    while (store_->add(key, 0) < world_.world_size) {
      const std::string dead = heartbeat_->dead_peer();
      if (!dead.empty()) fail(what, dead);
      std::this_thread::sleep_for(milliseconds(20));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(what, e.what());
  }
}

void Communicator::finish() {
  if (finished_) return;
  finished_ = true;
  heartbeat_->finish();
  try {
    store_->add("aha/finished", 1);
    // The rank serving the store leaves only once every rank is done with it.
    if (serves_store()) {
      const auto deadline = std::chrono::steady_clock::now() + to_ms(options_.heartbeat_timeout_seconds);
      while (store_->add("aha/finished", 0) < world_.world_size && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(milliseconds(20));
    }
  } catch (...) {
  }
}

}  // namespace aha::parallel
