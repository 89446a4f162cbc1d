// Loading and storing each storage dtype as math vectors, and the loop over a segment's vectors.
// Half types are widened to float for the math and rounded back (to nearest, ties to even) on
// store, with integer code that gives the same bits in every tier.
#ifndef OPTIM_STORAGE_H
#define OPTIM_STORAGE_H

#include <type_traits>

#include "Vectors.h"
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace optim {

// Storage whose elements are the math type itself: loads and stores are plain copies.
template <class T, class V> struct PlainStorage {
    typedef T Element;
    typedef T Scalar;
    typedef V Vector;
    static constexpr int width = sizeof(V) / sizeof(T);
    // Whether elements are widened to another math type (and rounded back on store).
    static constexpr bool widened = false;
    OPTIM_INLINE void load(Vector &out, const Element *p) { memcpy(&out, p, sizeof(Vector)); }
    OPTIM_INLINE void store(Element *p, const Vector &v) { memcpy(p, &v, sizeof(Vector)); }
};
typedef PlainStorage<float, VFloat> Float32Storage;
typedef PlainStorage<double, VDouble> Float64Storage;

// The 16-bit formats: stored as uint16_t, widened to float vectors of 16 lanes for the math.
struct HalfStorage {
    typedef uint16_t Element;
    typedef float Scalar;
    typedef VFloat Vector;
    static constexpr int width = 16;
    static constexpr bool widened = true;
};

// IEEE binary16.
struct Float16Storage : HalfStorage {
    OPTIM_INLINE void widen(Vector &out, const VU32 &h) {
        const VU32 sign = (h & 0x8000u) << 16;
        const VU32 magnitude = (h & 0x7fffu) << 13;
        // Rebiasing the exponent by a multiplication by 2^112 is exact and also normalizes
        // half subnormals, which are float normals.
        const VFloat finite = bit_cast_vector<VFloat>(magnitude) * 0x1p112f;
        // A NaN widens quiet, as IEEE conversion (and F16C's vcvtph2ps) gives it.
        const VU32 quiet = select_bits((VI32)((h & 0x7fffu) > 0x7c00u), (VU32)0x00400000u, (VU32)0u);
        const VU32 infinite_or_nan = magnitude | 0x7f800000u | quiet;
        const VI32 is_special = (VI32)((h & 0x7fffu) >= 0x7c00u);
        out = bit_cast_vector<VFloat>(
            select_bits(is_special, infinite_or_nan, bit_cast_vector<VU32>(finite)) | sign);
    }

    OPTIM_INLINE void narrow(VU32 &h, const Vector &v) {
        const VU32 bits = bit_cast_vector<VU32>(v);
        const VU32 sign = (bits >> 16) & 0x8000u;
        const VU32 magnitude = bits & 0x7fffffffu;
        // Normal results: drop the exponent bias difference (112 << 23) and round the 13
        // dropped mantissa bits to nearest, ties to even.
        const VU32 odd = (magnitude >> 13) & 1u;
        const VU32 normal = (magnitude + 0xc8000fffu + odd) >> 13;
        // Subnormal results: adding 0.5 aligns the value to the half subnormal spacing 2^-24
        // and lets the float addition round it.
        const VFloat aligned = bit_cast_vector<VFloat>(magnitude) + 0.5f;
        const VU32 subnormal = bit_cast_vector<VU32>(aligned) - 0x3f000000u;
        const VU32 nan = 0x7e00u | ((magnitude >> 13) & 0x3ffu);
        VU32 result = select_bits((VI32)(magnitude < 0x38800000u), subnormal, normal);
        result = select_bits((VI32)(magnitude >= 0x477ff000u), (VU32)0x7c00u, result);
        result = select_bits((VI32)(magnitude > 0x7f800000u), nan, result);
        h = result | sign;
    }

    OPTIM_INLINE void load(Vector &out, const Element *p) {
        VU16 raw;
        memcpy(&raw, p, sizeof(VU16));
        widen(out, __builtin_convertvector(raw, VU32));
    }
    OPTIM_INLINE void store(Element *p, const Vector &v) {
        VU32 h;
        narrow(h, v);
        const VU16 raw = __builtin_convertvector(h, VU16);
        memcpy(p, &raw, sizeof(VU16));
    }
};

// IEEE binary16 through F16C's conversions (vcvtph2ps, and vcvtps2ph rounding to nearest,
// ties to even), for the tiers whose targets have them: the bits of Float16Storage's integer
// code for every float and every half (Tests/ExhaustiveChecks/Float16Conversions.cpp checks
// all 2^32 floats and 2^16 halves), at a fraction of its instructions.
typedef _Float16 VHalf __attribute__((ext_vector_type(16)));
struct F16CFloat16Storage : Float16Storage {
    OPTIM_INLINE void load(Vector &out, const Element *p) {
        VHalf raw;
        memcpy(&raw, p, sizeof(VHalf));
        out = __builtin_convertvector(raw, VFloat);
    }
    OPTIM_INLINE void store(Element *p, const Vector &v) {
        const VHalf raw = __builtin_convertvector(v, VHalf);
        memcpy(p, &raw, sizeof(VHalf));
    }
};

// bfloat16: the upper half of a float.
struct BFloat16Storage : HalfStorage {
    OPTIM_INLINE void load(Vector &out, const Element *p) {
        VU16 raw;
        memcpy(&raw, p, sizeof(VU16));
        out = bit_cast_vector<VFloat>(__builtin_convertvector(raw, VU32) << 16);
    }
    OPTIM_INLINE void store(Element *p, const Vector &v) {
        const VU32 bits = bit_cast_vector<VU32>(v);
        const VU32 rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
        const VU32 quiet_nan = (bits >> 16) | 0x40u;
        const VU32 result = select_bits((VI32)((bits & 0x7fffffffu) > 0x7f800000u), quiet_nan, rounded);
        const VU16 raw = __builtin_convertvector(result, VU16);
        memcpy(p, &raw, sizeof(VU16));
    }
};

#if defined(__x86_64__)
// float32 and float64 tails through AVX's masked loads (vmaskmovps, vmaskmovpd), for the tiers
// whose targets have AVX2. The lanes past the tail load as zero, as from load_n's zero-padded
// buffer, so the bits are the buffer path's; what goes is the buffer's byte copies and the wide
// load that must wait for them (on 10,000 tensors of 100 elements, a fifth of Adam's step).
// Stores keep the buffer: a narrow copy out of a wide store forwards without a stall.
#define OPTIM_AVX2_INLINE static inline __attribute__((target("avx2")))
struct MaskedTailFloat32Storage : PlainStorage<float, VFloat> {
    static constexpr bool masked_tail = true;
    // Elements [0, n) of p, 0 < n < 16.
    OPTIM_AVX2_INLINE void load_tail(Vector &out, const Element *p, int64_t n) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i low = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), lane);
        const __m256i high = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n) - 8), lane);
        const __m256 halves[2] = {_mm256_maskload_ps(p, low), _mm256_maskload_ps(p + 8, high)};
        memcpy(&out, halves, sizeof(Vector));
    }
};
struct MaskedTailFloat64Storage : PlainStorage<double, VDouble> {
    static constexpr bool masked_tail = true;
    // Elements [0, n) of p, 0 < n < 8.
    OPTIM_AVX2_INLINE void load_tail(Vector &out, const Element *p, int64_t n) {
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        const __m256i low = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), lane);
        const __m256i high = _mm256_cmpgt_epi64(_mm256_set1_epi64x(n - 4), lane);
        const __m256d halves[2] = {_mm256_maskload_pd(p, low), _mm256_maskload_pd(p + 4, high)};
        memcpy(&out, halves, sizeof(Vector));
    }
};
#undef OPTIM_AVX2_INLINE
#endif

