// SGD with momentum, dampening, Nesterov momentum, weight decay and maximize, as torch.optim.SGD:
//
//   g = maximize ? -grad : grad
//   g = g + weight_decay * param                      (weight_decay != 0)
//   buf = g                                           (first step with momentum)
//   buf = momentum * buf + (1 - dampening) * g        (later steps)
//   g = nesterov ? g + momentum * buf : buf           (momentum != 0)
//   param = param - lr * g
#ifndef OPTIM_RULE_SGD_H
#define OPTIM_RULE_SGD_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct SGDRule {
    enum : unsigned {
        Maximize = OPTIM_SGD_MAXIMIZE,
        WeightDecay = OPTIM_SGD_WEIGHT_DECAY,
        Momentum = OPTIM_SGD_MOMENTUM,
        MomentumInit = OPTIM_SGD_MOMENTUM_INIT,
        Nesterov = OPTIM_SGD_NESTEROV,
    };
    static constexpr unsigned flag_bits = 5;
    static constexpr int state_count = 1;  // momentum_buffer
    typedef optim_sgd_scalars CScalars;

    static constexpr bool reads_state(unsigned flags, int) {
        return (flags & Momentum) && !(flags & MomentumInit);
    }
    static constexpr bool writes_state(unsigned flags, int) { return flags & Momentum; }

    template <class S> struct Scalars {
        S negative_lr, momentum, one_minus_dampening, weight_decay;
        explicit Scalars(const CScalars &c)
            : negative_lr(S(c.negative_lr)), momentum(S(c.momentum)),
              one_minus_dampening(S(c.one_minus_dampening)), weight_decay(S(c.weight_decay)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = grad + s.weight_decay * param;
        if (F & Momentum) {
            V &buffer = state[0];
            if (F & MomentumInit) buffer = grad;
            else buffer = buffer * s.momentum + s.one_minus_dampening * grad;
            if (F & Nesterov) grad = grad + s.momentum * buffer;
            else grad = buffer;
        }
        param = param + s.negative_lr * grad;
    }
};

}  // namespace optim

#endif
