// RAdam's rule (torch.optim.RAdam). Its update is written once: the documentation comment of
// RAdam (Sources/Optim/Optimizers/RAdam.swift); this is that formula in torch's order of
// operations, the rectified branch chosen per tensor on the Swift side.
#define OPTIM_RADAM_FLAGS(F) F(RADAM, MAXIMIZE, Maximize) F(RADAM, WEIGHT_DECAY, WeightDecay) F(RADAM, DECOUPLED, Decoupled) F(RADAM, RECTIFY, Rectify)
#define OPTIM_RADAM_SCALARS(X) X(one_minus_beta1) X(beta2) X(one_minus_beta2) X(bias_correction1) X(lr) X(bias_correction2_sqrt) X(eps) X(rectification) X(weight_decay) X(decay_factor)
OPTIM_DECLARE_RULE(radam, RADAM)

#ifdef __cplusplus
namespace optim {

struct RAdamRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(RADAM, radam, RADAM, 2)  // exp_avg, exp_avg_sq

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        adam_prologue<F>(param, grad, state, s);
        const V &exp_avg = state[0], &exp_avg_sq = state[1];
        V update = exp_avg / s.bias_correction1 * s.lr;
        if (F & Rectify) {
            const V adaptive = s.bias_correction2_sqrt / (square_root(exp_avg_sq) + s.eps);
            update = update * adaptive * s.rectification;
        }
        param = param - update;
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(radam, RAdamRule)
#endif
