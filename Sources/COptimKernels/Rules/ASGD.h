// Averaged SGD (Polyak & Juditsky, 1992), as torch.optim.ASGD. eta and mu are the values kept
// from the previous step (per tensor, rounded as torch keeps them):
//
//   g = maximize ? -grad : grad;  g = g + weight_decay * param
//   param = param * (1 - lambd * eta)
//   param = param - eta * g
//   ax = mu == 1 ? param : ax + (param - ax) * mu
#ifndef OPTIM_RULE_ASGD_H
#define OPTIM_RULE_ASGD_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct ASGDRule {
    enum : unsigned {
        Maximize = OPTIM_RULE_MAXIMIZE,
        WeightDecay = OPTIM_RULE_WEIGHT_DECAY,
        CopyAverage = OPTIM_ASGD_COPY_AVERAGE,
    };
    static constexpr unsigned flag_bits = 3;
    static constexpr int state_count = 1;  // ax
    typedef optim_asgd_scalars CScalars;

    static constexpr bool reads_state(unsigned flags, int) { return !(flags & CopyAverage); }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S weight_decay, decay, negative_eta, mu;
        explicit Scalars(const CScalars &c)
            : weight_decay(S(c.weight_decay)), decay(S(c.decay)), negative_eta(S(c.negative_eta)),
              mu(S(c.mu)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = grad + s.weight_decay * param;
        param = param * s.decay;
        param = param + s.negative_eta * grad;
        if (F & CopyAverage) state[0] = param;
        else state[0] = state[0] + (param - state[0]) * s.mu;
    }
};

}  // namespace optim

#endif
