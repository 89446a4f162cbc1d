// What a built-in rule declares once, in its header under Sources/COptimKernels/Rules/, as two
// lists: its flags,
//     #define OPTIM_<RULE>_FLAGS(F) F(<RULE>, MAXIMIZE, Maximize) F(<RULE>, WEIGHT_DECAY, WeightDecay) ...
// (C name, C++ name; the i-th flag is bit i), and its per-tensor scalars,
//     #define OPTIM_<RULE>_SCALARS(X) X(eps) X(weight_decay) ...
// (doubles the Swift side computes as torch computes them in Python).
//
// In C, which Swift reads, `OPTIM_DECLARE_RULE(lower, RULE)` makes the flags `OPTIM_<RULE>_<NAME>`,
// their count `OPTIM_<RULE>_FLAG_BITS`, the struct `optim_<lower>_scalars` and the table of the
// rule's loops, `optim_<lower>_kernels` (defined by one line in Kernels.cpp). In C++,
// `OPTIM_RULE_MEMBERS(RULE, lower_of_scalars, SCALARS, state_count)` makes, inside the rule's
// struct, the flags by their C++ names, `flag_bits`, `state_count`, `CScalars` and
// `Scalars<S>`, the scalars in the math type.
#ifndef OPTIM_RULE_DECLARATIONS_H
#define OPTIM_RULE_DECLARATIONS_H

// Flags shared by most rules, at the same bits in each (the first flags of their lists): negate
// the gradient, add an L2 term to it, or decay the parameter directly.
enum {
    OPTIM_RULE_MAXIMIZE = 1u << 0,
    OPTIM_RULE_WEIGHT_DECAY = 1u << 1,
    OPTIM_RULE_DECOUPLED = 1u << 2,
};

#ifdef __cplusplus
#define OPTIM_EXTERN_C extern "C"
#else
#define OPTIM_EXTERN_C
#endif

#define OPTIM_FLAG_INDEX(RULE, NAME, CXX) OPTIM_##RULE##_FLAG_INDEX_##NAME,
#define OPTIM_FLAG_VALUE(RULE, NAME, CXX) OPTIM_##RULE##_##NAME = 1u << OPTIM_##RULE##_FLAG_INDEX_##NAME,
#define OPTIM_C_SCALAR(NAME) double NAME;

