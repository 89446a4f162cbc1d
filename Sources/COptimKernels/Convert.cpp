// Conversions between storage and double, for building tensors from arrays and reading them
// back (not a hot path), and the result hash.
#include <string.h>

#include "COptimKernels.h"
#include "Storage.h"
#include "Tiers.h"

namespace {

// One element at a time between a storage and its math type (float for the half types), with
// the rounding of the vector code: float32 and float64 convert as they are.
template <class Storage> struct ElementConversion {
    typedef typename Storage::Element Element;
    typedef typename Storage::Scalar Math;
    static Math widen(Element value) { return value; }
    static Element narrow(Math value) { return value; }
};

template <> struct ElementConversion<optim::Float16Storage> {
    typedef uint16_t Element;
    typedef float Math;
    static float widen(uint16_t value) {
        optim::VU32 h = uint32_t(value);
        optim::VFloat v;
        optim::Float16Storage::widen(v, h);
        return v[0];
    }
    static uint16_t narrow(float value) {
        optim::VFloat v = value;
        optim::VU32 h;
        optim::Float16Storage::narrow(h, v);
        return uint16_t(h[0]);
    }
};

template <> struct ElementConversion<optim::BFloat16Storage> {
    typedef uint16_t Element;
    typedef float Math;
    static float widen(uint16_t value) {
        uint32_t bits = uint32_t(value) << 16;
        float result;
        memcpy(&result, &bits, sizeof result);
        return result;
    }
    static uint16_t narrow(float value) {
        optim::VFloat v = value;
        uint16_t raw[16];
        optim::BFloat16Storage::store(raw, v);
        return raw[0];
    }
};

/// `body(ElementConversion<Storage>{})` for the storage of `dtype`.
template <class Body> void with_conversion(optim_dtype dtype, Body &&body) {
    optim::with_storage<optim::BaselineTier>(dtype, [&](auto storage) { body(ElementConversion<decltype(storage)>{}); });
}

}  // namespace

extern "C" void optim_convert_from_double(const double *source, void *destination, int64_t count,
                                          optim_dtype dtype) {
    with_conversion(dtype, [&](auto conversion) {
        typedef decltype(conversion) C;
        typename C::Element *out = static_cast<typename C::Element *>(destination);
        // Through float for the half types, as torch converts a Python float into a half
        // tensor: a double is first rounded to float. The double rounding differs from direct
        // rounding only on ties that do not occur for values that came from float data.
        for (int64_t i = 0; i < count; ++i) out[i] = C::narrow(typename C::Math(source[i]));
    });
}

extern "C" void optim_convert_to_double(const void *source, double *destination, int64_t count,
                                        optim_dtype dtype) {
    with_conversion(dtype, [&](auto conversion) {
        typedef decltype(conversion) C;
        const typename C::Element *in = static_cast<const typename C::Element *>(source);
        for (int64_t i = 0; i < count; ++i) destination[i] = C::widen(in[i]);
    });
}

// A 64-bit multiply-xorshift hash over 8-byte words: fast enough for a 500 MB parameter set,
// sensitive to every bit and to word order.
extern "C" uint64_t optim_hash_bytes(const void *bytes, int64_t count, uint64_t seed) {
    const unsigned char *p = static_cast<const unsigned char *>(bytes);
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ull * uint64_t(count + 1));
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        h ^= word;
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, size_t(count - i));
    h ^= tail;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 29;
    return h;
}

extern "C" void optim_sum_rows(const void *source, const int64_t *order, const int64_t *starts,
                               int64_t unique_count, int64_t width, void *destination, optim_dtype dtype) {
    with_conversion(dtype, [&](auto conversion) {
        typedef decltype(conversion) C;
        const typename C::Element *in = static_cast<const typename C::Element *>(source);
        for (int64_t u = 0; u < unique_count; ++u) {
            typename C::Element *out = static_cast<typename C::Element *>(destination) + u * width;
            for (int64_t j = 0; j < width; ++j) {
                typename C::Math sum = C::widen(in[order[starts[u]] * width + j]);
                for (int64_t k = starts[u] + 1; k < starts[u + 1]; ++k) sum = sum + C::widen(in[order[k] * width + j]);
                out[j] = C::narrow(sum);
            }
        }
    });
}
