// The element loop every rule runs in: loads a vector of each array, applies the rule, stores
// what the rule wrote. The tail goes through zero-padded buffers and the same vector code, so
// every element of a tensor is computed by the same instructions wherever a chunk boundary
// falls.
#ifndef OPTIM_SEGMENT_LOOP_H
#define OPTIM_SEGMENT_LOOP_H

#include "Storage.h"

namespace optim {

template <class Rule, class Storage, unsigned F>
OPTIM_INLINE void run_segment(const optim_tensor *tensor, int64_t begin, int64_t end) {
    typedef typename Storage::Element Element;
    typedef typename Storage::Vector Vector;
    typedef typename Storage::Scalar Scalar;
    constexpr int width = Storage::width;
    constexpr int states = Rule::state_count;

    const typename Rule::template Scalars<Scalar> scalars(
        *static_cast<const typename Rule::CScalars *>(tensor->scalars));
    Element *param = static_cast<Element *>(tensor->param);
    const Element *grad = static_cast<const Element *>(tensor->grad);
    Element *state[states > 0 ? states : 1];
    for (int k = 0; k < states; ++k) state[k] = static_cast<Element *>(tensor->state[k]);

    int64_t i = begin;
    for (; i + width <= end; i += width) {
        Vector p, g, s[states > 0 ? states : 1];
        Storage::load(p, param + i);
        Storage::load(g, grad + i);
        for (int k = 0; k < states; ++k)
            if (Rule::reads_state(F, k)) Storage::load(s[k], state[k] + i);
        Rule::template apply<F>(p, g, s, scalars);
        Storage::store(param + i, p);
        for (int k = 0; k < states; ++k)
            if (Rule::writes_state(F, k)) Storage::store(state[k] + i, s[k]);
    }
    if (i < end) {
        const int64_t n = end - i;
        Element bp[width] = {}, bg[width] = {}, bs[states > 0 ? states : 1][width] = {};
        copy_small(bp, param + i, n * sizeof(Element));
        copy_small(bg, grad + i, n * sizeof(Element));
        for (int k = 0; k < states; ++k)
            if (Rule::reads_state(F, k)) copy_small(bs[k], state[k] + i, n * sizeof(Element));
        Vector p, g, s[states > 0 ? states : 1];
        Storage::load(p, bp);
        Storage::load(g, bg);
        for (int k = 0; k < states; ++k)
            if (Rule::reads_state(F, k)) Storage::load(s[k], bs[k]);
        Rule::template apply<F>(p, g, s, scalars);
        Storage::store(bp, p);
        copy_small(param + i, bp, n * sizeof(Element));
        for (int k = 0; k < states; ++k)
            if (Rule::writes_state(F, k)) {
                Storage::store(bs[k], s[k]);
                copy_small(state[k] + i, bs[k], n * sizeof(Element));
            }
    }
}

}  // namespace optim

#endif
