// The C interface of the kernel target. Only `Sources/Optim/Engine/Kernels.swift` imports it.
//
// Why C (compiled as C++): Swift 6.3 has no per-function target attribute, so Swift code in a
// package built with a plain `swift build -c release` runs SSE2 code. The element loops live
// here, compiled three times (x86-64 baseline, x86-64-v3, x86-64-v4) and chosen at run time.
#ifndef COPTIMKERNELS_H
#define COPTIMKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Element storage types. The math runs in float for float32, float16 and bfloat16, in double
/// for float64.
typedef enum optim_dtype {
    OPTIM_DTYPE_FLOAT32 = 0,
    OPTIM_DTYPE_FLOAT64 = 1,
    OPTIM_DTYPE_FLOAT16 = 2,
    OPTIM_DTYPE_BFLOAT16 = 3,
} optim_dtype;

/// Instruction-set tiers of the element loops. Every tier computes the same bits: the loops
/// never contract a*b+c into a fused multiply-add, and the half-type conversions are exact
/// integer code in every tier.
typedef enum optim_isa {
    OPTIM_ISA_BASELINE = 0,  // x86-64 (SSE2), or the target's default elsewhere
    OPTIM_ISA_AVX2 = 1,      // x86-64-v3: AVX2, FMA, F16C, BMI2
    OPTIM_ISA_AVX512 = 2,    // x86-64-v4: AVX-512 F/BW/DQ/VL, 512-bit vectors
} optim_isa;

/// Element-wise update rules the engine can run.
typedef enum optim_rule {
    OPTIM_RULE_SGD = 0,
    OPTIM_RULE_ADAM = 1,
    OPTIM_RULE_BANDWIDTH_PROBE = 2,
    OPTIM_RULE_RMSPROP = 3,
    OPTIM_RULE_ADAGRAD = 4,
    OPTIM_RULE_ADADELTA = 5,
    OPTIM_RULE_ADAMAX = 6,
    OPTIM_RULE_ASGD = 7,
    OPTIM_RULE_NADAM = 8,
    OPTIM_RULE_RADAM = 9,
    OPTIM_RULE_RPROP = 10,
    OPTIM_RULE_SPARSE_ADAGRAD = 11,
    OPTIM_RULE_SPARSE_ADAM = 12,
} optim_rule;

enum { OPTIM_MAX_STATE = 4 };

struct optim_tensor;

/// Processes elements [begin, end) of one tensor: one rule, specialized for one combination of
/// its flags, one dtype and one instruction-set tier.
typedef void (*optim_segment_fn)(const struct optim_tensor *tensor, int64_t begin, int64_t end);

/// One tensor of a multi-tensor launch: its parameter, gradient and state arrays (all of the
/// same dtype and element count), the rule's scalars for this tensor and the loop to run.
typedef struct optim_tensor {
    void *param;
    const void *grad;
    void *state[OPTIM_MAX_STATE];
    int64_t count;
    const void *scalars;
    optim_segment_fn kernel;
} optim_tensor;

// SGD flags and scalars (see Rules/SGD.h for the update).
enum {
    OPTIM_SGD_MAXIMIZE = 1u << 0,
    OPTIM_SGD_WEIGHT_DECAY = 1u << 1,
    OPTIM_SGD_MOMENTUM = 1u << 2,
    OPTIM_SGD_MOMENTUM_INIT = 1u << 3,  // first step with momentum: the buffer becomes the gradient
    OPTIM_SGD_NESTEROV = 1u << 4,
};
typedef struct optim_sgd_scalars {
    double negative_lr;
    double momentum;
    double one_minus_dampening;
    double weight_decay;
} optim_sgd_scalars;

