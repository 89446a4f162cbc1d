// Adadelta's rule (torch.optim.Adadelta). Its update is written once: the documentation
// comment of Adadelta (Sources/Optim/Optimizers/Adadelta.swift); this is that formula in
// torch's order of operations.
#define OPTIM_ADADELTA_FLAGS(F) F(ADADELTA, MAXIMIZE, Maximize) F(ADADELTA, WEIGHT_DECAY, WeightDecay)
#define OPTIM_ADADELTA_SCALARS(X) X(rho) X(one_minus_rho) X(eps) X(weight_decay) X(negative_lr)
OPTIM_DECLARE_RULE(adadelta, ADADELTA)

#ifdef __cplusplus
namespace optim {

struct AdadeltaRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(ADADELTA, adadelta, ADADELTA, 2)  // square_avg, acc_delta

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        grad = gradient_with_l2<F>(grad, param, s.weight_decay);
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

OPTIM_EXPORT_RULE(adadelta, AdadeltaRule)
#endif
