// The element loops of the multi-tensor operations and reductions (see include/ForeachOps.h),
// for every storage dtype and instruction-set tier.
//
// Element-wise operations run as the rules do (for_each_vector, Storage.h): whole vectors, then
// the tail through zero-padded buffers and the same vector code. Fused multiply-adds appear
// only where torch's kernels fuse (add with alpha, lerp), written as explicit fma, never left
// to contraction. Reductions widen every element to double and accumulate one vector of lanes
// per piece of the reduction grid, then add the lanes in a fixed order: a piece's partial
// depends only on its elements, never on which worker or tier computed it.
#include <math.h>

#include <algorithm>

#include "COptimKernels.h"
#include "Storage.h"
#include "Tiers.h"

namespace optim {
namespace {

// ---- Element-wise operations --------------------------------------------------------------

template <class S> struct OpScalars {
    S a, b, a_minus_one;
    explicit OpScalars(const optim_foreach_scalars &c)
        : a(S(c.a)), b(S(c.b)), a_minus_one(S(c.a) - S(1)) {}
};

// Each operation: its value of optim_foreach_op, how many input lists it reads, and its math on one
// vector.
struct AddScalarOp {
    static constexpr int id = OPTIM_FOREACH_ADD_SCALAR, inputs = 0;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &, const V &, const OpScalars<S> &s) {
        return x + s.a;
    }
};
struct ScaleOp {
    static constexpr int id = OPTIM_FOREACH_SCALE, inputs = 0;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &, const V &, const OpScalars<S> &s) {
        return x * s.a;
    }
};
// Fused, as torch's CPU kernel computes add with alpha (vec::fmadd): one rounding. Every tier
// gives the same bits; the baseline tier computes the fused operation in software (libm fma).
struct AddOp {
    static constexpr int id = OPTIM_FOREACH_ADD, inputs = 1;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &, const OpScalars<S> &s) {
        const V alpha = s.a;
        return __builtin_elementwise_fma(alpha, y, x);
    }
};
struct AxpbyOp {
    static constexpr int id = OPTIM_FOREACH_AXPBY, inputs = 1;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &, const OpScalars<S> &s) {
        return s.b * x + s.a * y;
    }
};
struct AddcmulOp {
    static constexpr int id = OPTIM_FOREACH_ADDCMUL, inputs = 2;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &z, const OpScalars<S> &s) {
        return x + (s.a * y) * z;
    }
};
struct AddcdivOp {
    static constexpr int id = OPTIM_FOREACH_ADDCDIV, inputs = 2;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &z, const OpScalars<S> &s) {
        return x + (s.a * y) / z;
    }
};
// torch.lerp's two forms, each one fused multiply-add: anchored at x for |a| < 0.5, at y
// otherwise, so that the result rounds less and is exact at both ends.
struct LerpNearOp {
    static constexpr int id = OPTIM_FOREACH_LERP_NEAR, inputs = 1;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &, const OpScalars<S> &s) {
        const V weight = s.a;
        return __builtin_elementwise_fma(weight, y - x, x);
    }
};
struct LerpFarOp {
    static constexpr int id = OPTIM_FOREACH_LERP_FAR, inputs = 1;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &, const OpScalars<S> &s) {
        const V weight_minus_one = s.a_minus_one;
        return __builtin_elementwise_fma(weight_minus_one, y - x, y);
    }
};
struct SqrtOp {
    static constexpr int id = OPTIM_FOREACH_SQRT, inputs = 0;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &, const V &, const OpScalars<S> &) {
        return square_root(x);
    }
};
struct MaximumOp {
    static constexpr int id = OPTIM_FOREACH_MAXIMUM, inputs = 1;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &y, const V &, const OpScalars<S> &) {
        return maximum(x, y);
    }
};
struct ClampOp {
    static constexpr int id = OPTIM_FOREACH_CLAMP, inputs = 0;
    template <class V, class S> OPTIM_INLINE V apply(const V &x, const V &, const V &, const OpScalars<S> &s) {
        const V low = s.a, high = s.b;
        return __builtin_elementwise_minimum(maximum(x, low), high);
    }
};

