#include "policy/parallel/store_host.h"

#include "core/error.h"
#include "policy/parallel/heartbeat.h"

namespace aha::parallel {

StoreHost::StoreHost() {
  c10d::TCPStoreOptions options;
  options.port = 0;  // the kernel's choice, made while binding: nobody else can hold it
  options.isServer = true;
  options.waitWorkers = false;
  try {
    store_ = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", options);
  } catch (const std::exception& e) {
    throw Error("cannot serve the rendezvous store on 127.0.0.1 (" + short_cause(e.what()) + ")");
  }
}

}  // namespace aha::parallel
