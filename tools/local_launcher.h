// `aha train --nproc-per-node G`: starts G ranks of this same program on this machine, as
// torchrun would (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
// MASTER_PORT and TORCHELASTIC_USE_AGENT_STORE=True in each one's environment), for users
// without Python. Like torchrun's agent, the launcher serves the ranks' rendezvous store
// (store_host.h) until they have all exited, so no other process can take its port first.
//
// The ranks get this process's own arguments (/proc/self/cmdline) without --nproc-per-node.
// When one rank fails (non-zero exit or a signal) the others get 5 s to stop by themselves (they
// notice through the broken collective or the heartbeat, and say so), then SIGTERM, then
// SIGKILL 15 s later; Ctrl-C (SIGINT) and SIGTERM to the launcher reach every rank. The launcher
// exits with the first failing rank's status (128 + signal for a signal), 0 when all succeed.
#pragma once

namespace aha {

int launch_local_ranks(int nproc);

}  // namespace aha