template <class Op, class Storage>
OPTIM_INLINE void run_foreach(const optim_tensor *tensor, int64_t begin, int64_t end) {
    typedef typename Storage::Element Element;
    constexpr int inputs = Op::inputs;

    const OpScalars<typename Storage::Scalar> scalars(*static_cast<const optim_foreach_scalars *>(tensor->scalars));
    Element *x = static_cast<Element *>(tensor->param);
    const Element *y = static_cast<const Element *>(tensor->grad);
    const Element *z = static_cast<const Element *>(tensor->state[0]);

    for_each_vector<Storage::width>(begin, end, [&](int64_t i, int64_t n) OPTIM_INLINE_LAMBDA {
        typename Storage::Vector vx, vy = {}, vz = {};
        load_n<Storage>(vx, x + i, n);
        if (inputs >= 1) load_n<Storage>(vy, y + i, n);
        if (inputs >= 2) load_n<Storage>(vz, z + i, n);
        store_n<Storage>(x + i, Op::apply(vx, vy, vz, scalars), n);
    });
}

// Copy and zero move bits and need no math (a NaN's payload survives a copy).
template <class Storage> void run_copy(const optim_tensor *tensor, int64_t begin, int64_t end) {
    typedef typename Storage::Element Element;
    memcpy(static_cast<Element *>(tensor->param) + begin, static_cast<const Element *>(tensor->grad) + begin,
           size_t(end - begin) * sizeof(Element));
}
template <class Storage> void run_zero(const optim_tensor *tensor, int64_t begin, int64_t end) {
    typedef typename Storage::Element Element;
    memset(static_cast<Element *>(tensor->param) + begin, 0, size_t(end - begin) * sizeof(Element));
}

// ---- Reductions ---------------------------------------------------------------------------

// A storage vector as double lanes: 16 floats become two vectors of 8 doubles (exactly).
OPTIM_INLINE void to_doubles(const VFloat &v, VDouble *out) {
    out[0] = __builtin_convertvector(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), VDouble);
    out[1] = __builtin_convertvector(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), VDouble);
}
OPTIM_INLINE void to_doubles(const VDouble &v, VDouble *out) { out[0] = v; }

struct DotReduction {
    static constexpr int id = OPTIM_REDUCTION_DOT, inputs = 1;
    static constexpr bool is_maximum = false;
    OPTIM_INLINE VDouble accumulate(const VDouble &acc, const VDouble &x, const VDouble &y, double) {
        return acc + x * y;
    }
};
struct SumAbsReduction {
    static constexpr int id = OPTIM_REDUCTION_SUM_ABS, inputs = 0;
    static constexpr bool is_maximum = false;
    OPTIM_INLINE VDouble accumulate(const VDouble &acc, const VDouble &x, const VDouble &, double) {
        return acc + __builtin_elementwise_abs(x);
    }
};
struct SumSquaresReduction {
    static constexpr int id = OPTIM_REDUCTION_SUM_SQUARES, inputs = 0;
    static constexpr bool is_maximum = false;
    OPTIM_INLINE VDouble accumulate(const VDouble &acc, const VDouble &x, const VDouble &, double) {
        return acc + x * x;
    }
};
// pow has no vector form: one libm call per lane, the same function in every tier.
struct SumPowAbsReduction {
    static constexpr int id = OPTIM_REDUCTION_SUM_POW_ABS, inputs = 0;
    static constexpr bool is_maximum = false;
    OPTIM_INLINE VDouble accumulate(const VDouble &acc, const VDouble &x, const VDouble &, double p) {
        VDouble powers;
        for (int k = 0; k < 8; ++k) powers[k] = pow(fabs(x[k]), p);
        return acc + powers;
    }
};
struct MaxAbsReduction {
    static constexpr int id = OPTIM_REDUCTION_MAX_ABS, inputs = 0;
    static constexpr bool is_maximum = true;
    OPTIM_INLINE VDouble accumulate(const VDouble &acc, const VDouble &x, const VDouble &, double) {
        return maximum(acc, __builtin_elementwise_abs(x));
    }
};

template <class Reduction, class T> OPTIM_INLINE T combine(const T &a, const T &b) {
    if (Reduction::is_maximum) return __builtin_elementwise_maximum(a, b);
    return a + b;
}

