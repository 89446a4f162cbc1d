// NAdam (Dozat, 2016), as torch.optim.NAdam; mu_t and their running product are per-tensor
// scalars computed on the Swift side:
//
//   g = maximize ? -grad : grad
//   param = param * (1 - lr * weight_decay)           (decoupled weight decay)
//   g = g + weight_decay * param                      (L2 weight decay)
//   m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
//   d = sqrt(v / (1 - beta2^t)) + eps
//   param = param + c_g * g / d;  param = param + c_m * m / d
//   with c_g = -lr (1 - mu_t) / (1 - prod_{i<=t} mu_i), c_m = -lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i)
#ifndef OPTIM_RULE_NADAM_H
#define OPTIM_RULE_NADAM_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct NAdamRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
        Decoupled = OPTIM_RULE_DECOUPLED,
    };
    static constexpr unsigned flag_bits = 3;
    static constexpr int state_count = 2;  // exp_avg, exp_avg_sq
    typedef optim_nadam_scalars CScalars;

    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S one_minus_beta1, beta2, one_minus_beta2, bias_correction2, eps, weight_decay, decay_factor,
            grad_coefficient, avg_coefficient;
        explicit Scalars(const CScalars &c)
            : one_minus_beta1(S(c.one_minus_beta1)), beta2(S(c.beta2)),
              one_minus_beta2(S(c.one_minus_beta2)), bias_correction2(S(c.bias_correction2)),
              eps(S(c.eps)), weight_decay(S(c.weight_decay)), decay_factor(S(c.decay_factor)),
              grad_coefficient(S(c.grad_coefficient)), avg_coefficient(S(c.avg_coefficient)) {}
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
        const V denominator = square_root(exp_avg_sq / s.bias_correction2) + s.eps;
        param = param + s.grad_coefficient * grad / denominator;
        param = param + s.avg_coefficient * exp_avg / denominator;
    }
};

}  // namespace optim

#endif
