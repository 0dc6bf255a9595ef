// The MPI communicator (library zero_runtime_mpi). Separate from the core
// runtime so a single-rank build and its users never need MPI.
#ifndef ZERO_MPI_COMMUNICATOR_H
#define ZERO_MPI_COMMUNICATOR_H

#include <memory>

#include "zero/runtime.h"

namespace zero {

// Initializes MPI (MPI_Init_thread) over MPI_COMM_WORLD; MPI_Finalize runs
// when the communicator is destroyed.
Status make_mpi_communicator(int* argc, char*** argv, std::unique_ptr<Communicator>* comm);

// This rank's index among the ranks on its node (MPI_Comm_split_type
// MPI_COMM_TYPE_SHARED); needs make_mpi_communicator first.
Status mpi_local_rank(int* local_rank);

// Ends every rank of the job with exit code `code` (MPI_Abort).
[[noreturn]] void mpi_abort(int code);

}  // namespace zero

#endif  // ZERO_MPI_COMMUNICATOR_H
