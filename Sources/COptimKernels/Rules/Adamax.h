// Adamax (Kingma & Ba, 2015, section 7), as torch.optim.Adamax:
//
//   g = maximize ? -grad : grad;  g = g + weight_decay * param
//   m = lerp(m, g, 1 - beta1)
//   u = max(beta2 * u, |g| + eps)
//   param = param - (lr / (1 - beta1^t)) * m / u
#ifndef OPTIM_RULE_ADAMAX_H
#define OPTIM_RULE_ADAMAX_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct AdamaxRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
    };
    static constexpr unsigned flag_bits = 2;
    static constexpr int state_count = 2;  // exp_avg, exp_inf
    typedef optim_adamax_scalars CScalars;

    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S one_minus_beta1, beta2, eps, weight_decay, negative_clr;
        explicit Scalars(const CScalars &c)
            : one_minus_beta1(S(c.one_minus_beta1)), beta2(S(c.beta2)), eps(S(c.eps)),
              weight_decay(S(c.weight_decay)), negative_clr(S(c.negative_clr)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = grad + s.weight_decay * param;
        V &exp_avg = state[0];
        V &exp_inf = state[1];
        exp_avg = lerp(exp_avg, grad, s.one_minus_beta1);
        exp_inf = maximum(exp_inf * s.beta2, absolute(grad) + s.eps);
        param = param + s.negative_clr * exp_avg / exp_inf;
    }
};

}  // namespace optim

#endif
