// Loading and storing each storage dtype as math vectors. Half types are widened to float for
// the math and rounded back (to nearest, ties to even) on store, with integer code that gives
// the same bits in every tier.
#ifndef OPTIM_STORAGE_H
#define OPTIM_STORAGE_H

#include "Vectors.h"

namespace optim {

struct Float32Storage {
    typedef float Element;
    typedef float Scalar;
    typedef VFloat Vector;
    static constexpr int width = 16;
    OPTIM_INLINE void load(Vector &out, const Element *p) { memcpy(&out, p, sizeof(Vector)); }
    OPTIM_INLINE void store(Element *p, const Vector &v) { memcpy(p, &v, sizeof(Vector)); }
};

struct Float64Storage {
    typedef double Element;
    typedef double Scalar;
    typedef VDouble Vector;
    static constexpr int width = 8;
    OPTIM_INLINE void load(Vector &out, const Element *p) { memcpy(&out, p, sizeof(Vector)); }
    OPTIM_INLINE void store(Element *p, const Vector &v) { memcpy(p, &v, sizeof(Vector)); }
};

// IEEE binary16.
struct Float16Storage {
    typedef uint16_t Element;
    typedef float Scalar;
    typedef VFloat Vector;
    static constexpr int width = 16;

    OPTIM_INLINE void widen(Vector &out, const VU32 &h) {
        const VU32 sign = (h & 0x8000u) << 16;
        const VU32 magnitude = (h & 0x7fffu) << 13;
        // Rebiasing the exponent by a multiplication by 2^112 is exact and also normalizes
        // half subnormals, which are float normals.
        const VFloat finite = bit_cast_vector<VFloat>(magnitude) * 0x1p112f;
        const VU32 infinite_or_nan = magnitude | 0x7f800000u;
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

// bfloat16: the upper half of a float.
struct BFloat16Storage {
    typedef uint16_t Element;
    typedef float Scalar;
    typedef VFloat Vector;
    static constexpr int width = 16;

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

}  // namespace optim

#endif
