// Conversions between storage and double, for building tensors from arrays and reading them
// back (not a hot path), and the result hash.
#include <string.h>

#include "COptimKernels.h"
#include "Storage.h"

namespace {

uint16_t float_to_half(float value) {
    optim::VFloat v = value;
    optim::VU32 h;
    optim::Float16Storage::narrow(h, v);
    return uint16_t(h[0]);
}

float half_to_float(uint16_t value) {
    optim::VU32 h = uint32_t(value);
    optim::VFloat v;
    optim::Float16Storage::widen(v, h);
    return v[0];
}

uint16_t float_to_bfloat(float value) {
    optim::VFloat v = value;
    uint16_t raw[16];
    optim::BFloat16Storage::store(raw, v);
    return raw[0];
}

float bfloat_to_float(uint16_t value) {
    uint32_t bits = uint32_t(value) << 16;
    float result;
    memcpy(&result, &bits, sizeof result);
    return result;
}

}  // namespace

extern "C" void optim_convert_from_double(const double *source, void *destination, int64_t count,
                                          optim_dtype dtype) {
    for (int64_t i = 0; i < count; ++i) {
        switch (dtype) {
        case OPTIM_DTYPE_FLOAT32: static_cast<float *>(destination)[i] = float(source[i]); break;
        case OPTIM_DTYPE_FLOAT64: static_cast<double *>(destination)[i] = source[i]; break;
        // Through float, as torch converts a Python float into a half tensor: a double is first
        // rounded to float. The double rounding differs from direct rounding only on ties that
        // do not occur for values that came from float data.
        case OPTIM_DTYPE_FLOAT16: static_cast<uint16_t *>(destination)[i] = float_to_half(float(source[i])); break;
        case OPTIM_DTYPE_BFLOAT16: static_cast<uint16_t *>(destination)[i] = float_to_bfloat(float(source[i])); break;
        }
    }
}

extern "C" void optim_convert_to_double(const void *source, double *destination, int64_t count,
                                        optim_dtype dtype) {
    for (int64_t i = 0; i < count; ++i) {
        switch (dtype) {
        case OPTIM_DTYPE_FLOAT32: destination[i] = static_cast<const float *>(source)[i]; break;
        case OPTIM_DTYPE_FLOAT64: destination[i] = static_cast<const double *>(source)[i]; break;
        case OPTIM_DTYPE_FLOAT16: destination[i] = half_to_float(static_cast<const uint16_t *>(source)[i]); break;
        case OPTIM_DTYPE_BFLOAT16: destination[i] = bfloat_to_float(static_cast<const uint16_t *>(source)[i]); break;
        }
    }
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

namespace {

template <class Element, class Math, Math (*widen)(Element), Element (*narrow)(Math)>
void sum_rows(const Element *source, const int64_t *order, const int64_t *starts, int64_t unique_count,
              int64_t width, Element *destination) {
    for (int64_t u = 0; u < unique_count; ++u) {
        Element *out = destination + u * width;
        for (int64_t j = 0; j < width; ++j) {
            Math sum = widen(source[order[starts[u]] * width + j]);
            for (int64_t k = starts[u] + 1; k < starts[u + 1]; ++k) sum = sum + widen(source[order[k] * width + j]);
            out[j] = narrow(sum);
        }
    }
}

float identity_float(float x) { return x; }
double identity_double(double x) { return x; }
uint16_t narrow_half(float x) { return float_to_half(x); }
uint16_t narrow_bfloat(float x) { return float_to_bfloat(x); }

}  // namespace

extern "C" void optim_sum_rows(const void *source, const int64_t *order, const int64_t *starts,
                               int64_t unique_count, int64_t width, void *destination, optim_dtype dtype) {
    switch (dtype) {
    case OPTIM_DTYPE_FLOAT32:
        sum_rows<float, float, identity_float, identity_float>(static_cast<const float *>(source), order, starts,
                                                               unique_count, width, static_cast<float *>(destination));
        break;
    case OPTIM_DTYPE_FLOAT64:
        sum_rows<double, double, identity_double, identity_double>(static_cast<const double *>(source), order, starts,
                                                                   unique_count, width,
                                                                   static_cast<double *>(destination));
        break;
    case OPTIM_DTYPE_FLOAT16:
        sum_rows<uint16_t, float, half_to_float, narrow_half>(static_cast<const uint16_t *>(source), order, starts,
                                                              unique_count, width,
                                                              static_cast<uint16_t *>(destination));
        break;
    case OPTIM_DTYPE_BFLOAT16:
        sum_rows<uint16_t, float, bfloat_to_float, narrow_bfloat>(static_cast<const uint16_t *>(source), order, starts,
                                                                  unique_count, width,
                                                                  static_cast<uint16_t *>(destination));
        break;
    }
}
