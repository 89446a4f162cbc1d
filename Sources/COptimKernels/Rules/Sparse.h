// The rules of row-sparse gradients, run element by element over the rows a gradient touches
// (each row of the coalesced gradient is one tensor of the launch; the state tensors are the
// state's rows at the same index). Their updates are written once: the documentation comments
// of Adagrad (its sparse form) and SparseAdam (Sources/Optim/Optimizers/); these are those
// formulas in torch's order of operations.
#define OPTIM_SPARSE_ADAGRAD_FLAGS(F) F(SPARSE_ADAGRAD, MAXIMIZE, Maximize)
OPTIM_DECLARE_FLAGS(sparse_adagrad, SPARSE_ADAGRAD)
#define OPTIM_SPARSE_ADAM_FLAGS(F) F(SPARSE_ADAM, MAXIMIZE, Maximize)
#define OPTIM_SPARSE_ADAM_SCALARS(X) X(one_minus_beta1) X(one_minus_beta2) X(eps) X(negative_step_size)
OPTIM_DECLARE_RULE(sparse_adam, SPARSE_ADAM)

#ifdef __cplusplus
namespace optim {

struct SparseAdagradRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(SPARSE_ADAGRAD, adagrad, ADAGRAD, 1)  // sum

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        state[0] = state[0] + grad * grad;
        const V deviation = square_root(state[0]) + s.eps;
        param = param + s.negative_clr * (grad / deviation);
    }
};

struct SparseAdamRule : EveryStateRule {
    OPTIM_RULE_MEMBERS(SPARSE_ADAM, sparse_adam, SPARSE_ADAM, 2)  // exp_avg, exp_avg_sq

    template <unsigned F, class V, class S>
    OPTIM_INLINE void apply(V &param, V &grad, V *state, const Scalars<S> &s) {
        if (F & Maximize) grad = -grad;
        const V old_avg = state[0];
        const V old_avg_sq = state[1];
        const V avg_update = (grad - old_avg) * s.one_minus_beta1;
        const V avg_sq_update = (grad * grad - old_avg_sq) * s.one_minus_beta2;
        state[0] = old_avg + avg_update;
        state[1] = old_avg_sq + avg_sq_update;
        const V numerator = avg_update + old_avg;
        const V denominator = square_root(avg_sq_update + old_avg_sq) + s.eps;
        param = param + s.negative_step_size * (numerator / denominator);
    }
};

}  // namespace optim

OPTIM_EXPORT_RULE(sparse_adagrad, SparseAdagradRule)
OPTIM_EXPORT_RULE(sparse_adam, SparseAdamRule)
#endif
