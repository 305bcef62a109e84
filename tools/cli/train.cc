// tilestage train: data-parallel ViT training on a tile store, fed by the staging loader.
//
//   mpirun -np N tilestage train --store DIR --model vit-mae|vit-regress|vit-classify
//       [--eval-store DIR | --eval-fraction F] [--preset tiny|small --dim --depth --heads --patch
//       --mlp-ratio] [--epochs --batch --lr --seed --checkpoint-dir --resume
//       --allreduce overlap|blocking --json FILE --mllog FILE ...]
//
// --batch is the global batch (split evenly across ranks), so a run gives the same updates
// whatever the rank count. Outside mpirun it runs as one rank.
#include <tbb/global_control.h>

#include <iostream>
#include <memory>

#include "tiling/comm/communicator.h"
#include "tiling/comm/mpi_env.h"
#include "tools/cli/command.h"
#include "tools/cli/train_options.h"
#include "trainer/train_job.h"

namespace tilestage::cli {
namespace {

// Runs the job on every rank; returns the process exit code.
int Train(TrainArgs& args) {
  auto mpi = MpiSession::Start();
  if (!mpi.ok()) return Report(mpi.status());
  std::unique_ptr<tbb::global_control> threads;
  if (args.job.threads > 0) {
    threads = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    args.job.threads);
  }
  auto comm = NewMpiCommunicator();
  if (!comm.ok()) return Report(comm.status());
  Status status = FinishTrainArgs(&args);
  if (status.ok()) status = trainer::RunTrainJob(args.job, **comm, std::cout, std::cerr);
  const int rank = (*comm)->rank();
  if (!status.ok() && (*comm)->size() > 1) {
    // Other ranks may be blocked in a collective: end the whole job with the message.
    std::cerr << "tilestage train (rank " << rank << "): " << status.ToString() << "\n";
    (*comm)->Abort(2);
  }
  return (rank == 0 || !status.ok()) ? Report(status) : 0;
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto all_args = std::make_shared<TrainArgs>();
  CLI::App* cmd = root.add_subcommand(
      "train",
      "Train a ViT (MAE / regression / classification) on a tile store, data parallel "
      "under mpirun");
  AddTrainOptions(cmd, all_args.get())->required();
  cmd->callback([all_args, exit_code] { *exit_code = Train(*all_args); });
});

}  // namespace
}  // namespace tilestage::cli
