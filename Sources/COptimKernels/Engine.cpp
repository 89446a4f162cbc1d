// The chunk scheduler: workers claim chunks of the launch range with atomic counters and walk
// the tensors that each chunk overlaps.
#include <algorithm>

#include "COptimKernels.h"

extern "C" void optim_plan_reset(optim_plan *plan, int64_t begin, int64_t end) {
    plan->range_begin = begin;
    plan->range_end = end;
    const int64_t length = end - begin;
    const int64_t chunk = plan->chunk_elements;
    __atomic_store_n(&plan->claimed_chunks, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&plan->next_front_chunk, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&plan->next_back_chunk, length / chunk + (length % chunk != 0) - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&plan->claiming_workers, 0, __ATOMIC_RELAXED);
}

namespace {

// Each tensor's arrays are allocations of their own, so the hardware prefetchers, which follow
// runs of addresses, miss at the start of every tensor (on 10,000 tensors of 100 elements, 44%
// of Adam's samples fell on its first load of a tensor). The first lines of the tensor two
// ahead are asked for while this one runs: all of a 100-element float32 tensor. (In one run of
// Benchmarks/peers/tensor_floor.c, a plain C loop over 10,000 such tensors took 1.65 ms a step
// at 2 threads asking two ahead for whole tensors, 1.90 ms asking one ahead for 256 bytes,
// 2.64 ms asking for nothing.)
constexpr int64_t prefetched_bytes = 512;
constexpr int32_t prefetch_distance = 2;

inline void prefetch_start(const optim_tensor *tensor) {
    for (int64_t offset = 0; offset < prefetched_bytes; offset += 64) {
        __builtin_prefetch(static_cast<const char *>(tensor->param) + offset, 1);
        __builtin_prefetch(static_cast<const char *>(tensor->grad) + offset, 0);
        for (int k = 0; k < OPTIM_MAX_STATE; ++k)
            if (tensor->state[k]) __builtin_prefetch(static_cast<const char *>(tensor->state[k]) + offset, 1);
    }
}

// Claims go through one count, so that the two ends never take more chunks than there are and
// the chunks they take never meet; then each worker takes its end's next chunk. The launching
// thread works up from the first chunk, the others down from the last: from step to step each
// keeps the same tensors (all of them at one thread, about half each at two), which on 10,000
// small tensors kept their lines in its own caches instead of moving them between cores.
void work(optim_plan *plan, bool from_back) {
    const int64_t chunk = plan->chunk_elements;
    const int64_t *offsets = plan->offsets;
    const int32_t tensor_count = plan->tensor_count;
    const int64_t *offsets_end = offsets + tensor_count + 1;
    // Counted so that no sum or product overflows, whatever the chunk size (up to INT64_MAX).
    const int64_t length = plan->range_end - plan->range_begin;
    const int64_t chunk_count = length / chunk + (length % chunk != 0);
    // Whether this worker got work: one add per worker and launch, so that a caller can tell
    // a launch that threads shared from one that a single thread ran.
    bool claimed = false;
    for (;;) {
        if (__atomic_fetch_add(&plan->claimed_chunks, 1, __ATOMIC_RELAXED) >= chunk_count) {
            if (claimed) __atomic_fetch_add(&plan->claiming_workers, 1, __ATOMIC_RELAXED);
            return;
        }
        claimed = true;
        const int64_t index = from_back ? __atomic_fetch_sub(&plan->next_back_chunk, 1, __ATOMIC_RELAXED)
                                        : __atomic_fetch_add(&plan->next_front_chunk, 1, __ATOMIC_RELAXED);
        int64_t begin = plan->range_begin + index * chunk;
        const int64_t end = begin + std::min(chunk, plan->range_end - begin);
        // The last tensor that starts at or before `begin`; zero-size tensors before it
        // share its offset and are passed over.
        int32_t t = int32_t(std::upper_bound(offsets, offsets_end, begin) - offsets) - 1;
        while (begin < end) {
            const optim_tensor *tensor = plan->tensors + t;
            const int64_t tensor_begin = offsets[t];
            const int64_t segment_end = std::min(end, offsets[t + 1]);
            // Only a tensor this chunk reaches: another worker may be running it.
            if (t + prefetch_distance < tensor_count && offsets[t + prefetch_distance] < end)
                prefetch_start(tensor + prefetch_distance);
            if (segment_end > begin)
                tensor->kernel(tensor, begin - tensor_begin, segment_end - tensor_begin);
            begin = std::max(begin, segment_end);
            ++t;
        }
    }
}

}  // namespace

extern "C" void optim_plan_work(optim_plan *plan) { work(plan, false); }

extern "C" void optim_plan_work_from_back(optim_plan *plan) { work(plan, true); }
