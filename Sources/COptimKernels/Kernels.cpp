// Instantiates every rule for every storage dtype and instruction-set tier, and hands out
// the kernel tables. A table holds one specialized loop per combination of the rule's flags,
// so that options cost no branch in the element loop.
#include <array>
#include <utility>

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

template <class Rule> const optim_segment_fn *table_of(optim_dtype dtype, optim_isa isa, uint32_t *flag_bits) {
    *flag_bits = Rule::flag_bits;
    return with_tier(isa, [&](auto tier) {
        return with_storage(dtype, [&](auto storage) {
            return Table<decltype(tier), Rule, decltype(storage)>::entries.data();
        });
    });
}

}  // namespace
}  // namespace optim

// The tables of the built-in rules, one line each (their headers declare them).
#define OPTIM_EXPORT_RULE(lower, Rule)                                                              \
    extern "C" const optim_segment_fn *optim_##lower##_kernels(optim_dtype dtype, optim_isa isa,   \
                                                                uint32_t *flag_bits) {              \
        return optim::table_of<optim::Rule>(dtype, isa, flag_bits);                                \
    }

OPTIM_EXPORT_RULE(sgd, SGDRule)
OPTIM_EXPORT_RULE(adam, AdamRule)
OPTIM_EXPORT_RULE(bandwidth_probe, BandwidthProbeRule)
OPTIM_EXPORT_RULE(rmsprop, RMSpropRule)
OPTIM_EXPORT_RULE(adagrad, AdagradRule)
OPTIM_EXPORT_RULE(adadelta, AdadeltaRule)
OPTIM_EXPORT_RULE(adamax, AdamaxRule)
OPTIM_EXPORT_RULE(asgd, ASGDRule)
OPTIM_EXPORT_RULE(nadam, NAdamRule)
OPTIM_EXPORT_RULE(radam, RAdamRule)
OPTIM_EXPORT_RULE(rprop, RpropRule)
OPTIM_EXPORT_RULE(sparse_adagrad, SparseAdagradRule)
OPTIM_EXPORT_RULE(sparse_adam, SparseAdamRule)

// The Swift side sets the flags most rules share by one name (RuleFlags, OPTIM_RULE_*): they
// keep their bits in every rule that has them.
#define OPTIM_CHECK_SHARED_FLAG(Rule, Flag, Shared) \
    static_assert(unsigned(optim::Rule::Flag) == Shared, #Rule "::" #Flag " is not " #Shared);
#define OPTIM_CHECK_COMMON_FLAGS(Rule)                               \
    OPTIM_CHECK_SHARED_FLAG(Rule, Maximize, OPTIM_RULE_MAXIMIZE)     \
    OPTIM_CHECK_SHARED_FLAG(Rule, WeightDecay, OPTIM_RULE_WEIGHT_DECAY)
OPTIM_CHECK_COMMON_FLAGS(RMSpropRule)
OPTIM_CHECK_COMMON_FLAGS(AdagradRule)
OPTIM_CHECK_COMMON_FLAGS(AdadeltaRule)
OPTIM_CHECK_COMMON_FLAGS(AdamaxRule)
OPTIM_CHECK_COMMON_FLAGS(ASGDRule)
OPTIM_CHECK_COMMON_FLAGS(NAdamRule)
OPTIM_CHECK_COMMON_FLAGS(RAdamRule)
OPTIM_CHECK_SHARED_FLAG(NAdamRule, Decoupled, OPTIM_RULE_DECOUPLED)
OPTIM_CHECK_SHARED_FLAG(RAdamRule, Decoupled, OPTIM_RULE_DECOUPLED)
OPTIM_CHECK_SHARED_FLAG(RpropRule, Maximize, OPTIM_RULE_MAXIMIZE)
OPTIM_CHECK_SHARED_FLAG(SparseAdagradRule, Maximize, OPTIM_RULE_MAXIMIZE)
OPTIM_CHECK_SHARED_FLAG(SparseAdamRule, Maximize, OPTIM_RULE_MAXIMIZE)

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
