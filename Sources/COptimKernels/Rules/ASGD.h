// ASGD's rule (torch.optim.ASGD). Its update is written once: the documentation comment of
// ASGD (Sources/Optim/Optimizers/ASGD.swift); this is that formula in torch's order of
// operations, with η and μ computed per tensor on the Swift side.
#define OPTIM_ASGD_FLAGS(F) F(ASGD, MAXIMIZE, Maximize) F(ASGD, WEIGHT_DECAY, WeightDecay) F(ASGD, COPY_AVERAGE, CopyAverage)
#define OPTIM_ASGD_SCALARS(X) X(weight_decay) X(decay) X(negative_eta) X(mu)
OPTIM_DECLARE_RULE(asgd, ASGD)

#ifdef __cplusplus
namespace optim {

struct ASGDRule : OverwritesStateUnder<OPTIM_ASGD_COPY_AVERAGE> {
    OPTIM_RULE_MEMBERS(ASGD, asgd, ASGD, 1)  // ax

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        grad = gradient_with_l2<F>(grad, param, s.weight_decay);
        param = param * s.decay;
        param = param + s.negative_eta * grad;
        if (F & CopyAverage) state[0] = param;
        else state[0] = state[0] + (param - state[0]) * s.mu;
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(asgd, ASGDRule)
#endif
