// The Dispatch backend's helpers. `concurrentPerform` returns only once every iteration ran, so
// each launch waited for a sleeping thread to wake up. Here a launch offers its plan to helper
// threads (Dispatch's own, started with `async`) while the calling thread works on it; a helper
// that is awake takes the offer, one that is not yet running never sees it, because the caller
// withdraws every offer still untaken once its own work is done. A helper spins for a short
// while after each plan, so that back-to-back launches find it awake, then sleeps on a futex for
// up to the team's park time, so that the next step wakes it with one system call instead of
// starting it again through Dispatch (which allocates its queue items: two mallocs a step), and
// only then returns its thread to Dispatch. Nothing spins between steps.
#include <sched.h>
#include <time.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <new>

#include "COptimKernels.h"

namespace {

enum : int32_t { HELPER_ABSENT = 0, HELPER_PRESENT = 1, HELPER_PARKED = 2 };

struct alignas(64) HelperSlot {
    int32_t presence;      // whether a helper serves this slot, and whether it sleeps
    int32_t claimed;       // 1 while a launch owns this slot's offer
    optim_plan *offer;     // a plan the helper may take, or null
    uint64_t finished;     // plans this slot's helper finished
};

int64_t now_nanoseconds() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

#if defined(__linux__)
// Sleeps while `*word` holds `expected`, at most `nanoseconds`; returns early when woken.
void futex_wait(int32_t *word, int32_t expected, int64_t nanoseconds) {
    timespec timeout{time_t(nanoseconds / 1000000000), long(nanoseconds % 1000000000)};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &timeout, nullptr, 0);
}

void futex_wake(int32_t *word) { syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0); }
#endif

inline void pause_briefly() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

}  // namespace

struct optim_team {
    int64_t spin_nanoseconds;
    int64_t park_nanoseconds;
    HelperSlot slots[OPTIM_TEAM_MAX_HELPERS];
};

extern "C" optim_team *optim_team_create(int64_t spin_nanoseconds, int64_t park_nanoseconds) {
    optim_team *team = new (std::nothrow) optim_team();
    if (team) {
        team->spin_nanoseconds = spin_nanoseconds;
        team->park_nanoseconds = park_nanoseconds;
    }
    return team;
}