template <class Reduction, int parts, class Vector>
OPTIM_INLINE void accumulate_vectors(VDouble *acc, const Vector &vx, const Vector &vy, double p) {
    VDouble dx[parts], dy[parts];
    to_doubles(vx, dx);
    if (Reduction::inputs >= 1) to_doubles(vy, dy);
    for (int k = 0; k < parts; ++k)
        acc[k] = Reduction::accumulate(acc[k], dx[k], Reduction::inputs >= 1 ? dy[k] : dx[k], p);
}

// The partial of elements [begin, end) of one tensor, all inside one block.
template <class Reduction, class Storage>
OPTIM_INLINE double reduce_piece(const typename Storage::Element *x, const typename Storage::Element *y,
                                 int64_t begin, int64_t end, double p) {
    typedef typename Storage::Element Element;
    typedef typename Storage::Vector Vector;
    constexpr int width = Storage::width;
    constexpr int parts = width / 8;
    constexpr int inputs = Reduction::inputs;

    VDouble acc[parts];
    for (int k = 0; k < parts; ++k) acc[k] = 0.0;
    int64_t i = begin;
    for (; i + width <= end; i += width) {
        Vector vx, vy = {};
        Storage::load(vx, x + i);
        if (inputs >= 1) Storage::load(vy, y + i);
        accumulate_vectors<Reduction, parts>(acc, vx, vy, p);
    }
    if (i < end) {
        // The tail (fewer elements than a vector) goes into lanes 0 and 1 only, a pair at a
        // time, and a last odd element into lane 0: with the lane order below, a piece of a
        // float64 vector is summed exactly as the BLAS dot product that torch calls on x86
        // (four two-lane accumulators over blocks of eight, the tail into the first one), which
        // LBFGS's reference trajectories follow to the last bit.
        const size_t bytes = size_t(end - i) * sizeof(Element);
        Element bx[width] = {}, by[width] = {};
        copy_small(bx, x + i, bytes);
        if (inputs >= 1) copy_small(by, y + i, bytes);
        Vector vx, vy = {};
        Storage::load(vx, bx);
        if (inputs >= 1) Storage::load(vy, by);
        VDouble dx[parts], dy[parts];
        to_doubles(vx, dx);
        if (inputs >= 1) to_doubles(vy, dy);
        const int count = int(end - i);
        for (int k = 0; k < count; ++k) {
            // Element k of the tail is lane k % 8 of part k / 8; its term alone, then added to
            // lane k % 2 of the first accumulator (other lanes of `term` are not used, so
            // what the reduction makes of zeros does not matter).
            VDouble ex = dx[k / 8], ey = inputs >= 1 ? dy[k / 8] : dx[k / 8];
            const VDouble zero = {};
            const VDouble term = Reduction::accumulate(zero, ex, ey, p);
            acc[0][k & 1] = combine<Reduction>(acc[0][k & 1], term[k % 8]);
        }
    }
    VDouble lanes = acc[0];
    for (int k = 1; k < parts; ++k) lanes = combine<Reduction>(lanes, acc[k]);
    // The even lanes, then the odd lanes, each in order, then the two (the BLAS order above).
    const double even = combine<Reduction>(combine<Reduction>(combine<Reduction>(lanes[0], lanes[2]), lanes[4]), lanes[6]);
    const double odd = combine<Reduction>(combine<Reduction>(combine<Reduction>(lanes[1], lanes[3]), lanes[5]), lanes[7]);
    return combine<Reduction>(even, odd);
}

template <class Reduction, class Storage>
OPTIM_INLINE void run_reduction(const optim_tensor *tensor, int64_t begin, int64_t end) {
    typedef typename Storage::Element Element;
    const optim_reduction_scalars &s = *static_cast<const optim_reduction_scalars *>(tensor->scalars);
    const Element *x = static_cast<const Element *>(tensor->param);
    const Element *y = static_cast<const Element *>(tensor->grad);
    int64_t position = begin;
    while (position < end) {
        const int64_t block = (s.offset + position) / OPTIM_REDUCTION_BLOCK;
        const int64_t piece_end = std::min(end, (block + 1) * OPTIM_REDUCTION_BLOCK - s.offset);
        s.partials[block + s.index] = reduce_piece<Reduction, Storage>(x, y, position, piece_end, s.p);
        position = piece_end;
    }
}

// ---- Tiers and tables ---------------------------------------------------------------------

