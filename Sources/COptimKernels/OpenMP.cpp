// The OpenMP bridge. The library targets cannot pass -fopenmp (SwiftPM refuses unsafe flags
// in a dependency taken by version), so the runtime is opened at run time and entered through
// GOMP_parallel, the GCC-compatible entry point that both LLVM's libomp and GCC's libgomp
// export.
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "COptimKernels.h"

extern "C" int32_t optim_openmp_open(const char *const *candidates, int32_t count,
                                     optim_openmp_runtime *runtime, char *message,
                                     size_t message_size) {
    size_t used = 0;
    if (message_size > 0) message[0] = 0;
    for (int32_t i = 0; i < count; ++i) {
        void *handle = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (handle) {
            void *entry = dlsym(handle, "GOMP_parallel");
            if (entry) {
                runtime->handle = handle;
                runtime->parallel =
                    reinterpret_cast<void (*)(void (*)(void *), void *, unsigned, unsigned)>(entry);
                return i;
            }
            dlclose(handle);
            if (used < message_size)
                used += snprintf(message + used, message_size - used, "%s%s: no GOMP_parallel",
                                 used ? "; " : "", candidates[i]);
            continue;
        }
        const char *reason = dlerror();
        if (used < message_size)
            used += snprintf(message + used, message_size - used, "%s%s", used ? "; " : "",
                             reason ? reason : candidates[i]);
    }
    return -1;
}

// The runtime starts and joins its team in code that ThreadSanitizer does not see. Under the
// sanitizer, the two edges it provides are stated: the launch happens before each thread's
// work (on the plan's first byte), each thread's work before the launch returns (on its second).
// Threads of one team get no edge between them, so a race inside the work is still reported.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define OPTIM_TSAN_EDGES 1
extern "C" void __tsan_acquire(void *address);
extern "C" void __tsan_release(void *address);
#endif
#endif

// Set on the thread that launches, which the runtime makes one of its team: that thread claims
// chunks from the front, the others from the back (optim_plan_work_from_back).
static thread_local bool launching = false;

static void optim_openmp_worker(void *plan) {
#ifdef OPTIM_TSAN_EDGES
    __tsan_acquire(plan);
#endif
    if (launching) optim_plan_work(static_cast<optim_plan *>(plan));
    else optim_plan_work_from_back(static_cast<optim_plan *>(plan));
#ifdef OPTIM_TSAN_EDGES
    __tsan_release(static_cast<char *>(plan) + 1);
#endif
}

extern "C" void optim_openmp_run(const optim_openmp_runtime *runtime, optim_plan *plan,
                                 int32_t threads) {
#ifdef OPTIM_TSAN_EDGES
    __tsan_release(plan);
#endif
    launching = true;
    runtime->parallel(optim_openmp_worker, plan, unsigned(threads), 0);
    launching = false;
#ifdef OPTIM_TSAN_EDGES
    __tsan_acquire(reinterpret_cast<char *>(plan) + 1);
#endif
}