// Adam / AdamW flags and scalars (see Rules/Adam.h for the update).
enum {
    OPTIM_ADAM_MAXIMIZE = 1u << 0,
    OPTIM_ADAM_WEIGHT_DECAY = 1u << 1,
    OPTIM_ADAM_DECOUPLED = 1u << 2,
    OPTIM_ADAM_AMSGRAD = 1u << 3,
};
typedef struct optim_adam_scalars {
    double one_minus_beta1;
    double beta2;
    double one_minus_beta2;
    double eps;
    double weight_decay;
    double decay_factor;           // 1 - lr * weight_decay, for decoupled decay
    double negative_step_size;     // -lr / (1 - beta1^step)
    double bias_correction2_sqrt;  // (1 - beta2^step)^0.5
} optim_adam_scalars;

// Flags shared by the rules below: negate the gradient, add an L2 term to it, or (where the
// rule has it) decay the parameter directly.
enum {
    OPTIM_RULE_MAXIMIZE = 1u << 0,
    OPTIM_RULE_WEIGHT_DECAY = 1u << 1,
    OPTIM_RULE_DECOUPLED = 1u << 2,
};

// RMSprop (Rules/RMSprop.h).
enum {
    OPTIM_RMSPROP_MOMENTUM = 1u << 2,
    OPTIM_RMSPROP_CENTERED = 1u << 3,
};
typedef struct optim_rmsprop_scalars {
    double alpha;
    double one_minus_alpha;
    double eps;
    double weight_decay;
    double momentum;
    double negative_lr;
} optim_rmsprop_scalars;

// Adagrad (Rules/Adagrad.h).
enum {
    OPTIM_ADAGRAD_INITIALIZE = 1u << 2,  // first step: the sum starts at its initial value
};
typedef struct optim_adagrad_scalars {
    double weight_decay;
    double negative_clr;  // -lr / (1 + (step - 1) * lr_decay)
    double eps;
    double initial_accumulator_value;
} optim_adagrad_scalars;

// Adadelta (Rules/Adadelta.h).
typedef struct optim_adadelta_scalars {
    double rho;
    double one_minus_rho;
    double eps;
    double weight_decay;
    double negative_lr;
} optim_adadelta_scalars;

// Adamax (Rules/Adamax.h).
typedef struct optim_adamax_scalars {
    double one_minus_beta1;
    double beta2;
    double eps;
    double weight_decay;
    double negative_clr;  // -lr / (1 - beta1^step)
} optim_adamax_scalars;

// ASGD (Rules/ASGD.h).
enum {
    OPTIM_ASGD_COPY_AVERAGE = 1u << 2,  // mu = 1: the average becomes the parameter
};
typedef struct optim_asgd_scalars {
    double weight_decay;
    double decay;         // 1 - lambd * eta
    double negative_eta;
    double mu;
} optim_asgd_scalars;

// NAdam (Rules/NAdam.h). Uses OPTIM_RULE_DECOUPLED.
typedef struct optim_nadam_scalars {
    double one_minus_beta1;
    double beta2;
    double one_minus_beta2;
    double bias_correction2;
    double eps;
    double weight_decay;
    double decay_factor;      // 1 - lr * weight_decay
    double grad_coefficient;  // -lr (1 - mu_t) / (1 - prod mu)
    double avg_coefficient;   // -lr mu_{t+1} / (1 - mu_{t+1} prod mu)
} optim_nadam_scalars;

// RAdam (Rules/RAdam.h). Uses OPTIM_RULE_DECOUPLED.
enum {
    OPTIM_RADAM_RECTIFY = 1u << 3,  // the variance is tractable (rho_t > 5)
};
typedef struct optim_radam_scalars {
    double one_minus_beta1;
    double beta2;
    double one_minus_beta2;
    double bias_correction1;
    double lr;
    double bias_correction2_sqrt;
    double eps;
    double rectification;
    double weight_decay;
    double decay_factor;
} optim_radam_scalars;

// Rprop (Rules/Rprop.h).
enum {
    OPTIM_RPROP_INITIALIZE = 1u << 1,  // first step: step sizes start at lr
};
typedef struct optim_rprop_scalars {
    double eta_minus;
    double eta_plus;
    double step_size_min;
    double step_size_max;
    double lr;
} optim_rprop_scalars;

