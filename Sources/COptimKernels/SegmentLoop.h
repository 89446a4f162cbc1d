// The element loop every rule runs in: loads a vector of each array, applies the rule, stores
// what the rule wrote; whole vectors, then the tail through the same code (for_each_vector).
#ifndef OPTIM_SEGMENT_LOOP_H
#define OPTIM_SEGMENT_LOOP_H

#include <type_traits>

#include "Storage.h"

namespace optim {

// Whether a rule's math depends on where an element lies in its tensor: such a rule declares
// `static constexpr bool reads_position = true` and its `apply<F, Storage>` also takes the
// element of lane 0 and the tensor's element count.
template <class Rule, class = void> struct ReadsPosition : std::false_type {};
template <class Rule>
struct ReadsPosition<Rule, std::void_t<decltype(Rule::reads_position)>> : std::bool_constant<Rule::reads_position> {};

template <class Rule, class Storage, unsigned F>
OPTIM_INLINE void run_segment(const optim_tensor *tensor, int64_t begin, int64_t end) {
    typedef typename Storage::Element Element;
    typedef typename Storage::Vector Vector;
    constexpr int states = Rule::state_count;

    const typename Rule::template Scalars<typename Storage::Scalar> scalars(
        *static_cast<const typename Rule::CScalars *>(tensor->scalars));
    Element *param = static_cast<Element *>(tensor->param);
    const Element *grad = static_cast<const Element *>(tensor->grad);
    Element *state[states > 0 ? states : 1];
    for (int k = 0; k < states; ++k) state[k] = static_cast<Element *>(tensor->state[k]);

    for_each_vector<Storage::width>(begin, end, [&](int64_t i, int64_t n) OPTIM_INLINE_LAMBDA {
        Vector p, g, s[states > 0 ? states : 1];
        load_n<Storage>(p, param + i, n);
        load_n<Storage>(g, grad + i, n);
        for (int k = 0; k < states; ++k)
            if (Rule::reads_state(F, k)) load_n<Storage>(s[k], state[k] + i, n);
        if constexpr (ReadsPosition<Rule>::value)
            Rule::template apply<F, Storage>(p, g, s, scalars, i, int64_t(tensor->count));
        else
            Rule::template apply<F>(p, g, s, scalars);
        store_n<Storage>(param + i, p, n);
        for (int k = 0; k < states; ++k)
            if (Rule::writes_state(F, k)) store_n<Storage>(state[k] + i, s[k], n);
    });
}

}  // namespace optim

#endif
