// SGD's rule (torch.optim.SGD). Its update, with momentum, dampening, Nesterov momentum, weight
// decay and maximize, is written once: the documentation comment of SGD
// (Sources/Optim/Optimizers/SGD.swift); this is that formula in torch's order of operations.
// Every "plus a multiple of" is one fused multiply-add, as in torch: its for-loop path adds with
// `alpha` (one rounding) and its fused CPU kernel uses vector fmadd. Rounding the product first
// moved a float16 parameter by whole ulps where the update nearly cancels it. On float16 and
// bfloat16 this follows torch's fused kernel, whose scalar tail (the last count % 16 elements
// of a tensor) fuses the momentum product instead: b·momentum + (1 − dampening)·g with
// (1 − dampening)·g rounded first, where its vectors round b·momentum first.
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

    static constexpr bool reads_position = true;

    template <unsigned F, class Storage, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s, int64_t first, int64_t count) {
        if (F & Maximize) grad = -grad;
        if (F & WeightDecay) grad = fused_multiply_add(V(s.weight_decay), param, grad);
        if (F & Momentum) {
            V &buffer = state[0];
            if (F & MomentumInit) {
                buffer = grad;
            } else {
                V updated = fused_multiply_add(V(s.one_minus_dampening), grad, buffer * s.momentum);
                if constexpr (Storage::widened) {
                    const int64_t tail_lane = first_torch_tail_lane(first, count, Storage::width);
                    if (tail_lane < Storage::width) {
                        const V tail_form = fused_multiply_add(buffer, V(s.momentum), grad * s.one_minus_dampening);
                        const VI32 lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
                        updated = choose(lane >= VI32(int32_t(tail_lane)), tail_form, updated);
                    }
                }
                buffer = updated;
            }
            if (F & Nesterov) grad = fused_multiply_add(V(s.momentum), buffer, grad);
            else grad = buffer;
        }
        param = fused_multiply_add(V(s.negative_lr), grad, param);
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(sgd, SGDRule)
#endif
