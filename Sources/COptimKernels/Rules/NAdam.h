// NAdam's rule (torch.optim.NAdam). Its update is written once: the documentation comment of
// NAdam (Sources/Optim/Optimizers/NAdam.swift); this is that formula in torch's order of
// operations, with the momentum coefficients computed per tensor on the Swift side.
#define OPTIM_NADAM_FLAGS(F) F(NADAM, MAXIMIZE, Maximize) F(NADAM, WEIGHT_DECAY, WeightDecay) F(NADAM, DECOUPLED, Decoupled)
#define OPTIM_NADAM_SCALARS(X) X(one_minus_beta1) X(beta2) X(one_minus_beta2) X(bias_correction2) X(eps) X(weight_decay) X(decay_factor) X(grad_coefficient) X(avg_coefficient)
OPTIM_DECLARE_RULE(nadam, NADAM)

#ifdef __cplusplus
namespace optim {

struct NAdamRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(NADAM, nadam, NADAM, 2)  // exp_avg, exp_avg_sq

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        adam_prologue<F>(param, grad, state, s);
        const V &exp_avg = state[0], &exp_avg_sq = state[1];
        const V denominator = square_root(exp_avg_sq / s.bias_correction2) + s.eps;
        param = param + s.grad_coefficient * grad / denominator;
        param = param + s.avg_coefficient * exp_avg / denominator;
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(nadam, NAdamRule)
#endif
