// RMSprop (Hinton, 2012; centered form: Graves, 2013), as torch.optim.RMSprop:
//
//   g = maximize ? -grad : grad;  g = g + weight_decay * param
//   v = alpha * v + (1 - alpha) * g * g
//   centered: a = lerp(a, g, 1 - alpha);  d = sqrt(v - a * a) + eps,  else d = sqrt(v) + eps
//   momentum: b = momentum * b + g / d;  param = param - lr * b
//   else:     param = param - lr * g / d
#ifndef OPTIM_RULE_RMSPROP_H
#define OPTIM_RULE_RMSPROP_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct RMSpropRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
        Momentum = OPTIM_RMSPROP_MOMENTUM,
        Centered = OPTIM_RMSPROP_CENTERED,
    };
    static constexpr unsigned flag_bits = 4;
    static constexpr int state_count = 3;  // square_avg, momentum_buffer, grad_avg
    typedef optim_rmsprop_scalars CScalars;

    static constexpr bool reads_state(unsigned flags, int slot) {
        return slot == 0 || (slot == 1 && (flags & Momentum)) || (slot == 2 && (flags & Centered));
    }
    static constexpr bool writes_state(unsigned flags, int slot) { return reads_state(flags, slot); }

    template <class S> struct Scalars {
        S alpha, one_minus_alpha, eps, weight_decay, momentum, negative_lr;
        explicit Scalars(const CScalars &c)
            : alpha(S(c.alpha)), one_minus_alpha(S(c.one_minus_alpha)), eps(S(c.eps)),
              weight_decay(S(c.weight_decay)), momentum(S(c.momentum)), negative_lr(S(c.negative_lr)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = grad + s.weight_decay * param;
        V &square_avg = state[0];
        square_avg = square_avg * s.alpha + s.one_minus_alpha * grad * grad;
        V average;
        if (F & Centered) {
            state[2] = lerp(state[2], grad, s.one_minus_alpha);
            average = square_root(square_avg + -state[2] * state[2]);
        } else {
            average = square_root(square_avg);
        }
        average = average + s.eps;
        if (F & Momentum) {
            state[1] = state[1] * s.momentum + grad / average;
            param = param + s.negative_lr * state[1];
        } else {
            param = param + s.negative_lr * grad / average;
        }
    }
};

}  // namespace optim

#endif
