// Vector types and helpers shared by the element loops.
#ifndef OPTIM_VECTORS_H
#define OPTIM_VECTORS_H

#include <stdint.h>
#include <string.h>

// Fused multiply-add changes bits, and clang would contract a*b+c in the AVX2 and AVX-512
// tiers but not in the baseline tier. The rules are written operation by operation and no
// tier contracts them, so every tier and every machine computes the same bits.
#pragma clang fp contract(off)

#define OPTIM_INLINE static inline __attribute__((always_inline))
// For a lambda handed to a loop helper: without it a lambda is a function of its own, compiled
// for the baseline tier and called (even at -O0) from the tier that runs the loop.
#define OPTIM_INLINE_LAMBDA __attribute__((always_inline))

// Helpers take and return vectors by value. They are always inlined into the tier that calls
// them, so no call crosses between code built for different vector ABIs.
#pragma clang diagnostic ignored "-Wpsabi"

namespace optim {

// 16 floats or 8 doubles: one AVX-512 register, two AVX2 registers, four SSE registers.
typedef float VFloat __attribute__((ext_vector_type(16)));
typedef double VDouble __attribute__((ext_vector_type(8)));
typedef uint32_t VU32 __attribute__((ext_vector_type(16)));
typedef int32_t VI32 __attribute__((ext_vector_type(16)));
typedef uint16_t VU16 __attribute__((ext_vector_type(16)));
typedef uint64_t VU64 __attribute__((ext_vector_type(8)));

template <class To, class From> OPTIM_INLINE To bit_cast_vector(const From &value) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between sizes");
    To result;
    memcpy(&result, &value, sizeof(To));
    return result;
}

// Lane-wise choice: mask lanes are all ones (take a) or all zeros (take b).
OPTIM_INLINE VU32 select_bits(const VI32 &mask, const VU32 &a, const VU32 &b) {
    const VU32 m = bit_cast_vector<VU32>(mask);
    return (m & a) | (~m & b);
}

// IEEE maximum: NaN if either operand is NaN, like torch.maximum.
template <class V> OPTIM_INLINE V maximum(const V &a, const V &b) {
    return __builtin_elementwise_maximum(a, b);
}

// Copies fewer than 128 bytes without a library call: tails of tiny tensors are frequent
// (10,000 tensors of 100 floats end in 10,000 tails), and a call to memcpy per array and tail
// cost more than the math.
OPTIM_INLINE void copy_small(void *destination, const void *source, size_t bytes) {
    unsigned char *d = static_cast<unsigned char *>(destination);
    const unsigned char *s = static_cast<const unsigned char *>(source);
    if (bytes & 64) { __builtin_memcpy_inline(d, s, 64); d += 64; s += 64; }
    if (bytes & 32) { __builtin_memcpy_inline(d, s, 32); d += 32; s += 32; }
    if (bytes & 16) { __builtin_memcpy_inline(d, s, 16); d += 16; s += 16; }
    if (bytes & 8) { __builtin_memcpy_inline(d, s, 8); d += 8; s += 8; }
    if (bytes & 4) { __builtin_memcpy_inline(d, s, 4); d += 4; s += 4; }
    if (bytes & 2) { __builtin_memcpy_inline(d, s, 2); d += 2; s += 2; }
    if (bytes & 1) { *d = *s; }
}

// IEEE minimum: NaN if either operand is NaN, like torch.minimum.
template <class V> OPTIM_INLINE V minimum(const V &a, const V &b) {
    return __builtin_elementwise_minimum(a, b);
}

template <class V> OPTIM_INLINE V absolute(const V &a) { return __builtin_elementwise_abs(a); }

// Unsigned integer vectors of the width of a math vector's lanes.
template <class V> struct LaneBits;
template <> struct LaneBits<VFloat> { typedef VU32 type; };
template <> struct LaneBits<VDouble> { typedef VU64 type; };

// Lane-wise `mask ? a : b` for the result of a comparison of math vectors (lanes all ones
// or all zeros).
template <class V, class Mask> OPTIM_INLINE V choose(const Mask &mask, const V &a, const V &b) {
    typedef typename LaneBits<V>::type Bits;
    const Bits m = bit_cast_vector<Bits>(mask);
    return bit_cast_vector<V>((m & bit_cast_vector<Bits>(a)) | (~m & bit_cast_vector<Bits>(b)));
}

// torch.sign: 1, -1 or 0 (also for NaN).
template <class V> OPTIM_INLINE V sign(const V &a) {
    const V zero = V{}, one = zero + 1;
    return choose(a > zero, one, choose(a < zero, -one, zero));
}

// torch.lerp with a scalar weight: start + w (end - start) for |w| < 0.5, otherwise
// end - (end - start)(1 - w), which is exact at w = 1.
template <class V, class S> OPTIM_INLINE V lerp(const V &start, const V &end, S weight) {
    if (weight < S(0.5) && weight > S(-0.5)) return start + weight * (end - start);
    return end - (end - start) * (S(1) - weight);
}

// a * b + c rounded once, for the rules where torch's kernels fuse. Exactly specified, so every
// tier gives the same bits; the baseline tier, without an fma instruction, computes it in
// software.
template <class V> OPTIM_INLINE V fused_multiply_add(const V &a, const V &b, const V &c) {
    return __builtin_elementwise_fma(a, b, c);
}

// torch's fused CPU kernels on half types run whole vectors of its AVX2 build (32 bytes: 16
// elements) and then a scalar loop over the last count % 16 elements, which compiles to other
// roundings. Lanes at or past the returned index of a vector starting at element `first` of a
// tensor of `count` elements are in that scalar tail (lane `width` and beyond: none).
OPTIM_INLINE int64_t first_torch_tail_lane(int64_t first, int64_t count, int64_t width) {
    constexpr int64_t torch_half_lanes = 16;
    const int64_t tail_start = count - count % torch_half_lanes;
    const int64_t lane = tail_start - first;
    return lane < 0 ? 0 : lane > width ? width : lane;
}

// torch.lerp as its CPU kernel computes it: each form one fused multiply-add, anchored at start
// for |w| < 0.5 and at end otherwise.
template <class V, class S> OPTIM_INLINE V fused_lerp(const V &start, const V &end, S weight) {
    if (weight < S(0.5) && weight > S(-0.5)) return fused_multiply_add(V(weight), end - start, start);
    return fused_multiply_add(V(weight - S(1)), end - start, end);
}

template <class V> OPTIM_INLINE V square_root(const V &a) {
    return __builtin_elementwise_sqrt(a);
}

}  // namespace optim

#endif
