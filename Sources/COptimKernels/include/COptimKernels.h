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

/// Sums the rows of a row-sparse gradient that share an index, in order: unique row `u` of
/// `destination` is the sum of rows `order[starts[u]] ... order[starts[u + 1] - 1]` of `source`
/// (each `width` elements), added in that order in the storage's math type and rounded to the
/// storage type once.
void optim_sum_rows(const void *source, const int64_t *order, const int64_t *starts, int64_t unique_count,
                    int64_t width, void *destination, optim_dtype dtype);

/// A launch: the elements [range_begin, range_end) of the concatenation of `tensors`, cut into
/// chunks of `chunk_elements` that workers claim one at a time. Every element is updated by
/// the same code whichever worker claims it, so the result does not depend on the number of
/// workers or on the order of claims.
typedef struct optim_plan {
    const optim_tensor *tensors;
    const int64_t *offsets;  // tensor_count + 1 prefix sums of the element counts
    int32_t tensor_count;
    int32_t claiming_workers;  // calls of optim_plan_work that processed a chunk since the reset
    int64_t chunk_elements;
    int64_t range_begin;
    int64_t range_end;
    int64_t claimed_chunks;  // how many chunks workers have claimed, counted atomically
    int64_t next_front_chunk;  // the launching thread's next chunk, from the first up
    int64_t next_back_chunk;   // the other workers' next chunk, from the last down
} optim_plan;

/// The highest tier this CPU runs.
optim_isa optim_isa_best_supported(void);
/// The tiers compiled into this build for this architecture (1 on non-x86 builds).
int32_t optim_isa_tier_count(void);

/// Asks for the cache line at `address` ahead of its use (a hint; any address is safe).
static inline void optim_prefetch(const void *address) { __builtin_prefetch(address); }

/// Sets the element range of a launch and resets its chunk counter.
void optim_plan_reset(optim_plan *plan, int64_t begin, int64_t end);
/// Claims and processes chunks until none is left. Safe to call from many threads at once;
/// each call that processed a chunk adds one to `claiming_workers`.
void optim_plan_work(optim_plan *plan);
/// `optim_plan_work` for a worker other than the launching thread: it claims chunks from the
/// end of the range, so that each worker keeps updating the same tensors from step to step
/// (and finds them in its own caches) while the claims still balance the work.
void optim_plan_work_from_back(optim_plan *plan);

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

/// The Dispatch backend's helper threads (DispatchTeam.cpp): at most this many per launch,
/// beside the calling thread.
enum { OPTIM_TEAM_MAX_HELPERS = 63 };
typedef struct optim_team optim_team;
/// A team whose helpers spin `spin_nanoseconds` for another plan, then sleep up to
/// `park_nanoseconds` (on Linux) until a launch wakes them, before they return their thread;
/// null when the memory cannot be allocated.
optim_team *optim_team_create(int64_t spin_nanoseconds, int64_t park_nanoseconds);
/// Runs `plan` on the calling thread and on up to `threads - 1` helpers that are awake;
/// `start_helper(team, slot)` must arrange for `optim_team_serve(team, slot)` to run on another
/// thread soon (it is called for a slot whose helper is absent). Returns once the plan is done.
void optim_team_run(optim_team *team, optim_plan *plan, int32_t threads,
                    void (*start_helper)(optim_team *team, int32_t slot));
/// A helper's loop: takes the plans offered to `slot` until none comes for the team's spin and
/// park times.
void optim_team_serve(optim_team *team, int32_t slot);

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

// The built-in element-wise rules: one line each. A rule's header declares its flags, its
// scalars and its table of loops (RuleDeclarations.h); Kernels.cpp defines the table. The rule
// headers are read only here, under this file's guard, and have none of their own.
#include "RuleDeclarations.h"
#include "../Rules/SGD.h"
#include "../Rules/Adam.h"
#include "../Rules/RMSprop.h"
#include "../Rules/Adagrad.h"
#include "../Rules/Adadelta.h"
#include "../Rules/Adamax.h"
#include "../Rules/ASGD.h"
#include "../Rules/NAdam.h"
#include "../Rules/RAdam.h"
#include "../Rules/Rprop.h"
#include "../Rules/Sparse.h"

#endif
