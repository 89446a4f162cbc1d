// Adafactor, one parameter per job (see Sources/Optim/Optimizers/Adafactor.swift for the
// update). Math in the storage's math type (float, or double for float64), every intermediate
// tensor of torch's single-tensor path rounded to the storage type as torch stores it; the
// norms, row and column sums of squares accumulate in double in a fixed order. The update is
// computed twice, once for its norm and once to apply it, by the same code: no buffer of the
// parameter's size is needed, as Adafactor is chosen for its small memory.
#include "TensorJobs.h"

namespace optim {
namespace {

template <class S> struct AdafactorJob {
    typedef typename S::Element E;
    typedef typename S::Scalar T;
    typedef typename S::Vector V;
    static constexpr int W = S::width;

    /// The update of one vector: g / max(sqrt(estimate), eps1), as torch's
    /// rsqrt(clamp(estimate, eps1^2)) * g, rounded as torch rounds each step.
    OPTIM_MEMBER static V update(const V &estimate, const V &g, T eps1_squared) {
        const V clamped = round_to_storage<S>(maximum(estimate, V(eps1_squared)));
        const V inverse = round_to_storage<S>(V(T(1)) / square_root(clamped));
        return round_to_storage<S>(inverse * g);
    }

    OPTIM_MEMBER static V gradient(const E *p, int64_t n, bool maximize) {
        V g;
        load_n<S>(g, p, n);
        return maximize ? -g : g;
    }

    OPTIM_MEMBER static void apply(E *param, const V &u, int64_t n, const optim_adafactor_job &job,
                                   T coefficient) {
        V p;
        load_n<S>(p, param, n);
        if (job.flags & OPTIM_ADAFACTOR_WEIGHT_DECAY) p = round_to_storage<S>(p * T(job.decay_factor));
        p = p + coefficient * u;
        store_n<S>(param, p, n);
    }

    /// max(mean of the row factors, eps1): the denominator of the factored estimate.
    OPTIM_MEMBER static T row_mean(const E *row_var, int64_t rows, T eps1) {
        double sum = 0;
        for (int64_t r = 0; r < rows; ++r) sum += double(load_one<S>(row_var + r));
        return round_to_storage<S>(clamp_min(round_to_storage<S>(T(sum / double(rows))), eps1));
    }

    /// Calls `take(at, m, u)` for each vector of the update of one matrix of a factored parameter
    /// (`u` for its elements at ..< at + m), the second moment estimated as row factor × column
    /// factor / mean row factor. Both passes, the update's norm and its application, take the
    /// update from here, so that the norm is the norm of the update applied.
    template <class Take>
    OPTIM_MEMBER static void factored_updates(const E *grad, const E *row_var, const E *col_var, int64_t rows,
                                              int64_t cols, T eps1, T eps1_squared, bool maximize, const Take &take) {
        const T denominator = row_mean(row_var, rows, eps1);
        for (int64_t r = 0; r < rows; ++r) {
            const T row_factor = load_one<S>(row_var + r);
            for (int64_t j = 0; j < cols; j += W) {
                const int64_t m = cols - j < W ? cols - j : W;
                V col_factor;
                load_n<S>(col_factor, col_var + j, m);
                const V estimate = round_to_storage<S>(round_to_storage<S>(row_factor * col_factor) / denominator);
                const int64_t at = r * cols + j;
                take(at, m, update(estimate, gradient(grad + at, m, maximize), eps1_squared));
            }
        }
    }

    OPTIM_MEMBER static void run(const optim_tensor *t) {
        const optim_adafactor_job &job = *static_cast<const optim_adafactor_job *>(t->scalars);
        const int64_t n = job.count;
        if (n == 0) return;
        E *param = static_cast<E *>(t->param);
        const E *grad = static_cast<const E *>(t->grad);
        const bool maximize = job.flags & OPTIM_ADAFACTOR_MAXIMIZE;
        const T w = T(job.one_minus_beta2);
        const T eps1 = T(job.eps1);
        const T eps1_squared = T(job.eps1 * job.eps1);

        // alpha from the parameter's RMS before weight decay.
        SquareSum param_squares;
        for (int64_t i = 0; i < n; i += W) {
            V p;
            load_n<S>(p, param + i, n - i);
            param_squares.add(p);
        }
        const double param_norm = double(round_to_storage<S>(T(sqrt(param_squares.total()))));
        const double alpha = python_max(job.eps2, param_norm / sqrt(double(n))) * job.rho;

        SquareSum update_squares;
        if (job.rows == 0) {
            E *variance = static_cast<E *>(t->state[2]);
            for (int64_t i = 0; i < n; i += W) {
                const int64_t m = n - i < W ? n - i : W;
                const V g = gradient(grad + i, m, maximize);
                V v;
                load_n<S>(v, variance + i, m);
                v = round_to_storage<S>(lerp(v, round_to_storage<S>(g * g), w));
                store_n<S>(variance + i, v, m);
                update_squares.add(keep_first<V, W>(update(v, g, eps1_squared), m));
            }
        } else {
            const int64_t rows = job.rows, cols = job.cols;
            ScratchLease lease(job.scratch);
            double *col_sums = static_cast<double *>(lease.memory);
            E *row_vars = static_cast<E *>(t->state[0]);
            E *col_vars = static_cast<E *>(t->state[1]);
            for (int64_t b = 0; b < job.batches; ++b) {
                const E *g_batch = grad + b * rows * cols;
                E *row_var = row_vars + b * rows;
                E *col_var = col_vars + b * cols;
                for (int64_t j = 0; j < round_up(cols, W); ++j) col_sums[j] = 0;
                for (int64_t r = 0; r < rows; ++r) {
                    SquareSum row_squares;
                    for (int64_t j = 0; j < cols; j += W) {
                        V g;
                        load_n<S>(g, g_batch + r * cols + j, cols - j);
                        row_squares.add(g);
                        add_squares_to(col_sums + j, g);
                    }
                    // torch: vector_norm(g, dim=-1).square_().div_(cols), each rounded.
                    const T norm = round_to_storage<S>(T(sqrt(row_squares.total())));
                    const T mean = round_to_storage<S>(round_to_storage<S>(norm * norm) / T(cols));
                    store_one<S>(row_var + r, round_to_storage<S>(lerp_scalar(load_one<S>(row_var + r), mean, w)));
                }
                for (int64_t j = 0; j < cols; ++j) {
                    const T norm = round_to_storage<S>(T(sqrt(col_sums[j])));
                    const T mean = round_to_storage<S>(round_to_storage<S>(norm * norm) / T(rows));
                    store_one<S>(col_var + j, round_to_storage<S>(lerp_scalar(load_one<S>(col_var + j), mean, w)));
                }
                factored_updates(g_batch, row_var, col_var, rows, cols, eps1, eps1_squared, maximize,
                                 [&](int64_t, int64_t m, const V &u) OPTIM_INLINE_LAMBDA {
                                     update_squares.add(keep_first<V, W>(u, m));
                                 });
            }
        }

        const double update_norm = double(round_to_storage<S>(T(sqrt(update_squares.total()))));
        const double denominator = python_max(1.0, update_norm / (sqrt(double(n)) * job.d));
        const T coefficient = T(-alpha / denominator);

        if (job.rows == 0) {
            const E *variance = static_cast<const E *>(t->state[2]);
            for (int64_t i = 0; i < n; i += W) {
                const int64_t m = n - i < W ? n - i : W;
                V v;
                load_n<S>(v, variance + i, m);
                apply(param + i, update(v, gradient(grad + i, m, maximize), eps1_squared), m, job, coefficient);
            }
        } else {
            const int64_t rows = job.rows, cols = job.cols;
            const E *row_vars = static_cast<const E *>(t->state[0]);
            const E *col_vars = static_cast<const E *>(t->state[1]);
            for (int64_t b = 0; b < job.batches; ++b) {
                const int64_t offset = b * rows * cols;
                const E *row_var = row_vars + b * rows;
                const E *col_var = col_vars + b * cols;
                factored_updates(grad + offset, row_var, col_var, rows, cols, eps1, eps1_squared, maximize,
                                 [&](int64_t at, int64_t m, const V &u) OPTIM_INLINE_LAMBDA {
                                     apply(param + offset + at, u, m, job, coefficient);
                                 });
            }
        }
    }
};

}  // namespace
}  // namespace optim

extern "C" optim_segment_fn optim_adafactor_kernel(optim_dtype dtype, optim_isa isa) {
    return optim::job_kernel<optim::AdafactorJob>(dtype, isa);
}

extern "C" int64_t optim_adafactor_scratch_bytes(int64_t rows, int64_t cols) {
    // Column sums in double, padded to whole vectors.
    return rows == 0 ? 0 : optim::round_up(cols, 16) * int64_t(sizeof(double));
}
