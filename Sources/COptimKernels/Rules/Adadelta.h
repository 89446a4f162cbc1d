// Adadelta (Zeiler, 2012), as torch.optim.Adadelta:
//
//   g = maximize ? -grad : grad;  g = g + weight_decay * param
//   v = rho * v + (1 - rho) * g * g
//   delta = sqrt(u + eps) / sqrt(v + eps) * g
//   u = rho * u + (1 - rho) * delta * delta
//   param = param - lr * delta
#ifndef OPTIM_RULE_ADADELTA_H
#define OPTIM_RULE_ADADELTA_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct AdadeltaRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
    };
    static constexpr unsigned flag_bits = 2;
    static constexpr int state_count = 2;  // square_avg, acc_delta
    typedef optim_adadelta_scalars CScalars;

    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S rho, one_minus_rho, eps, weight_decay, negative_lr;
        explicit Scalars(const CScalars &c)
            : rho(S(c.rho)), one_minus_rho(S(c.one_minus_rho)), eps(S(c.eps)),
              weight_decay(S(c.weight_decay)), negative_lr(S(c.negative_lr)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = grad + s.weight_decay * param;
        V &square_avg = state[0];
        V &acc_delta = state[1];
        square_avg = square_avg * s.rho + s.one_minus_rho * grad * grad;
        const V deviation = square_root(square_avg + s.eps);
        V delta = square_root(acc_delta + s.eps);
        delta = delta / deviation * grad;
        acc_delta = acc_delta * s.rho + s.one_minus_rho * delta * delta;
        param = param + s.negative_lr * delta;
    }
};

}  // namespace optim

#endif
