// RAdam (Liu et al., 2020), as torch.optim.RAdam:
//
//   g = maximize ? -grad : grad
//   param = param * (1 - lr * weight_decay)           (decoupled weight decay)
//   g = g + weight_decay * param                      (L2 weight decay)
//   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   u = m / (1 - beta1^t) * lr
//   rectified (rho_t > 5): u = u * (sqrt(1 - beta2^t) / (sqrt(v) + eps)) * r_t
//   param = param - u
#ifndef OPTIM_RULE_RADAM_H
#define OPTIM_RULE_RADAM_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct RAdamRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
        Decoupled = OPTIM_RULE_DECOUPLED,
        Rectify = OPTIM_RADAM_RECTIFY,
    };
    static constexpr unsigned flag_bits = 4;
    static constexpr int state_count = 2;  // exp_avg, exp_avg_sq
    typedef optim_radam_scalars CScalars;

    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S one_minus_beta1, beta2, one_minus_beta2, bias_correction1, lr, bias_correction2_sqrt, eps,
            rectification, weight_decay, decay_factor;
        explicit Scalars(const CScalars &c)
            : one_minus_beta1(S(c.one_minus_beta1)), beta2(S(c.beta2)),
              one_minus_beta2(S(c.one_minus_beta2)), bias_correction1(S(c.bias_correction1)), lr(S(c.lr)),
              bias_correction2_sqrt(S(c.bias_correction2_sqrt)), eps(S(c.eps)),
              rectification(S(c.rectification)), weight_decay(S(c.weight_decay)),
              decay_factor(S(c.decay_factor)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) {
            if (F & Decoupled) param = param * s.decay_factor;
            else grad = grad + s.weight_decay * param;
        }
        V &exp_avg = state[0];
        V &exp_avg_sq = state[1];
        exp_avg = lerp(exp_avg, grad, s.one_minus_beta1);
        exp_avg_sq = exp_avg_sq * s.beta2 + s.one_minus_beta2 * grad * grad;
        V update = exp_avg / s.bias_correction1 * s.lr;
        if (F & Rectify) {
            const V adaptive = s.bias_correction2_sqrt / (square_root(exp_avg_sq) + s.eps);
            update = update * adaptive * s.rectification;
        }
        param = param - update;
    }
};

}  // namespace optim

#endif
