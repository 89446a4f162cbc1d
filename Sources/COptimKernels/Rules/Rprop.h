// Rprop's rule (torch.optim.Rprop). Its update is written once: the documentation comment of
// Rprop (Sources/Optim/Optimizers/Rprop.swift); this is that formula in torch's order of
// operations.
#define OPTIM_RPROP_FLAGS(F) F(RPROP, MAXIMIZE, Maximize) F(RPROP, INITIALIZE, Initialize)
#define OPTIM_RPROP_SCALARS(X) X(eta_minus) X(eta_plus) X(step_size_min) X(step_size_max) X(lr)
OPTIM_DECLARE_RULE(rprop, RPROP)

#ifdef __cplusplus
namespace optim {

struct RpropRule : OverwritesStateUnder<OPTIM_RPROP_INITIALIZE> {
    OPTIM_RULE_MEMBERS(RPROP, rprop, RPROP, 2)  // prev, step_size

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        V &prev = state[0];
        V &step_size = state[1];
        if (F & Initialize) {
            prev = V(S(0));
            step_size = V(s.lr);
        }
        const V product = grad * prev;
        const V zero = V(S(0));
        // torch's sign of a NaN product is 0, so a NaN gradient keeps the step size (factor 1),
        // moves nothing (its sign is 0 too) and becomes the previous gradient.
        const V factor = choose(product > zero, V(s.eta_plus), choose(product < zero, V(s.eta_minus), V(S(1))));
        step_size = minimum(maximum(step_size * factor, V(s.step_size_min)), V(s.step_size_max));
        grad = choose(factor == s.eta_minus, zero, grad);
        param = param + -sign(grad) * step_size;
        prev = grad;
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(rprop, RpropRule)
#endif
