// RMSprop's rule (torch.optim.RMSprop, centered and with momentum). Its update is written once:
// the documentation comment of RMSprop (Sources/Optim/Optimizers/RMSprop.swift); this is that
// formula in torch's order of operations.
#define OPTIM_RMSPROP_FLAGS(F) F(RMSPROP, MAXIMIZE, Maximize) F(RMSPROP, WEIGHT_DECAY, WeightDecay) F(RMSPROP, MOMENTUM, Momentum) F(RMSPROP, CENTERED, Centered)
#define OPTIM_RMSPROP_SCALARS(X) X(alpha) X(one_minus_alpha) X(eps) X(weight_decay) X(momentum) X(negative_lr)
OPTIM_DECLARE_RULE(rmsprop, RMSPROP)

#ifdef __cplusplus
namespace optim {

struct RMSpropRule {
    OPTIM_RULE_MEMBERS(RMSPROP, rmsprop, RMSPROP, 3)  // square_avg, momentum_buffer, grad_avg

    static constexpr bool reads_state(unsigned flags, int slot) {
        return slot == 0 || (slot == 1 && (flags & Momentum)) || (slot == 2 && (flags & Centered));
    }
    static constexpr bool writes_state(unsigned flags, int slot) { return reads_state(flags, slot); }

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        grad = gradient_with_l2<F>(grad, param, s.weight_decay);
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

OPTIM_EXPORT_RULE(rmsprop, RMSpropRule)
#endif
