// Instantiates every rule for every storage dtype and instruction-set tier, and hands out
// the kernel tables. A table holds one specialized loop per combination of the rule's flags,
// so that options cost no branch in the element loop.
#include <array>
#include <utility>

// Each rule's header, included through COptimKernels.h, defines its table here (OPTIM_EXPORT_RULE).
#define OPTIM_DEFINE_RULE_TABLES
#include "COptimKernels.h"
#include "SegmentLoop.h"
#include "Tiers.h"

namespace optim {
namespace {

/// One specialization of a rule's element loop: a rule, a storage, a combination of flags.
template <class Rule, class Storage, unsigned F> struct RuleSegment {
    OPTIM_INLINE void run(const optim_tensor *t, int64_t b, int64_t e) { run_segment<Rule, Storage, F>(t, b, e); }
};

template <class Tier, class Rule, class Storage, unsigned... F>
constexpr std::array<optim_segment_fn, sizeof...(F)> make_table(std::integer_sequence<unsigned, F...>) {
    return {{segment_function<Tier, RuleSegment<Rule, Storage, F>>()...}};
}

template <class Tier, class Rule, class Storage> struct Table {
    static constexpr std::array<optim_segment_fn, (1u << Rule::flag_bits)> entries =
        make_table<Tier, Rule, Storage>(std::make_integer_sequence<unsigned, (1u << Rule::flag_bits)>{});
};
template <class Tier, class Rule, class Storage>
constexpr std::array<optim_segment_fn, (1u << Rule::flag_bits)> Table<Tier, Rule, Storage>::entries;

}  // namespace

template <class Rule> const optim_segment_fn *table_of(optim_dtype dtype, optim_isa isa, uint32_t *flag_bits) {
    *flag_bits = Rule::flag_bits;
    return with_tier(isa, [&](auto tier) {
        return with_storage<decltype(tier)>(dtype, [&](auto storage) {
            return Table<decltype(tier), Rule, decltype(storage)>::entries.data();
        });
    });
}

}  // namespace optim

extern "C" optim_isa optim_isa_best_supported(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return OPTIM_ISA_AVX512;
    if (__builtin_cpu_supports("x86-64-v3")) return OPTIM_ISA_AVX2;
#endif
    return OPTIM_ISA_BASELINE;
}

extern "C" int32_t optim_isa_tier_count(void) {
#if defined(__x86_64__)
    return 3;
#else
    return 1;
#endif
}
