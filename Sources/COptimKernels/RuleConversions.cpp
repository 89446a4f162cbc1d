// Widening of half-type storage to float and rounding back, for the element loops of rules
// written in Swift: their math runs in float, on blocks converted here with the vector code of
// the chosen tier. The conversions are exact integer code (Storage.h), so every tier gives the
// same bits.
#include "COptimKernels.h"
#include "Storage.h"
#include "Tiers.h"

namespace optim {
namespace {

template <class Storage>
OPTIM_INLINE void widen_block(const void *source, float *destination, int64_t count) {
    const typename Storage::Element *in = static_cast<const typename Storage::Element *>(source);
    int64_t i = 0;
    for (; i + Storage::width <= count; i += Storage::width) {
        VFloat v;
        Storage::load(v, in + i);
        memcpy(destination + i, &v, sizeof v);
    }
    if (i < count) {
        typename Storage::Element buffer[Storage::width] = {};
        copy_small(buffer, in + i, size_t(count - i) * sizeof(buffer[0]));
        VFloat v;
        Storage::load(v, buffer);
        copy_small(destination + i, &v, size_t(count - i) * sizeof(float));
    }
}

template <class Storage>
OPTIM_INLINE void narrow_block(const float *source, void *destination, int64_t count) {
    typename Storage::Element *out = static_cast<typename Storage::Element *>(destination);
    int64_t i = 0;
    for (; i + Storage::width <= count; i += Storage::width) {
        VFloat v;
        memcpy(&v, source + i, sizeof v);
        Storage::store(out + i, v);
    }
    if (i < count) {
        VFloat v = {};
        copy_small(&v, source + i, size_t(count - i) * sizeof(float));
        typename Storage::Element buffer[Storage::width];
        Storage::store(buffer, v);
        copy_small(out + i, buffer, size_t(count - i) * sizeof(buffer[0]));
    }
}

struct Widen {
    OPTIM_INLINE void run(const void *s, float *d, int64_t n, optim_dtype dtype) {
        if (dtype == OPTIM_DTYPE_FLOAT16) widen_block<Float16Storage>(s, d, n);
        else widen_block<BFloat16Storage>(s, d, n);
    }
};

struct Narrow {
    OPTIM_INLINE void run(const float *s, void *d, int64_t n, optim_dtype dtype) {
        if (dtype == OPTIM_DTYPE_FLOAT16) narrow_block<Float16Storage>(s, d, n);
        else narrow_block<BFloat16Storage>(s, d, n);
    }
};

}  // namespace
}  // namespace optim

extern "C" void optim_widen_to_float(const void *source, float *destination, int64_t count, optim_dtype dtype,
                                     optim_isa isa) {
    optim::with_tier(isa, [&](auto tier) { decltype(tier)::template call<optim::Widen>(source, destination, count, dtype); });
}

extern "C" void optim_narrow_from_float(const float *source, void *destination, int64_t count, optim_dtype dtype,
                                        optim_isa isa) {
    optim::with_tier(isa, [&](auto tier) { decltype(tier)::template call<optim::Narrow>(source, destination, count, dtype); });
}