extern "C" void optim_team_run(optim_team *team, optim_plan *plan, int32_t threads,
                               void (*start_helper)(optim_team *team, int32_t slot)) {
    const int32_t wanted = threads - 1 < OPTIM_TEAM_MAX_HELPERS ? threads - 1 : OPTIM_TEAM_MAX_HELPERS;
    int32_t offered[OPTIM_TEAM_MAX_HELPERS];
    uint64_t finished_before[OPTIM_TEAM_MAX_HELPERS];
    int32_t offers = 0;
    for (int32_t slot = 0; slot < wanted; ++slot) {
        HelperSlot &s = team->slots[slot];
        int32_t unclaimed = 0;
        // Another launch (another optimizer, on another thread) owns this slot: go without it.
        if (!__atomic_compare_exchange_n(&s.claimed, &unclaimed, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        finished_before[offers] = __atomic_load_n(&s.finished, __ATOMIC_RELAXED);
        // The plan, reset by the caller, happens before the helper's work on it.
        __atomic_store_n(&s.offer, plan, __ATOMIC_RELEASE);
        // Store, then load, ordered: a helper going to sleep switches its presence, then looks
        // for an offer (optim_team_serve), so either it sees this offer or this launch sees it
        // asleep. Without the fence x86 may load before the store is visible, and both miss.
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        int32_t presence = __atomic_load_n(&s.presence, __ATOMIC_ACQUIRE);
        // A helper present takes the offer as it is; a sleeping one is woken; an absent one is
        // started. A switch that loses to the helper's own (it went to sleep, or its sleep ended
        // and it left) is tried again from the state the helper left: each of its switches goes
        // one way (present, asleep, absent), so this ends after a few tries.
        while (presence != HELPER_PRESENT) {
            const int32_t before = presence;
            if (__atomic_compare_exchange_n(&s.presence, &presence, HELPER_PRESENT, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                if (before == HELPER_ABSENT) start_helper(team, slot);
#if defined(__linux__)
                else futex_wake(&s.presence);
#endif
                break;
            }
        }
        offered[offers++] = slot;
    }
    optim_plan_work(plan);
    for (int32_t k = 0; k < offers; ++k) {
        HelperSlot &s = team->slots[offered[k]];
        optim_plan *expected = plan;
        // Untaken: the helper never touches this plan. Taken: wait for the helper's last chunk.
        if (!__atomic_compare_exchange_n(&s.offer, &expected, nullptr, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE)) {
            // The helper has at most a chunk left; on a machine with more threads than cores it
            // may have lost its core, so after a short spin the wait gives its core away.
            for (uint32_t spins = 1; __atomic_load_n(&s.finished, __ATOMIC_ACQUIRE) == finished_before[k]; ++spins) {
                if (spins < 4096) pause_briefly();
                else sched_yield();
            }
        }
        __atomic_store_n(&s.claimed, 0, __ATOMIC_RELEASE);
    }
}

extern "C" void optim_team_serve(optim_team *team, int32_t slot_index) {
    HelperSlot &s = team->slots[slot_index];
    int64_t idle_since = now_nanoseconds();
    for (uint32_t spins = 1;; ++spins) {
        optim_plan *plan = __atomic_load_n(&s.offer, __ATOMIC_ACQUIRE);
        if (plan && __atomic_compare_exchange_n(&s.offer, &plan, nullptr, false, __ATOMIC_ACQ_REL,
                                                __ATOMIC_ACQUIRE)) {
            optim_plan_work_from_back(plan);
            // The work happens before the launch returns.
            __atomic_fetch_add(&s.finished, 1, __ATOMIC_RELEASE);
            idle_since = now_nanoseconds();
            continue;
        }
        pause_briefly();
        // The clock is read every 64 spins (about 2 us): often enough for a window of tens of us.
        if (spins % 64 == 0 && now_nanoseconds() - idle_since > team->spin_nanoseconds) {
            // An offer made while this helper was still present is withdrawn by its launch
            // (never taken from here after this point, unless a launch wakes the helper), or
            // taken by the helper the next launch wakes or starts.
            int32_t present = HELPER_PRESENT;
#if defined(__linux__)
            if (!__atomic_compare_exchange_n(&s.presence, &present, HELPER_PARKED, false, __ATOMIC_SEQ_CST,
                                             __ATOMIC_ACQUIRE))
                continue;  // not possible: only this helper leaves the present state
            // An offer made before the switch was seen by its launch as present, and is taken
            // here: back to present, unless that launch (or another) already switched it.
            if (__atomic_load_n(&s.offer, __ATOMIC_SEQ_CST)) {
                int32_t parked = HELPER_PARKED;
                __atomic_compare_exchange_n(&s.presence, &parked, HELPER_PRESENT, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE);
                idle_since = now_nanoseconds();
                spins = 0;
                continue;
            }
            const int64_t parked_at = now_nanoseconds();
            for (;;) {
                const int64_t left = team->park_nanoseconds - (now_nanoseconds() - parked_at);
                if (left > 0) futex_wait(&s.presence, HELPER_PARKED, left);
                if (__atomic_load_n(&s.presence, __ATOMIC_ACQUIRE) == HELPER_PRESENT) break;  // woken
                int32_t parked = HELPER_PARKED;
                if (left <= 0 && __atomic_compare_exchange_n(&s.presence, &parked, HELPER_ABSENT, false,
                                                             __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                    return;  // slept its whole park time: the thread goes back to Dispatch
            }
            idle_since = now_nanoseconds();
            spins = 0;
            continue;
#else
            __atomic_store_n(&s.presence, HELPER_ABSENT, __ATOMIC_RELEASE);
            (void)present;
            return;
#endif
        }
    }
}