// SparseAdam (Rules/Sparse.h; sparse Adagrad there uses optim_adagrad_scalars).
typedef struct optim_sparse_adam_scalars {
    double one_minus_beta1;
    double one_minus_beta2;
    double eps;
    double negative_step_size;  // -lr * sqrt(1 - beta2^t) / (1 - beta1^t)
} optim_sparse_adam_scalars;

/// Sums the rows of a row-sparse gradient that share an index, in order: unique row `u` of
/// `destination` is the sum of rows `order[starts[u]] ... order[starts[u + 1] - 1]` of `source`
/// (each `width` elements), added in that order in the storage's math type and rounded to the
/// storage type once.
void optim_sum_rows(const void *source, const int64_t *order, const int64_t *starts, int64_t unique_count,
                    int64_t width, void *destination, optim_dtype dtype);

typedef struct optim_probe_scalars {
    double a;
    double b;
} optim_probe_scalars;

/// A launch: the elements [range_begin, range_end) of the concatenation of `tensors`, cut into
/// chunks of `chunk_elements` that workers claim one at a time. Every element is updated by
/// the same code whichever worker claims it, so the result does not depend on the number of
/// workers or on the order of claims.
typedef struct optim_plan {
    const optim_tensor *tensors;
    const int64_t *offsets;  // tensor_count + 1 prefix sums of the element counts
    int32_t tensor_count;
    int32_t reserved;
    int64_t chunk_elements;
    int64_t range_begin;
    int64_t range_end;
    int64_t next_chunk;  // claimed atomically
} optim_plan;

/// The kernel table of a rule for a dtype and tier, indexed by flags; `flag_bits` receives the
/// number of flag bits (the table has 1 << flag_bits entries). NULL for an unknown rule.
const optim_segment_fn *optim_kernel_table(optim_rule rule, optim_dtype dtype, optim_isa isa,
                                           uint32_t *flag_bits);

/// The highest tier this CPU runs.
optim_isa optim_isa_best_supported(void);
/// The tiers compiled into this build for this architecture (1 on non-x86 builds).
int32_t optim_isa_tier_count(void);

/// Sets the element range of a launch and resets its chunk counter.
void optim_plan_reset(optim_plan *plan, int64_t begin, int64_t end);
/// Claims and processes chunks until none is left. Safe to call from many threads at once.
void optim_plan_work(optim_plan *plan);

/// An OpenMP runtime reached through its GCC-compatible entry point, loaded at run time so
/// that no compiler flag is needed to build the package.
typedef struct optim_openmp_runtime {
    void (*parallel)(void (*fn)(void *), void *data, unsigned threads, unsigned flags);
    void *handle;
} optim_openmp_runtime;

/// Tries each library name in order; returns the index of the one opened and fills `runtime`,
/// or returns -1 and a message naming the attempts.
int32_t optim_openmp_open(const char *const *candidates, int32_t count,
                          optim_openmp_runtime *runtime, char *message, size_t message_size);
/// Runs `optim_plan_work` on a team of `threads` OpenMP threads.
void optim_openmp_run(const optim_openmp_runtime *runtime, optim_plan *plan, int32_t threads);

/// Converts `count` values between storage and double (round to nearest, ties to even).
void optim_convert_from_double(const double *source, void *destination, int64_t count,
                               optim_dtype dtype);
void optim_convert_to_double(const void *source, double *destination, int64_t count,
                             optim_dtype dtype);

/// Widens `count` float16 or bfloat16 values to float, and rounds float values back (to
/// nearest, ties to even), with the vector code of `isa`: the half-type storage of rules
/// written in Swift, whose math runs in float.
void optim_widen_to_float(const void *source, float *destination, int64_t count, optim_dtype dtype,
                          optim_isa isa);
void optim_narrow_from_float(const float *source, void *destination, int64_t count, optim_dtype dtype,
                             optim_isa isa);

/// A 64-bit hash of a byte range, for comparing results bit for bit.
uint64_t optim_hash_bytes(const void *bytes, int64_t count, uint64_t seed);

#ifdef __cplusplus
}
#endif

#include "ForeachOps.h"
#include "COptimTensorKernels.h"

#endif