template <class Op, class Storage> struct ForeachSegment {
    OPTIM_INLINE void run(const optim_tensor *t, int64_t b, int64_t e) { run_foreach<Op, Storage>(t, b, e); }
};
template <class Reduction, class Storage> struct ReductionSegment {
    OPTIM_INLINE void run(const optim_tensor *t, int64_t b, int64_t e) { run_reduction<Reduction, Storage>(t, b, e); }
};

// The loop of the first of Items whose `id` is `which`, or null when none is.
template <class Tier, template <class, class> class Segment, class Storage, class... Items>
optim_segment_fn segment_with_id(int which) {
    optim_segment_fn found = nullptr;
    ((found == nullptr && Items::id == which ? void(found = segment_function<Tier, Segment<Items, Storage>>()) : void()),
     ...);
    return found;
}

template <class Tier, class Storage> optim_segment_fn elementwise_for(optim_foreach_op op) {
    if (op == OPTIM_FOREACH_COPY) return &run_copy<Storage>;
    if (op == OPTIM_FOREACH_ZERO) return &run_zero<Storage>;
    return segment_with_id<Tier, ForeachSegment, Storage, AddScalarOp, ScaleOp, AddOp, AxpbyOp, AddcmulOp, AddcdivOp,
                           LerpNearOp, LerpFarOp, SqrtOp, MaximumOp, ClampOp>(op);
}

template <class Tier, class Storage> optim_segment_fn reduction_for(optim_reduction reduction) {
    return segment_with_id<Tier, ReductionSegment, Storage, DotReduction, SumAbsReduction, SumSquaresReduction,
                           SumPowAbsReduction, MaxAbsReduction>(reduction);
}

optim_segment_fn kernel_for(bool is_reduction, int which, optim_dtype dtype, optim_isa isa) {
    return with_tier(isa, [&](auto tier) {
        return with_storage<decltype(tier)>(dtype, [&](auto storage) {
            typedef decltype(tier) Tier;
            typedef decltype(storage) Storage;
            return is_reduction ? reduction_for<Tier, Storage>(optim_reduction(which))
                                : elementwise_for<Tier, Storage>(optim_foreach_op(which));
        });
    });
}

}  // namespace
}  // namespace optim

extern "C" optim_segment_fn optim_foreach_kernel(optim_foreach_op op, optim_dtype dtype, optim_isa isa) {
    return optim::kernel_for(false, int(op), dtype, isa);
}

extern "C" optim_segment_fn optim_reduction_kernel(optim_reduction reduction, optim_dtype dtype, optim_isa isa) {
    return optim::kernel_for(true, int(reduction), dtype, isa);
}

// ---- torch's order of a sum ------------------------------------------------------------------