/// The flags of RULE and the prototype of its table of loops.
#define OPTIM_DECLARE_FLAGS(lower, RULE)                                                            \
    enum { OPTIM_##RULE##_FLAGS(OPTIM_FLAG_INDEX) OPTIM_##RULE##_FLAG_BITS };                       \
    enum { OPTIM_##RULE##_FLAGS(OPTIM_FLAG_VALUE) OPTIM_##RULE##_NO_FLAG = 0 };                     \
    OPTIM_EXTERN_C const optim_segment_fn *optim_##lower##_kernels(optim_dtype dtype, optim_isa isa,          \
                                                                    uint32_t *flag_bits);

/// The flags, the scalars struct and the table of RULE.
#define OPTIM_DECLARE_RULE(lower, RULE)                                                             \
    OPTIM_DECLARE_FLAGS(lower, RULE)                                                                \
    typedef struct optim_##lower##_scalars { OPTIM_##RULE##_SCALARS(OPTIM_C_SCALAR) } optim_##lower##_scalars;

#ifdef __cplusplus
#include "../Vectors.h"

namespace optim {

// The Swift side sets the flags most rules share by one name (RuleFlags, OPTIM_RULE_*), and the
// gradient prologues below read them there: a rule that has them keeps them at their bits,
// which OPTIM_RULE_MEMBERS checks by name for every flag of every rule.
constexpr bool same_name(const char *a, const char *b) { return *a == *b && (*a == 0 || same_name(a + 1, b + 1)); }
constexpr unsigned shared_flag(const char *name) {
    return same_name(name, "MAXIMIZE")       ? OPTIM_RULE_MAXIMIZE
           : same_name(name, "WEIGHT_DECAY") ? OPTIM_RULE_WEIGHT_DECAY
           : same_name(name, "DECOUPLED")    ? OPTIM_RULE_DECOUPLED
                                             : 0;
}

// torch's first lines of most rules: the gradient negated under maximize, then an L2 term.
template <unsigned F, class V, class S>
OPTIM_INLINE V gradient_with_l2(V grad, const V &param, S weight_decay) {
    if (F & OPTIM_RULE_MAXIMIZE) grad = -grad;
    if (F & OPTIM_RULE_WEIGHT_DECAY) grad = grad + weight_decay * param;
    return grad;
}

// The same for the rules whose weight decay can instead be decoupled (AdamW's): the parameter
// decays directly and the gradient takes no L2 term.
template <unsigned F, class V, class S>
OPTIM_INLINE V gradient_with_weight_decay(V grad, V &param, S weight_decay, S decay_factor) {
    if (F & OPTIM_RULE_MAXIMIZE) grad = -grad;
    if (F & OPTIM_RULE_WEIGHT_DECAY) {
        if (F & OPTIM_RULE_DECOUPLED) param = param * decay_factor;
        else grad = grad + weight_decay * param;
    }
    return grad;
}

// The prologue Adam, NAdam and RAdam share, in torch's order of operations: the gradient after
// maximize and weight decay (L2 or decoupled), then the moments exp_avg (state[0], by lerp) and
// exp_avg_sq (state[1], by addcmul). Their scalars share these names.
template <unsigned F, class V, class Scalars>
OPTIM_INLINE void adam_prologue(V &param, V &grad, V *state, const Scalars &s) {
    grad = gradient_with_weight_decay<F>(grad, param, s.weight_decay, s.decay_factor);
    state[0] = lerp(state[0], grad, s.one_minus_beta1);
    state[1] = state[1] * s.beta2 + s.one_minus_beta2 * grad * grad;
}

// The state access of a rule that reads and writes every state slot, but under the flag
// `Overwrite` (a first step) writes its state without reading it.
template <unsigned Overwrite> struct OverwritesStateUnder {
    static constexpr bool reads_state(unsigned flags, int) { return !(flags & Overwrite); }
    static constexpr bool writes_state(unsigned, int) { return true; }
};
typedef OverwritesStateUnder<0> EveryStateRule;

/// A rule's loops for every flag combination, for one dtype and tier (defined in Kernels.cpp).
template <class Rule> const optim_segment_fn *table_of(optim_dtype dtype, optim_isa isa, uint32_t *flag_bits);

}  // namespace optim

#define OPTIM_CXX_FLAG(RULE, NAME, CXX) CXX = OPTIM_##RULE##_##NAME,
#define OPTIM_CXX_CHECK_FLAG(RULE, NAME, CXX)                                                       \
    static_assert(optim::shared_flag(#NAME) == 0 || optim::shared_flag(#NAME) == CXX,              \
                  "OPTIM_" #RULE "_" #NAME " is not at the bit of OPTIM_RULE_" #NAME);
#define OPTIM_CXX_SCALAR(NAME) S NAME;
#define OPTIM_CXX_SCALAR_FROM_C(NAME) NAME = S(c.NAME);

#define OPTIM_RULE_MEMBERS(RULE, scalars, SCALARS, states)                                          \
    enum : unsigned { OPTIM_##RULE##_FLAGS(OPTIM_CXX_FLAG) NoFlag = 0 };                             \
    OPTIM_##RULE##_FLAGS(OPTIM_CXX_CHECK_FLAG)                                                      \
    static constexpr unsigned flag_bits = OPTIM_##RULE##_FLAG_BITS;                                  \
    static_assert(flag_bits <= 6, "a rule's table holds 2^flag_bits loops per dtype and tier");     \
    static constexpr int state_count = states;                                                      \
    typedef optim_##scalars##_scalars CScalars;                                                      \
    template <class S> struct Scalars {                                                              \
        OPTIM_##SCALARS##_SCALARS(OPTIM_CXX_SCALAR)                                                   \
        explicit Scalars(const CScalars &c) { OPTIM_##SCALARS##_SCALARS(OPTIM_CXX_SCALAR_FROM_C) }   \
    };

// `OPTIM_EXPORT_RULE(lower, Rule)`, after a rule's struct, defines `optim_<lower>_kernels`, in
// the one file that defines OPTIM_DEFINE_RULE_TABLES (Kernels.cpp).
#if defined(OPTIM_DEFINE_RULE_TABLES)
#define OPTIM_EXPORT_RULE(lower, Rule)                                                              \
    extern "C" const optim_segment_fn *optim_##lower##_kernels(optim_dtype dtype, optim_isa isa,   \
                                                                uint32_t *flag_bits) {              \
        return optim::table_of<optim::Rule>(dtype, isa, flag_bits);                                \
    }
#else
#define OPTIM_EXPORT_RULE(lower, Rule)
#endif

#endif

#endif
