// Adagrad (Duchi et al., 2011), as torch.optim.Adagrad with a dense gradient:
//
//   g = maximize ? -grad : grad;  g = g + weight_decay * param
//   sum = sum + g * g                      (sum starts at initial_accumulator_value)
//   param = param - clr * g / (sqrt(sum) + eps),   clr = lr / (1 + (step - 1) * lr_decay)
#ifndef OPTIM_RULE_ADAGRAD_H
#define OPTIM_RULE_ADAGRAD_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct AdagradRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
        Initialize = OPTIM_ADAGRAD_INITIALIZE,
    };
    static constexpr unsigned flag_bits = 3;
    static constexpr int state_count = 1;  // sum
    typedef optim_adagrad_scalars CScalars;

    static constexpr bool reads_state(unsigned flags, int) { return !(flags & Initialize); }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S weight_decay, negative_clr, eps, initial_accumulator_value;
        explicit Scalars(const CScalars &c)
            : weight_decay(S(c.weight_decay)), negative_clr(S(c.negative_clr)), eps(S(c.eps)),
              initial_accumulator_value(S(c.initial_accumulator_value)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = grad + s.weight_decay * param;
        V &sum = state[0];
        if (F & Initialize) sum = V(s.initial_accumulator_value);
        sum = sum + grad * grad;
        const V deviation = square_root(sum) + s.eps;
        param = param + s.negative_clr * grad / deviation;
    }
};

}  // namespace optim

#endif
