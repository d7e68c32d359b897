// The ZeRO-3 checkpoint's model directories as they were written before the save was streamed
// (zero3_save_test.cpp compares the streamed save's bytes with them): every rank gathers the
// whole float32 weights (gather_all; with expert parallelism the experts all-gathered whole),
// the policy's and the reference's, and rank 0 writes them with save_model, as save_checkpoint
// did. Collective; every rank holds its shard (and its experts' slice) again after.
#pragma once
#include <filesystem>

#include "policy/learner/expert_parallel.h"
#include "policy/learner/fully_sharded.h"
#include "policy/learner/grpo_trainer.h"
#include "policy/model/model_io.h"
#include "policy/parallel/communicator.h"

namespace aha::parallel::testing {

inline void save_whole_as_before(policy::GrpoTrainer& trainer, Communicator& comm, const std::filesystem::path& dir) {
  auto* sharded = trainer.fully_sharded();
  auto* reference = trainer.reference_sharded();
  sharded->gather_all();
  if (reference) reference->gather_all();
  if (auto* experts = trainer.expert_parallel()) experts->gather_whole(nullptr);
  if (auto* experts = trainer.reference_expert_parallel()) experts->gather_whole(nullptr);
  if (comm.rank() == 0) {
    save_model(trainer.policy(), dir / "model", {.made_by = "train"});
    if (trainer.reference()) save_model(*trainer.reference(), dir / "reference", {.made_by = "train"});
  }
  if (auto* experts = trainer.expert_parallel()) experts->scatter_back(nullptr);
  if (auto* experts = trainer.reference_expert_parallel()) experts->scatter_back(nullptr);
  sharded->release_all();
  if (reference) reference->release_all();
  comm.patient_barrier("rank 0 writing the whole save");
}

}  // namespace aha::parallel::testing
