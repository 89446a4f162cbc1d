// Widening of half-type storage to float and rounding back, for the element loops of rules
// written in Swift: their math runs in float, on blocks converted here with the vector code of
// the chosen tier (F16C's conversions where it has them), which gives the same bits in every
// tier (Storage.h).
#include "COptimKernels.h"
#include "Storage.h"
#include "Tiers.h"

namespace optim {
namespace {

// Both directions are a load from one storage and a store to the other; float is Float32Storage.
template <class From, class To>
OPTIM_INLINE void convert_block(const void *source, void *destination, int64_t count) {
    static_assert(From::width == To::width, "both sides hold a float vector");
    const typename From::Element *in = static_cast<const typename From::Element *>(source);
    typename To::Element *out = static_cast<typename To::Element *>(destination);
    for_each_vector<From::width>(0, count, [&](int64_t i, int64_t n) OPTIM_INLINE_LAMBDA {
        VFloat v;
        load_n<From>(v, in + i, n);
        store_n<To>(out + i, v, n);
    });
}

template <class Tier> struct Widen {
    OPTIM_INLINE void run(const void *s, float *d, int64_t n, optim_dtype dtype) {
        if (dtype == OPTIM_DTYPE_FLOAT16) convert_block<typename Tier::Float16, Float32Storage>(s, d, n);
        else convert_block<BFloat16Storage, Float32Storage>(s, d, n);
    }
};

template <class Tier> struct Narrow {
    OPTIM_INLINE void run(const float *s, void *d, int64_t n, optim_dtype dtype) {
        if (dtype == OPTIM_DTYPE_FLOAT16) convert_block<Float32Storage, typename Tier::Float16>(s, d, n);
        else convert_block<Float32Storage, BFloat16Storage>(s, d, n);
    }
};

}  // namespace
}  // namespace optim

extern "C" void optim_widen_to_float(const void *source, float *destination, int64_t count, optim_dtype dtype,
                                     optim_isa isa) {
    optim::with_tier(isa, [&](auto tier) { decltype(tier)::template call<optim::Widen<decltype(tier)>>(source, destination, count, dtype); });
}

extern "C" void optim_narrow_from_float(const float *source, void *destination, int64_t count, optim_dtype dtype,
                                        optim_isa isa) {
    optim::with_tier(isa, [&](auto tier) { decltype(tier)::template call<optim::Narrow<decltype(tier)>>(source, destination, count, dtype); });
}
