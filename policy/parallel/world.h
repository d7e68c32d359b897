// The world a process belongs to, read from the launcher's environment: torchrun's variables
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT and
// TORCHELASTIC_USE_AGENT_STORE) or those Slurm's
// srun sets for each task (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, SLURM_NODEID,
// SLURM_STEP_TASKS_PER_NODE, SLURM_STEP_NODELIST, SLURM_JOB_ID).
//
// Rules:
// - torchrun: any of RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE set means all six must be;
//   the missing ones are named in the error. TORCHELASTIC_USE_AGENT_STORE ("True", "true" or
//   "1"; "False", "false", "0" or unset for no) says the launcher itself serves the rendezvous
//   store on MASTER_PORT (torchrun's agent store; aha's own launchers host it with store_host.h):
//   then rank 0 connects to it like every other rank.
// - Slurm: only inside a job step (srun sets SLURM_STEP_ID and SLURM_PROCID; a batch script
//   outside srun is one process). MASTER_ADDR defaults to the step's first node and
//   MASTER_PORT to 29500 + SLURM_JOB_ID % 1000, so concurrent jobs on one node differ. Rank 0
//   serves the rendezvous store (srun runs no agent that could).
// - Neither: one process, world size 1, and no process group at all (the single-process path).
// - Values are checked: integers, 0 <= rank < world size, 0 <= local rank < local world size
//   <= world size, a port in 1..65535, a yes or no; an error names the variable and what it holds.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace aha::parallel {

struct World {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;  // empty for a single process
  int master_port = 0;
  std::string launcher = "single";  // "single", "torchrun" or "slurm"
  // The launcher serves the rendezvous store on MASTER_PORT (torchrun's agent store), so rank 0
  // connects to it instead of serving it. A port that the launcher holds open from the start
  // leaves no moment in which another process could take it before rank 0 listens.
  bool agent_store = false;

  bool distributed() const { return world_size > 1; }
  bool is_main() const { return rank == 0; }
};

// Looks one variable up; nullopt when unset.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;

World world_from_environment(const Environment& env);
World world_from_environment();  // the process's own environment

// The first host of a Slurm host list: "gpu[03-05,9],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);
// Tasks on node `node` from a Slurm tasks-per-node list: "2(x3),1", node 3 -> 1.
int slurm_tasks_on_node(const std::string& tasks_per_node, int node);

}  // namespace aha::parallel
