// The rendezvous store served by a launcher for ranks on its machine, as torchrun's agent serves
// its own: a c10d TCPStore whose port the kernel picks as the socket starts listening. A port
// found free, released and bound again later by rank 0 can be taken in between by any process
// on the machine (a parallel test's outgoing connections draw from the same range); this one is
// never free for another process to take.
//
// Contract:
// - The constructor serves the store at once (c10d listens on every address) and port() says
//   where: the ranks' MASTER_PORT, with MASTER_ADDR=127.0.0.1 and TORCHELASTIC_USE_AGENT_STORE=
//   True (World::agent_store) so that rank 0 connects to it rather than serving one itself.
//   Throws aha::Error when it cannot.
// - The store lives as long as this object: keep it until every rank that uses it is done (its
//   Communicator gone or its process reaped). Its socket is closed in processes this one execs.
#pragma once
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace aha::parallel {

class StoreHost {
 public:
  StoreHost();
  int port() const { return store_->getPort(); }

 private:
  c10::intrusive_ptr<c10d::TCPStore> store_;
};

}  // namespace aha::parallel
