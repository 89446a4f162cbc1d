// Per-tensor kernels: updates whose math needs whole-tensor reductions (norms, row and column
// means, matrix products). Each tensor is one job, computed start to end by one worker in a
// fixed order, so the result does not depend on which worker runs it or on how many there are.
// A launch runs through the chunk scheduler of COptimKernels.h with one job per chunk: the
// `optim_tensor` of a job has `count` 1 in the plan's offsets, `scalars` pointing at the job's
// description below and `kernel` from the functions below.
#ifndef COPTIM_TENSOR_KERNELS_H
#define COPTIM_TENSOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Scratch memory shared by the workers of a launch: `slots` blocks of `slot_bytes` (each
/// 64-byte aligned). A job takes a free block for its duration; a launch never runs more jobs
/// at once than it has workers, so `slots` = workers always suffices.
typedef struct optim_scratch_pool {
    void *memory;
    int64_t slot_bytes;
    int32_t *busy;  // one flag per slot, claimed atomically
    int32_t slots;
    int32_t reserved;
} optim_scratch_pool;

// Adafactor (Sources/COptimKernels/Adafactor.cpp). State slots: 0 row_var, 1 col_var (factored
// parameters), 2 variance (parameters with fewer than two dimensions).
enum {
    OPTIM_ADAFACTOR_MAXIMIZE = 1u << 0,
    OPTIM_ADAFACTOR_WEIGHT_DECAY = 1u << 1,
};
typedef struct optim_adafactor_job {
    int64_t count;    // elements of the parameter
    int64_t batches;  // product of the dimensions before the last two (factored), else 1
    int64_t rows;     // second-to-last extent; 0 when the parameter is not factored
    int64_t cols;     // last extent (factored)
    double one_minus_beta2;  // t^beta2_decay
    double rho;              // min(lr, 1 / sqrt(t))
    double eps1;
    double eps2;
    double decay_factor;     // 1 - lr * weight_decay
    double d;
    uint32_t flags;
    uint32_t reserved;
    const optim_scratch_pool *scratch;
} optim_adafactor_job;

// Muon (Sources/COptimKernels/Muon.cpp). State slot 0: momentum_buffer.
enum {
    OPTIM_MUON_NESTEROV = 1u << 0,
};
typedef struct optim_muon_job {
    int64_t rows;
    int64_t cols;
    double one_minus_momentum;
    double momentum;
    double a, b, c;      // Newton-Schulz coefficients
    double eps;
    double decay_factor; // 1 - lr * weight_decay
    double negative_lr;  // -(lr adjusted to the shape)
    int32_t ns_steps;
    uint32_t flags;
    const optim_scratch_pool *scratch;
} optim_muon_job;

/// The job function of Adafactor or Muon for a dtype and instruction-set tier.
optim_segment_fn optim_adafactor_kernel(optim_dtype dtype, optim_isa isa);
optim_segment_fn optim_muon_kernel(optim_dtype dtype, optim_isa isa);

/// Scratch bytes a job needs: Adafactor's column sums of a factored parameter (0 when not
/// factored), Muon's Newton-Schulz matrices.
int64_t optim_adafactor_scratch_bytes(int64_t rows, int64_t cols);
int64_t optim_muon_scratch_bytes(int64_t rows, int64_t cols);

#ifdef __cplusplus
}
#endif

#endif
