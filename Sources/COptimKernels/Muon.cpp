// Muon, one parameter per job (see Sources/Optim/Optimizers/Muon.swift for the update).
//
// The momentum runs in the storage's math type, with torch's fused lerp; the update is added
// with one rounding, as torch's add with alpha. The Newton-Schulz iteration runs, as torch's,
// on bfloat16 matrices: every matrix product accumulates bfloat16 products (exact in float) in
// float, in order of the inner index, then applies torch's addmm epilogue beta * C + alpha * AB
// in float (beta * C fused into the add) and rounds to bfloat16. The matrices live in float scratch holding bfloat16 values,
// rows padded to whole vectors, so that each row of a product is a few vector operations per
// inner index.
#include "TensorJobs.h"

namespace optim {
namespace {

/// Round to nearest-even bfloat16 and back, as BFloat16Storage stores (NaN stays a quiet NaN).
OPTIM_INLINE VFloat round_to_bfloat16(const VFloat &v) {
    uint16_t buffer[16];
    BFloat16Storage::store(buffer, v);
    VFloat r;
    BFloat16Storage::load(r, buffer);
    return r;
}
OPTIM_INLINE float round_to_bfloat16(float x) { return round_to_bfloat16(VFloat(x))[0]; }

OPTIM_INLINE void load_floats(VFloat &v, const float *p) { memcpy(&v, p, sizeof v); }
OPTIM_INLINE void store_floats(float *p, const VFloat &v) { memcpy(p, &v, sizeof v); }

/// The first `n` lanes of a math vector as floats (doubles rounded to nearest float), and back.
template <class S> OPTIM_INLINE void store_as_floats(float *p, const typename S::Vector &v, int64_t n) {
    if constexpr (S::width == 16) {
        float buffer[16];
        memcpy(buffer, &v, sizeof buffer);
        copy_small(p, buffer, size_t(n < 16 ? n : 16) * sizeof(float));
    } else {
        const VFloat8 narrowed = __builtin_convertvector(v, VFloat8);
        float buffer[8];
        memcpy(buffer, &narrowed, sizeof buffer);
        copy_small(p, buffer, size_t(n < 8 ? n : 8) * sizeof(float));
    }
}
template <class S> OPTIM_INLINE typename S::Vector load_from_floats(const float *p, int64_t n) {
    if constexpr (S::width == 16) {
        float buffer[16] = {};
        copy_small(buffer, p, size_t(n < 16 ? n : 16) * sizeof(float));
        VFloat v;
        memcpy(&v, buffer, sizeof v);
        return v;
    } else {
        float buffer[8] = {};
        copy_small(buffer, p, size_t(n < 8 ? n : 8) * sizeof(float));
        VFloat8 v;
        memcpy(&v, buffer, sizeof v);
        return __builtin_convertvector(v, VDouble);
    }
}

/// What a product row becomes (torch's addmm with its beta and alpha).
enum class Epilogue {
    product,       // A B
    scaledSum,     // beta C + alpha A B
    addToScaled,   // beta C + A B
};

/// torch's addmm epilogue on a row of sums: beta C + alpha AB with beta C fused into the add (one
/// rounding), as its CPU matrix product computes it. Rounding beta C first sent cancelling
/// entries of the polynomial to the other bfloat16 neighbour.
template <Epilogue E> OPTIM_INLINE VFloat epilogue(const VFloat &c, const VFloat &sum, float beta, float alpha) {
    const VFloat scaled = E == Epilogue::scaledSum ? alpha * sum : sum;
    return fused_multiply_add(VFloat(beta), c, scaled);
}

/// Row i of a product: out[j] = epilogue(sum over l < k of a[l] * B[l][j]) for j < width (a
/// multiple of 16), summed in order of l. `c` is row i of the matrix the epilogue adds.
template <Epilogue E>
OPTIM_INLINE void product_row(float *out, const float *a, const float *b, int64_t ldb, int64_t k, int64_t width,
                              const float *c, float beta, float alpha) {
    int64_t j = 0;
    for (; j + 64 <= width; j += 64) {
        VFloat s0 = {}, s1 = {}, s2 = {}, s3 = {};
        for (int64_t l = 0; l < k; ++l) {
            const float *row = b + l * ldb + j;
            VFloat x0, x1, x2, x3;
            load_floats(x0, row);
            load_floats(x1, row + 16);
            load_floats(x2, row + 32);
            load_floats(x3, row + 48);
            const VFloat f = a[l];
            s0 += f * x0;
            s1 += f * x1;
            s2 += f * x2;
            s3 += f * x3;
        }
        VFloat sums[4] = {s0, s1, s2, s3};
        for (int q = 0; q < 4; ++q) {
            VFloat v = sums[q];
            if constexpr (E != Epilogue::product) {
                VFloat cv;
                load_floats(cv, c + j + 16 * q);
                v = epilogue<E>(cv, v, beta, alpha);
            }
            store_floats(out + j + 16 * q, round_to_bfloat16(v));
        }
    }
    for (; j < width; j += 16) {
        VFloat s = {};
        for (int64_t l = 0; l < k; ++l) {
            VFloat x;
            load_floats(x, b + l * ldb + j);
            s += VFloat(a[l]) * x;
        }
        if constexpr (E != Epilogue::product) {
            VFloat cv;
            load_floats(cv, c + j);
            s = epilogue<E>(cv, s, beta, alpha);
        }
        store_floats(out + j, round_to_bfloat16(s));
    }
}

/// Float elements of a job's scratch: X and Y (r x cs), X transposed (c x rs), the Gram
/// matrix and its polynomial (r x rs each), where r <= c are the matrix's extents and rs, cs
/// those rounded up to whole vectors.
OPTIM_INLINE int64_t muon_scratch_floats(int64_t rows, int64_t cols) {
    const int64_t r = rows < cols ? rows : cols, c = rows < cols ? cols : rows;
    const int64_t rs = round_up(r, 16), cs = round_up(c, 16);
    return 2 * r * cs + c * rs + 2 * r * rs;
}

template <class S> struct MuonJob {
    typedef typename S::Element E;
    typedef typename S::Scalar T;
    typedef typename S::Vector V;
    static constexpr int W = S::width;

    OPTIM_MEMBER static void run(const optim_tensor *t) {
        const optim_muon_job &job = *static_cast<const optim_muon_job *>(t->scalars);
        const int64_t rows = job.rows, cols = job.cols, n = rows * cols;
        if (n == 0) return;
        E *param = static_cast<E *>(t->param);
        const E *grad = static_cast<const E *>(t->grad);
        E *buffer = static_cast<E *>(t->state[0]);

        ScratchLease lease(job.scratch);
        // The iteration runs on the wide orientation (r <= c), as torch transposes a tall matrix.
        const bool transposed = rows > cols;
        const int64_t r = transposed ? cols : rows, c = transposed ? rows : cols;
        const int64_t rs = round_up(r, 16), cs = round_up(c, 16);
        float *x = static_cast<float *>(lease.memory);
        float *y = x + r * cs;
        float *xt = y + r * cs;
        float *gram = xt + c * rs;
        float *poly = gram + r * rs;

        // Momentum, and the matrix to orthogonalize, staged row-major in y.
        const T weight = T(job.one_minus_momentum), momentum = T(job.momentum);
        const bool nesterov = job.flags & OPTIM_MUON_NESTEROV;
        for (int64_t i = 0; i < n; i += W) {
            const int64_t m = n - i < W ? n - i : W;
            V g, b;
            load_n<S>(g, grad + i, m);
            load_n<S>(b, buffer + i, m);
            b = round_to_storage<S>(fused_lerp(b, g, weight));
            store_n<S>(buffer + i, b, m);
            const V u = nesterov ? round_to_storage<S>(fused_lerp(g, b, momentum)) : b;
            store_as_floats<S>(y + i, u, m);
        }

        // To bfloat16, in the wide orientation, rows padded with zeros; then divided by the
        // clamped norm.
        SquareSum squares;
        for (int64_t i = 0; i < r; ++i) {
            float *row = x + i * cs;
            if (!transposed) {
                for (int64_t j = 0; j < cs; j += 16) {
                    const int64_t m = c - j;
                    VFloat v = load_from_floats<Float32Storage>(y + i * c + j, m < 0 ? 0 : m);
                    v = round_to_bfloat16(v);
                    store_floats(row + j, v);
                }
            } else {
                for (int64_t j = 0; j < c; ++j) row[j] = round_to_bfloat16(y[j * r + i]);
                for (int64_t j = c; j < cs; ++j) row[j] = 0;
            }
            for (int64_t j = 0; j < cs; j += 16) {
                VFloat v;
                load_floats(v, row + j);
                squares.add(v);
            }
        }
        const float norm = clamp_min(round_to_bfloat16(float(sqrt(squares.total()))),
                                     round_to_bfloat16(float(job.eps)));
        for (int64_t i = 0; i < r; ++i) {
            for (int64_t j = 0; j < cs; j += 16) {
                VFloat v;
                load_floats(v, x + i * cs + j);
                store_floats(x + i * cs + j, round_to_bfloat16(v / norm));
            }
        }

        const float a = float(job.a), b = float(job.b), cc = float(job.c);
        for (int32_t step = 0; step < job.ns_steps; ++step) {
            for (int64_t l = 0; l < c; ++l) {
                float *row = xt + l * rs;
                for (int64_t j = 0; j < r; ++j) row[j] = x[j * cs + l];
                for (int64_t j = r; j < rs; ++j) row[j] = 0;
            }
            // gram = X Xᵀ; poly = b gram + c gram gram; Y = a X + poly X.
            for (int64_t i = 0; i < r; ++i)
                product_row<Epilogue::product>(gram + i * rs, x + i * cs, xt, rs, c, rs, nullptr, 0, 1);
            for (int64_t i = 0; i < r; ++i)
                product_row<Epilogue::scaledSum>(poly + i * rs, gram + i * rs, gram, rs, r, rs, gram + i * rs, b, cc);
            for (int64_t i = 0; i < r; ++i)
                product_row<Epilogue::addToScaled>(y + i * cs, poly + i * rs, x, cs, r, cs, x + i * cs, a, 1);
            float *swap = x;
            x = y;
            y = swap;
        }

        // The update in the parameter's orientation, row-major in y, then applied.
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) y[i * cols + j] = transposed ? x[j * cs + i] : x[i * cs + j];
        const T decay = T(job.decay_factor), step_size = T(job.negative_lr);
        for (int64_t i = 0; i < n; i += W) {
            const int64_t m = n - i < W ? n - i : W;
            V p;
            load_n<S>(p, param + i, m);
            if (job.decay_factor != 1) p = round_to_storage<S>(p * decay);
            p = fused_multiply_add(V(step_size), load_from_floats<S>(y + i, m), p);
            store_n<S>(param + i, p, m);
        }
    }
};

}  // namespace
}  // namespace optim

extern "C" optim_segment_fn optim_muon_kernel(optim_dtype dtype, optim_isa isa) {
    return optim::job_kernel<optim::MuonJob>(dtype, isa);
}

extern "C" int64_t optim_muon_scratch_bytes(int64_t rows, int64_t cols) {
    if (rows == 0 || cols == 0) return 0;
    return optim::muon_scratch_floats(rows, cols) * int64_t(sizeof(float));
}
