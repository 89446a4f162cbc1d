// SGD's rule (torch.optim.SGD). Its update, with momentum, dampening, Nesterov momentum, weight
// decay and maximize, is written once: the documentation comment of SGD
// (Sources/Optim/Optimizers/SGD.swift); this is that formula in torch's order of operations.
#define OPTIM_SGD_FLAGS(F) F(SGD, MAXIMIZE, Maximize) F(SGD, WEIGHT_DECAY, WeightDecay) F(SGD, MOMENTUM, Momentum) F(SGD, MOMENTUM_INIT, MomentumInit) F(SGD, NESTEROV, Nesterov)
#define OPTIM_SGD_SCALARS(X) X(negative_lr) X(momentum) X(one_minus_dampening) X(weight_decay)
OPTIM_DECLARE_RULE(sgd, SGD)

#ifdef __cplusplus
namespace optim {

struct SGDRule {
    OPTIM_RULE_MEMBERS(SGD, sgd, SGD, 1)  // momentum_buffer

    static constexpr bool reads_state(unsigned flags, int) {
        return (flags & Momentum) && !(flags & MomentumInit);
    }
    static constexpr bool writes_state(unsigned flags, int) { return flags & Momentum; }

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        grad = gradient_with_l2<F>(grad, param, s.weight_decay);
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

OPTIM_EXPORT_RULE(sgd, SGDRule)
#endif
