// Adam's and AdamW's rule (torch.optim.Adam, AdamW). Its update is written once: the
// documentation comment of Adam (Sources/Optim/Optimizers/Adam.swift); this is that formula in
// torch's order of operations (lerp for m, addcmul for v, addcdiv for the parameter), without
// fused multiply-add.
#define OPTIM_ADAM_FLAGS(F) F(ADAM, MAXIMIZE, Maximize) F(ADAM, WEIGHT_DECAY, WeightDecay) F(ADAM, DECOUPLED, Decoupled) F(ADAM, AMSGRAD, AMSGrad)
#define OPTIM_ADAM_SCALARS(X) X(one_minus_beta1) X(beta2) X(one_minus_beta2) X(eps) X(weight_decay) X(decay_factor) X(negative_step_size) X(bias_correction2_sqrt)
OPTIM_DECLARE_RULE(adam, ADAM)
#define OPTIM_BANDWIDTH_PROBE_FLAGS(F)
#define OPTIM_BANDWIDTH_PROBE_SCALARS(X) X(a) X(b)
OPTIM_DECLARE_RULE(bandwidth_probe, BANDWIDTH_PROBE)

#ifdef __cplusplus
namespace optim {

struct AdamRule {
    OPTIM_RULE_MEMBERS(ADAM, adam, ADAM, 3)  // exp_avg, exp_avg_sq, max_exp_avg_sq

    static constexpr bool reads_state(unsigned flags, int slot) {
        return slot < 2 || (flags & AMSGrad);
    }
    static constexpr bool writes_state(unsigned flags, int slot) { return reads_state(flags, slot); }

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        adam_prologue<F>(param, grad, state, s);
        const V &exp_avg = state[0], &exp_avg_sq = state[1];
        V second_moment = exp_avg_sq;
        if (F & AMSGrad) {
            state[2] = maximum(state[2], exp_avg_sq);
            second_moment = state[2];
        }
        const V denominator = square_root(second_moment) / s.bias_correction2_sqrt + s.eps;
        param = param + s.negative_step_size * exp_avg / denominator;
    }
};

// A rule with Adam's memory traffic (reads param, grad and two states; writes param and the
// two states) and as little arithmetic as possible: the memory-bandwidth probe.
struct BandwidthProbeRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(BANDWIDTH_PROBE, bandwidth_probe, BANDWIDTH_PROBE, 2)

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        state[0] = state[0] * s.a + grad;
        state[1] = state[1] * s.b + grad;
        param = param + state[0] * state[1];
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(adam, AdamRule)
OPTIM_EXPORT_RULE(bandwidth_probe, BandwidthProbeRule)
#endif