// Whether a storage loads its tails itself (`masked_tail`).
template <class S, class = void> struct HasMaskedTail : std::false_type {};
template <class S> struct HasMaskedTail<S, std::void_t<decltype(S::masked_tail)>> : std::bool_constant<S::masked_tail> {};

/// Loads the first `n` elements (all of a vector when n >= width), zeros in the other lanes.
template <class S> OPTIM_INLINE void load_n(typename S::Vector &v, const typename S::Element *p, int64_t n) {
    typedef typename S::Element E;
    if (n >= S::width) {
        S::load(v, p);
        return;
    }
    if constexpr (HasMaskedTail<S>::value) {
        S::load_tail(v, p, n);
        return;
    }
    E buffer[S::width] = {};
    copy_small(buffer, p, size_t(n) * sizeof(E));
    S::load(v, buffer);
}

/// Stores the first `n` lanes.
template <class S> OPTIM_INLINE void store_n(typename S::Element *p, const typename S::Vector &v, int64_t n) {
    typedef typename S::Element E;
    if (n >= S::width) {
        S::store(p, v);
        return;
    }
    E buffer[S::width];
    S::store(buffer, v);
    copy_small(p, buffer, size_t(n) * sizeof(E));
}

// The loops over elements go a vector at a time and take the tail through load_n and store_n
// (zero-padded buffers) with the same vector code, so that every element of a tensor is
// computed by the same instructions wherever a chunk boundary falls. Whole vectors pass
// n == width as a constant, so that once inlined their loads and stores go straight to memory.
// `step(i, n)` processes elements [i, i + n).
template <int width, class Step> OPTIM_INLINE void for_each_vector(int64_t begin, int64_t end, const Step &step) {
    int64_t i = begin;
    for (; i + width <= end; i += width) step(i, int64_t(width));
    if (i < end) step(i, end - i);
}

}  // namespace optim

#endif
