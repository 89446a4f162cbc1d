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

#include "COptimKernels.h"

#define OPTIM_NADAM_FLAGS(F) F(NADAM, MAXIMIZE, Maximize) F(NADAM, WEIGHT_DECAY, WeightDecay) F(NADAM, DECOUPLED, Decoupled)
#define OPTIM_NADAM_SCALARS(X) X(one_minus_beta1) X(beta2) X(one_minus_beta2) X(bias_correction2) X(eps) X(weight_decay) X(decay_factor) X(grad_coefficient) X(avg_coefficient)
OPTIM_DECLARE_RULE(nadam, NADAM)

#ifdef __cplusplus
#include "../Vectors.h"

namespace optim {

struct NAdamRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(NADAM, nadam, NADAM)
    static constexpr int state_count = 2;  // exp_avg, exp_avg_sq

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

#endif
