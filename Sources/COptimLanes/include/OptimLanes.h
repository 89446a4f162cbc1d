// Lane-wise operations for rules written in Swift, as clang vector builtins, so that each
// stays one vector instruction (or a short sequence) where Swift's SIMD types would call a
// library function per lane (`SIMD.squareRoot()` becomes one `sqrtf` call per lane).
//
// Header-only: `static inline` functions over clang vector types, which Swift imports as
// `SIMD16<Float>` and `SIMD8<Double>`. Only `Sources/Optim/Rules/RuleVector.swift` imports it.
#ifndef OPTIM_LANES_H
#define OPTIM_LANES_H

// Written operation by operation: never contract a*b+c into a fused multiply-add, so that a
// Swift rule gives the same bits on every machine.
#pragma clang fp contract(off)

typedef float optim_lanes_f32x16 __attribute__((ext_vector_type(16)));
typedef double optim_lanes_f64x8 __attribute__((ext_vector_type(8)));

#define OPTIM_LANES_INLINE static inline __attribute__((always_inline))

#define OPTIM_LANES_DEFINE(SUFFIX, V)                                                                 \
    OPTIM_LANES_INLINE V optim_lanes_sqrt_##SUFFIX(V a) { return __builtin_elementwise_sqrt(a); }   \
    /* IEEE maximum and minimum: NaN if either operand is NaN, as torch.maximum. */                  \
    OPTIM_LANES_INLINE V optim_lanes_maximum_##SUFFIX(V a, V b) { return __builtin_elementwise_maximum(a, b); } \
    OPTIM_LANES_INLINE V optim_lanes_minimum_##SUFFIX(V a, V b) { return __builtin_elementwise_minimum(a, b); } \
    OPTIM_LANES_INLINE V optim_lanes_abs_##SUFFIX(V a) { return __builtin_elementwise_abs(a); }      \
    /* torch.sign: 1, -1, or 0 for zero and NaN. */                                                  \
    OPTIM_LANES_INLINE V optim_lanes_sign_##SUFFIX(V a) {                                            \
        const V zero = (V)(0), one = zero + 1;                                                      \
        return a > zero ? one : (a < zero ? -one : zero);                                          \
    }                                                                                               \
    /* mask ? a : b, lane by lane, for a mask from a comparison of rule values. */                  \
    OPTIM_LANES_INLINE V optim_lanes_select_positive_##SUFFIX(V condition, V a, V b) {               \
        return condition > (V)(0) ? a : b;                                                          \
    }

OPTIM_LANES_DEFINE(f32x16, optim_lanes_f32x16)
OPTIM_LANES_DEFINE(f64x8, optim_lanes_f64x8)

#undef OPTIM_LANES_DEFINE

#endif
