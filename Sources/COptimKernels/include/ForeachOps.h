// Multi-tensor ("foreach") operations over lists of tensors, and deterministic reductions.
// Included from COptimKernels.h; only the Swift files of Sources/Optim/Foreach use it.
//
// The operations run on the engine's launches: an `optim_tensor` descriptor per list index
// (`param`: the list updated in place, `grad`: the first input list, `state[0]`: the second),
// cut into chunks that workers claim (`optim_plan_work`).
#ifndef COPTIMKERNELS_FOREACH_OPS_H
#define COPTIMKERNELS_FOREACH_OPS_H

#include "COptimKernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Element-wise operations, in place on x, with inputs y and z and the scalars a and b. The
/// math runs in float for float32, float16 and bfloat16 storage, in double for float64, one
/// rounding per operation as written; fma (one rounding) only where torch's CPU kernels fuse.
typedef enum optim_foreach_op {
    OPTIM_FOREACH_ADD_SCALAR = 0,  // x = x + a
    OPTIM_FOREACH_SCALE = 1,       // x = x * a
    OPTIM_FOREACH_ADD = 2,         // x = fma(a, y, x)
    OPTIM_FOREACH_AXPBY = 3,       // x = b * x + a * y
    OPTIM_FOREACH_ADDCMUL = 4,     // x = x + (a * y) * z
    OPTIM_FOREACH_ADDCDIV = 5,     // x = x + (a * y) / z
    OPTIM_FOREACH_LERP_NEAR = 6,   // x = fma(a, y - x, x)         (|a| < 0.5)
    OPTIM_FOREACH_LERP_FAR = 7,    // x = fma(a - 1, y - x, y)     (|a| >= 0.5)
    OPTIM_FOREACH_SQRT = 8,        // x = sqrt(x)
    OPTIM_FOREACH_MAXIMUM = 9,     // x = maximum(x, y), NaN if either is NaN
    OPTIM_FOREACH_CLAMP = 10,      // x = minimum(maximum(x, a), b), NaN stays NaN
    OPTIM_FOREACH_COPY = 11,       // x = y, bit for bit
    OPTIM_FOREACH_ZERO = 12,       // x = +0
} optim_foreach_op;

typedef struct optim_foreach_scalars {
    double a;
    double b;
} optim_foreach_scalars;

/// Reductions of a list (x) or a pair of lists (x, y), accumulated in double.
typedef enum optim_reduction {
    OPTIM_REDUCTION_DOT = 0,          // sum of x * y
    OPTIM_REDUCTION_SUM_ABS = 1,      // sum of |x|
    OPTIM_REDUCTION_SUM_SQUARES = 2,  // sum of x * x
    OPTIM_REDUCTION_SUM_POW_ABS = 3,  // sum of pow(|x|, p)
    OPTIM_REDUCTION_MAX_ABS = 4,      // maximum of |x|, NaN if any is NaN
} optim_reduction;

/// The reduction grid: a launch's concatenated elements are cut into blocks of this many
/// elements, at fixed offsets. Each piece (a block's part of one tensor) gets one partial, in
/// `partials[block + tensor index]`, which is unique per piece. A launch's chunk size must be
/// a multiple of the block, so that no piece is split between workers.
enum { OPTIM_REDUCTION_BLOCK = 4096 };

/// The per-tensor scalars of a reduction launch.
typedef struct optim_reduction_scalars {
    double *partials;
    int64_t offset;  // the tensor's first element in the launch
    int64_t index;   // the tensor's position in the launch
    double p;        // the exponent of OPTIM_REDUCTION_SUM_POW_ABS
} optim_reduction_scalars;

/// The loop of an element-wise operation for one dtype and tier.
optim_segment_fn optim_foreach_kernel(optim_foreach_op op, optim_dtype dtype, optim_isa isa);
/// The loop of a reduction for one dtype and tier.
optim_segment_fn optim_reduction_kernel(optim_reduction reduction, optim_dtype dtype, optim_isa isa);
/// Combines `count` partials from `first` in index order: their sum (left to right), or with
/// `maximum` their NaN-propagating maximum.
double optim_reduction_combine(const double *partials, int64_t first, int64_t count, int32_t maximum);

/// The sum of |x| over `count` contiguous float32 or float64 elements (0 for another dtype),
/// on the calling thread, in the order of torch's CPU sum of a tensor (the AVX2 kernel torch
/// dispatches to on x86, single-threaded below 32,768 elements; float32 in float, float64 in
/// double): LBFGS's first step length is 1 / Σ|g| and its reference trajectories follow it to
/// the last bit. Not vectorized; for one use per run.
double optim_torch_order_sum_abs(const void *x, int64_t count, optim_dtype dtype);
/// x · y of two float32 vectors in the order of the BLAS torch calls on x86 (exact up to 15
/// elements), rounded to float as torch's 0-dimensional float32 result is.
double optim_torch_order_dot_float32(const float *x, const float *y, int64_t count);

#ifdef __cplusplus
}
#endif

#endif
