// Adagrad's rule for dense gradients (torch.optim.Adagrad). Its update is written once: the
// documentation comment of Adagrad (Sources/Optim/Optimizers/Adagrad.swift); this is that
// formula in torch's order of operations. The sum exists before the first update, filled with
// the starting value when the optimizer is built (as torch builds it).
#define OPTIM_ADAGRAD_FLAGS(F) F(ADAGRAD, MAXIMIZE, Maximize) F(ADAGRAD, WEIGHT_DECAY, WeightDecay)
#define OPTIM_ADAGRAD_SCALARS(X) X(weight_decay) X(negative_clr) X(eps)
OPTIM_DECLARE_RULE(adagrad, ADAGRAD)

#ifdef __cplusplus
namespace optim {

struct AdagradRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(ADAGRAD, adagrad, ADAGRAD, 1)  // sum

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        grad = gradient_with_l2<F>(grad, param, s.weight_decay);
        V &sum = state[0];
        sum = sum + grad * grad;
        const V deviation = square_root(sum) + s.eps;
        param = param + s.negative_clr * grad / deviation;
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(adagrad, AdagradRule)
#endif
