// Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), as torch.optim.Adam with
// decoupled_weight_decay and torch.optim.AdamW:
//
//   g = maximize ? -grad : grad
//   param = param * (1 - lr * weight_decay)            (decoupled weight decay, AdamW)
//   g = g + weight_decay * param                       (L2 weight decay, Adam)
//   m = m + (1 - beta1) * (g - m)
//   v = beta2 * v + (1 - beta2) * g * g
//   vmax = max(vmax, v); v' = amsgrad ? vmax : v
//   param = param - (lr / (1 - beta1^t)) * m / (sqrt(v') / sqrt(1 - beta2^t) + eps)
//
// Operations are written in torch's evaluation order (lerp for m, addcmul for v, addcdiv for
// the parameter), without fused multiply-add.
#ifndef OPTIM_RULE_ADAM_H
#define OPTIM_RULE_ADAM_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct AdamRule {
    enum : unsigned {
        Maximize = OPTIM_ADAM_MAXIMIZE,
        WeightDecay = OPTIM_ADAM_WEIGHT_DECAY,
        Decoupled = OPTIM_ADAM_DECOUPLED,
        AMSGrad = OPTIM_ADAM_AMSGRAD,
    };
    static constexpr unsigned flag_bits = 4;
    static constexpr int state_count = 3;  // exp_avg, exp_avg_sq, max_exp_avg_sq
    typedef optim_adam_scalars CScalars;

    static constexpr bool reads_state(unsigned flags, int slot) {
        return slot < 2 || (flags & AMSGrad);
    }
    static constexpr bool writes_state(unsigned flags, int slot) { return reads_state(flags, slot); }

    template <class S> struct Scalars {
        S one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor,
            negative_step_size, bias_correction2_sqrt;
        explicit Scalars(const CScalars &c)
            : one_minus_beta1(S(c.one_minus_beta1)), beta2(S(c.beta2)),
              one_minus_beta2(S(c.one_minus_beta2)), eps(S(c.eps)), weight_decay(S(c.weight_decay)),
              decay_factor(S(c.decay_factor)), negative_step_size(S(c.negative_step_size)),
              bias_correction2_sqrt(S(c.bias_correction2_sqrt)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        V &exp_avg = state[0];
        V &exp_avg_sq = state[1];
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) {
            if (F & Decoupled) param = param * s.decay_factor;
            else grad = grad + s.weight_decay * param;
        }
        exp_avg = exp_avg + s.one_minus_beta1 * (grad - exp_avg);
        exp_avg_sq = exp_avg_sq * s.beta2 + s.one_minus_beta2 * grad * grad;
        V second_moment = exp_avg_sq;
        if (F & AMSGrad) {
            state[2] = maximum(state[2], exp_avg_sq);
            second_moment = state[2];
        }
        const V denominator = square_root(second_moment) / s.bias_correction2_sqrt + s.eps;
        param = param + s.negative_step_size * exp_avg / denominator;
    }
};

// A rule with Adam's memory traffic (reads param, grad and two states; writes param and the
// two states) and as little arithmetic as possible: the memory-bandwidth probe.
struct BandwidthProbeRule {
    static constexpr unsigned flag_bits = 0;
    static constexpr int state_count = 2;
    typedef optim_probe_scalars CScalars;
    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }
    template <class S> struct Scalars {
        S a, b;
        explicit Scalars(const CScalars &c) : a(S(c.a)), b(S(c.b)) {}
    };
    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        state[0] = state[0] * s.a + grad;
        state[1] = state[1] * s.b + grad;
        param = param + state[0] * state[1];
    }
};

}  // namespace optim

#endif
