// Adamax's rule (torch.optim.Adamax). Its update is written once: the documentation comment of
// Adamax (Sources/Optim/Optimizers/Adamax.swift); this is that formula in torch's order of
// operations.
#define OPTIM_ADAMAX_FLAGS(F) F(ADAMAX, MAXIMIZE, Maximize) F(ADAMAX, WEIGHT_DECAY, WeightDecay)
#define OPTIM_ADAMAX_SCALARS(X) X(one_minus_beta1) X(beta2) X(eps) X(weight_decay) X(negative_clr)
OPTIM_DECLARE_RULE(adamax, ADAMAX)

#ifdef __cplusplus
namespace optim {

struct AdamaxRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(ADAMAX, adamax, ADAMAX, 2)  // exp_avg, exp_inf

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        grad = gradient_with_l2<F>(grad, param, s.weight_decay);
        V &exp_avg = state[0];
        V &exp_inf = state[1];
        exp_avg = lerp(exp_avg, grad, s.one_minus_beta1);
        exp_inf = maximum(exp_inf * s.beta2, absolute(grad) + s.eps);
        param = param + s.negative_clr * exp_avg / exp_inf;
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(adamax, AdamaxRule)
#endif
