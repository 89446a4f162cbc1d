// The updates of a row-sparse gradient, run element by element over the rows the gradient
// touches (each row of the coalesced gradient is one tensor of the launch; the state tensors
// are the state's rows at the same index).
//
// Adagrad, as torch.optim.Adagrad with a sparse gradient (no weight decay):
//   g = maximize ? -grad : grad
//   sum = sum + g * g
//   param = param + (-clr) * (g / (sqrt(sum) + eps))
//
// SparseAdam, as torch.optim.SparseAdam:
//   g = maximize ? -grad : grad
//   dm = (g - m) * (1 - beta1);  dv = (g * g - v) * (1 - beta2)
//   m = m + dm;  v = v + dv
//   param = param + (-step_size) * ((dm + m_old) / (sqrt(dv + v_old) + eps))
//   with step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
#ifndef OPTIM_RULE_SPARSE_H
#define OPTIM_RULE_SPARSE_H

#include "../Vectors.h"
#include "COptimKernels.h"

namespace optim {

struct SparseAdagradRule {
    enum : unsigned { Maximize = OPTIM_RULE_MAXIMIZE };
    static constexpr unsigned flag_bits = 1;
    static constexpr int state_count = 1;  // sum
    typedef optim_adagrad_scalars CScalars;

    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S negative_clr, eps;
        explicit Scalars(const CScalars &c) : negative_clr(S(c.negative_clr)), eps(S(c.eps)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        state[0] = state[0] + grad * grad;
        const V deviation = square_root(state[0]) + s.eps;
        param = param + s.negative_clr * (grad / deviation);
    }
};

struct SparseAdamRule {
    enum : unsigned { Maximize = OPTIM_RULE_MAXIMIZE };
    static constexpr unsigned flag_bits = 1;
    static constexpr int state_count = 2;  // exp_avg, exp_avg_sq
    typedef optim_sparse_adam_scalars CScalars;

    static constexpr bool reads_state(unsigned, int) { return true; }
    static constexpr bool writes_state(unsigned, int) { return true; }

    template <class S> struct Scalars {
        S one_minus_beta1, one_minus_beta2, eps, negative_step_size;
        explicit Scalars(const CScalars &c)
            : one_minus_beta1(S(c.one_minus_beta1)), one_minus_beta2(S(c.one_minus_beta2)), eps(S(c.eps)),
              negative_step_size(S(c.negative_step_size)) {}
    };

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        const V old_avg = state[0];
        const V old_avg_sq = state[1];
        const V avg_update = (grad - old_avg) * s.one_minus_beta1;
        const V avg_sq_update = (grad * grad - old_avg_sq) * s.one_minus_beta2;
        state[0] = old_avg + avg_update;
        state[1] = old_avg_sq + avg_sq_update;
        const V numerator = avg_update + old_avg;
        const V denominator = square_root(avg_sq_update + old_avg_sq) + s.eps;
        param = param + s.negative_step_size * (numerator / denominator);
    }
};

}  // namespace optim

#endif
