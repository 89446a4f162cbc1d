// What the per-tensor kernels share: scratch leases, partial vectors at the end of a row,
// rounding to the storage type, sums of squares accumulated in double, and the tables of
// multiversioned job functions.
#ifndef OPTIM_TENSOR_JOBS_H
#define OPTIM_TENSOR_JOBS_H

#include <math.h>

#include <type_traits>

#include "COptimKernels.h"
#include "Storage.h"
#include "Tiers.h"

#define OPTIM_MEMBER inline __attribute__((always_inline))

namespace optim {
namespace {

/// A block of the launch's scratch memory, held by one job from construction to destruction.
struct ScratchLease {
    const optim_scratch_pool *pool;
    int32_t slot = -1;
    void *memory = nullptr;

    OPTIM_MEMBER explicit ScratchLease(const optim_scratch_pool *pool) : pool(pool) {
        if (!pool || pool->slots == 0) return;
        // At most `slots` jobs run at once, so a pass finds a free block; spin only as a guard.
        for (;;) {
            for (int32_t s = 0; s < pool->slots; ++s) {
                if (__atomic_load_n(&pool->busy[s], __ATOMIC_RELAXED) == 0 &&
                    __atomic_exchange_n(&pool->busy[s], 1, __ATOMIC_ACQUIRE) == 0) {
                    slot = s;
                    memory = static_cast<char *>(pool->memory) + int64_t(s) * pool->slot_bytes;
                    return;
                }
            }
        }
    }
    OPTIM_MEMBER ~ScratchLease() {
        if (slot >= 0) __atomic_store_n(&pool->busy[slot], 0, __ATOMIC_RELEASE);
    }
    ScratchLease(const ScratchLease &) = delete;
    ScratchLease &operator=(const ScratchLease &) = delete;
};

OPTIM_INLINE int64_t round_up(int64_t value, int64_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

/// The value once stored in the storage type: the identity for float32 and float64, a rounding
/// to nearest-even for the half types (torch rounds every intermediate tensor to its dtype).
template <class S> OPTIM_INLINE typename S::Vector round_to_storage(const typename S::Vector &v) {
    if constexpr (sizeof(typename S::Element) == sizeof(typename S::Scalar)) {
        return v;
    } else {
        typename S::Element buffer[S::width];
        S::store(buffer, v);
        typename S::Vector r;
        S::load(r, buffer);
        return r;
    }
}

template <class S> OPTIM_INLINE typename S::Scalar round_to_storage(typename S::Scalar x) {
    const typename S::Vector v = x;
    return round_to_storage<S>(v)[0];
}

template <class S> OPTIM_INLINE typename S::Scalar load_one(const typename S::Element *p) {
    typename S::Vector v;
    load_n<S>(v, p, 1);
    return v[0];
}

template <class S> OPTIM_INLINE void store_one(typename S::Element *p, typename S::Scalar x) {
    const typename S::Vector v = x;
    store_n<S>(p, v, 1);
}

/// Lanes from `n` on set to zero, so that the padding of a partial vector adds nothing to a sum.
template <class V, int Width> OPTIM_INLINE V keep_first(const V &v, int64_t n) {
    if (n >= Width) return v;
    V r = {};
    for (int64_t i = 0; i < n; ++i) r[i] = v[i];
    return r;
}

typedef float VFloat8 __attribute__((ext_vector_type(8)));

OPTIM_INLINE VDouble low_half(const VFloat &v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), VDouble);
}
OPTIM_INLINE VDouble high_half(const VFloat &v) {
    return __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), VDouble);
}

/// A sum of squares accumulated in double, in eight lanes combined in lane order at the end:
/// the order depends only on the element positions, never on the tier. The square of a float
/// is exact in double.
struct SquareSum {
    VDouble lanes = {};

    OPTIM_MEMBER void add(const VFloat &v) {
        const VDouble lo = low_half(v), hi = high_half(v);
        lanes += lo * lo;
        lanes += hi * hi;
    }
    OPTIM_MEMBER void add(const VDouble &v) { lanes += v * v; }
    OPTIM_MEMBER double total() const {
        double sum = 0;
        for (int i = 0; i < 8; ++i) sum += lanes[i];
        return sum;
    }
};

/// Adds the squares of a vector's lanes to `sums[0 ..< lanes]`.
OPTIM_INLINE void add_squares_to(double *sums, const VFloat &v) {
    VDouble lo, hi;
    memcpy(&lo, sums, sizeof lo);
    memcpy(&hi, sums + 8, sizeof hi);
    const VDouble a = low_half(v), b = high_half(v);
    lo += a * a;
    hi += b * b;
    memcpy(sums, &lo, sizeof lo);
    memcpy(sums + 8, &hi, sizeof hi);
}
OPTIM_INLINE void add_squares_to(double *sums, const VDouble &v) {
    VDouble s;
    memcpy(&s, sums, sizeof s);
    s += v * v;
    memcpy(sums, &s, sizeof s);
}

/// torch.lerp with a scalar weight, on scalars (the same formula as `lerp` on vectors).
template <class T> OPTIM_INLINE T lerp_scalar(T start, T end, T weight) {
    if (weight < T(0.5) && weight > T(-0.5)) return start + weight * (end - start);
    return end - (end - start) * (T(1) - weight);
}

/// Python's max(a, b): b when b > a, else a (so max(a, NaN) is a).
OPTIM_INLINE double python_max(double a, double b) { return b > a ? b : a; }

/// torch.clamp(x, min): NaN stays NaN.
template <class T> OPTIM_INLINE T clamp_min(T x, T low) { return x < low ? low : x; }

/// A per-tensor job as a segment function (the job takes the whole tensor).
template <template <class> class Job, class S> struct JobSegment {
    OPTIM_INLINE void run(const optim_tensor *t, int64_t, int64_t) { Job<S>::run(t); }
};

template <template <class> class Job> optim_segment_fn job_kernel(optim_dtype dtype, optim_isa isa) {
    return with_tier(isa, [&](auto tier) {
        return with_storage<decltype(tier)>(dtype, [&](auto storage) {
            return segment_function<decltype(tier), JobSegment<Job, decltype(storage)>>();
        });
    });
}

}  // namespace
}  // namespace optim

#endif
