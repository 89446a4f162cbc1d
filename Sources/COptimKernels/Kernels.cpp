// Instantiates every rule for every storage dtype and instruction-set tier, and hands out
// the kernel tables. A table holds one specialized loop per combination of the rule's flags,
// so that options cost no branch in the element loop.
#include <array>
#include <utility>

#include "COptimKernels.h"
#include "Rules/ASGD.h"
#include "Rules/Adadelta.h"
#include "Rules/Adagrad.h"
#include "Rules/Adam.h"
#include "Rules/Adamax.h"
#include "Rules/NAdam.h"
#include "Rules/RAdam.h"
#include "Rules/RMSprop.h"
#include "Rules/Rprop.h"
#include "Rules/SGD.h"
#include "Rules/Sparse.h"
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

extern "C" const optim_segment_fn *optim_kernel_table(optim_rule rule, optim_dtype dtype,
                                                      optim_isa isa, uint32_t *flag_bits) {
    using namespace optim;
    switch (rule) {
    case OPTIM_RULE_SGD: return table_of<SGDRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_ADAM: return table_of<AdamRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_BANDWIDTH_PROBE: return table_of<BandwidthProbeRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_RMSPROP: return table_of<RMSpropRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_ADAGRAD: return table_of<AdagradRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_ADADELTA: return table_of<AdadeltaRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_ADAMAX: return table_of<AdamaxRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_ASGD: return table_of<ASGDRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_NADAM: return table_of<NAdamRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_RADAM: return table_of<RAdamRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_RPROP: return table_of<RpropRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_SPARSE_ADAGRAD: return table_of<SparseAdagradRule>(dtype, isa, flag_bits);
    case OPTIM_RULE_SPARSE_ADAM: return table_of<SparseAdamRule>(dtype, isa, flag_bits);
    }
    *flag_bits = 0;
    return nullptr;
}

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