namespace {

// W lanes of T, added lane by lane: the accumulator of torch's vectorized sum.
template <class T, int W> struct Lanes {
    T lane[W];
    Lanes() { for (int k = 0; k < W; ++k) lane[k] = T(0); }
    Lanes &operator+=(const Lanes &other) {
        for (int k = 0; k < W; ++k) lane[k] += other.lane[k];
        return *this;
    }
};

int64_t ceil_log2(int64_t x) {
    if (x <= 2) return 1;
    return 64 - __builtin_clzll(uint64_t(x - 1));
}

// Four interleaved running sums over `rows` rows (row i, column k is load(4 i + k)), each kept
// in a cascade of four levels that carries a level's total up every 2^p rows, so that only
// sums of similar size meet.
template <class Item, class Load> void cascade_four(Item out[4], int64_t rows, const Load &load) {
    constexpr int levels = 4;
    const int64_t level_power = std::max<int64_t>(4, ceil_log2(rows) / levels);
    const int64_t level_step = int64_t(1) << level_power;
    const int64_t level_mask = level_step - 1;
    Item acc[levels][4];
    int64_t i = 0;
    while (i + level_step <= rows) {
        for (int64_t j = 0; j < level_step; ++j, ++i)
            for (int k = 0; k < 4; ++k) acc[0][k] += load(4 * i + k);
        for (int j = 1; j < levels; ++j) {
            for (int k = 0; k < 4; ++k) {
                acc[j][k] += acc[j - 1][k];
                acc[j - 1][k] = Item();
            }
            if ((i & (level_mask << (j * level_power))) != 0) break;
        }
    }
    for (; i < rows; ++i)
        for (int k = 0; k < 4; ++k) acc[0][k] += load(4 * i + k);
    for (int j = 1; j < levels; ++j)
        for (int k = 0; k < 4; ++k) acc[0][k] += acc[j][k];
    for (int k = 0; k < 4; ++k) out[k] = acc[0][k];
}

// The sum of load(0) ... load(size - 1): four running sums, the rest into the first, then
// the four in order.
template <class Item, class Load> Item four_way_sum(int64_t size, const Load &load) {
    Item partial[4];
    cascade_four(partial, size / 4, load);
    for (int64_t i = size / 4 * 4; i < size; ++i) partial[0] += load(i);
    for (int k = 1; k < 4; ++k) partial[0] += partial[k];
    return partial[0];
}

template <class T> struct Scalar {
    T value = T(0);
    Scalar() = default;
    explicit Scalar(T v) : value(v) {}
    Scalar &operator+=(const Scalar &other) {
        value += other.value;
        return *this;
    }
};

template <class T> T torch_order_sum_abs(const T *x, int64_t n) {
    constexpr int W = 32 / int(sizeof(T));  // an AVX2 vector
    if (n < W) return four_way_sum<Scalar<T>>(n, [&](int64_t i) { return Scalar<T>(T(fabs(x[i]))); }).value;
    const int64_t vectors = n / W;
    const Lanes<T, W> lanes = four_way_sum<Lanes<T, W>>(vectors, [&](int64_t v) {
        Lanes<T, W> loaded;
        for (int k = 0; k < W; ++k) loaded.lane[k] = T(fabs(x[v * W + k]));
        return loaded;
    });
    T total = T(0);
    for (int64_t i = vectors * W; i < n; ++i) total += T(fabs(x[i]));
    for (int k = 0; k < W; ++k) total += lanes.lane[k];
    return total;
}

// The float32 dot product of the BLAS torch links on x86 (MKL, AVX2), for vectors as torch
// allocates them (aligned): products rounded to float, added into eight float lanes by blocks
// of eight, a last block of four into lanes 0 to 3, the rest one by one into lane 0; then lane
// j plus lane j + 4, and of those (0 + 2) + (1 + 3). That is its order, bit for bit, up to 15
// elements. From 16 on it interleaves its blocks in a way not reproduced here: two running
// sums of alternate blocks, added after the tail, agree with it to rounding.
float torch_order_dot_float32(const float *x, const float *y, int64_t n) {
    float lanes[2][8] = {};
    int64_t i = 0;
    for (int block = 0; i + 8 <= n; i += 8, block ^= 1)
        for (int k = 0; k < 8; ++k) lanes[block][k] += x[i + k] * y[i + k];
    float *acc = lanes[0];
    if (i + 4 <= n) {
        for (int k = 0; k < 4; ++k) acc[k] += x[i + k] * y[i + k];
        i += 4;
    }
    for (; i < n; ++i) acc[0] += x[i] * y[i];
    for (int k = 0; k < 8; ++k) acc[k] += lanes[1][k];
    float half[4];
    for (int k = 0; k < 4; ++k) half[k] = acc[k] + acc[k + 4];
    return (half[0] + half[2]) + (half[1] + half[3]);
}

}  // namespace

extern "C" double optim_torch_order_dot_float32(const float *x, const float *y, int64_t count) {
    return double(torch_order_dot_float32(x, y, count));
}

extern "C" double optim_torch_order_sum_abs(const void *x, int64_t count, optim_dtype dtype) {
    switch (dtype) {
    case OPTIM_DTYPE_FLOAT64: return torch_order_sum_abs(static_cast<const double *>(x), count);
    case OPTIM_DTYPE_FLOAT32: return double(torch_order_sum_abs(static_cast<const float *>(x), count));
    default: return 0.0;
    }
}

extern "C" double optim_reduction_combine(const double *partials, int64_t first, int64_t count, int32_t maximum) {
    if (count <= 0) return 0.0;
    double result = maximum ? partials[first] : 0.0;
    for (int64_t i = first; i < first + count; ++i)
        result = maximum ? __builtin_elementwise_maximum(result, partials[i]) : result + partials[i];
    return result;
}
