// The instruction-set tiers and the storage dtypes, each dispatched in one place.
//
// A tier is a type whose static `call<Body>(args...)` is compiled for the tier's target and
// inlines `Body::run(args...)`: the loops of the rules, the multi-tensor operations, the
// per-tensor jobs and the half-type conversions are all instantiated through it, so that each
// is compiled once per tier and chosen at run time (Swift 6.3 cannot target functions itself).
// `with_tier` and `with_storage` turn the run-time choice into a type for a generic lambda.
#ifndef OPTIM_TIERS_H
#define OPTIM_TIERS_H

#include "COptimKernels.h"
#include "Storage.h"

namespace optim {

// A tier's storages: F16C's conversions for float16 and masked tail loads for float32 and
// float64 where the target has them.
#define OPTIM_DEFINE_TIER(NAME, ATTRIBUTES, FLOAT16, FLOAT32, FLOAT64)           \
    struct NAME {                                                                \
        typedef FLOAT16 Float16;                                                 \
        typedef FLOAT32 Float32;                                                 \
        typedef FLOAT64 Float64;                                                 \
        template <class Body, class... Arguments>                                \
        ATTRIBUTES static void call(Arguments... arguments) {                    \
            Body::run(arguments...);                                             \
        }                                                                        \
    };

OPTIM_DEFINE_TIER(BaselineTier, , Float16Storage, Float32Storage, Float64Storage)
#if defined(__x86_64__)
OPTIM_DEFINE_TIER(AVX2Tier, __attribute__((target("arch=x86-64-v3"))), F16CFloat16Storage,
                  MaskedTailFloat32Storage, MaskedTailFloat64Storage)
// min_vector_width lets the 16-float vectors use zmm registers: the x86-64-v4 tuning
// otherwise prefers 256-bit operations.
OPTIM_DEFINE_TIER(AVX512Tier, __attribute__((target("arch=x86-64-v4"), min_vector_width(512))), F16CFloat16Storage,
                  MaskedTailFloat32Storage, MaskedTailFloat64Storage)
#endif

#undef OPTIM_DEFINE_TIER

/// `body(Tier{})` for the tier `isa` names (the baseline on other architectures).
template <class Body> inline auto with_tier(optim_isa isa, Body &&body) {
#if defined(__x86_64__)
    switch (isa) {
    case OPTIM_ISA_AVX512: return body(AVX512Tier{});
    case OPTIM_ISA_AVX2: return body(AVX2Tier{});
    case OPTIM_ISA_BASELINE: break;
    }
#else
    (void)isa;
#endif
    return body(BaselineTier{});
}

/// `body(Storage{})` for the storage of `dtype` in code compiled for `Tier`.
template <class Tier, class Body> inline auto with_storage(optim_dtype dtype, Body &&body) {
    switch (dtype) {
    case OPTIM_DTYPE_FLOAT64: return body(typename Tier::Float64{});
    case OPTIM_DTYPE_FLOAT16: return body(typename Tier::Float16{});
    case OPTIM_DTYPE_BFLOAT16: return body(BFloat16Storage{});
    case OPTIM_DTYPE_FLOAT32: break;
    }
    return body(typename Tier::Float32{});
}

/// The segment function of `Body` (a `run(tensor, begin, end)`) compiled for `Tier`.
template <class Tier, class Body> constexpr optim_segment_fn segment_function() {
    return &Tier::template call<Body, const optim_tensor *, int64_t, int64_t>;
}

}  // namespace optim

#endif
