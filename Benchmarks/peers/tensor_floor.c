/*
 * tensor_floor: what splitting one Adam step into many small tensors costs at the least.
 *
 * The same float32 Adam update (torch's defaults, as step_probe.c writes it) over N elements,
 * once as one array and once as T separately allocated arrays of N / T elements, each a loop
 * the compiler vectorizes for this machine (-O3 -march=native), split over threads with an
 * OpenMP static schedule: the tensors' loop has no descriptors, no scheduler, no checks, only
 * what any implementation must do per tensor (reach its four arrays and run a short loop with
 * a tail). The tensors' arrays are laid out two ways: each tensor's four together, or (as a
 * program allocates them) every parameter, then every gradient, then each state. With
 * `--spacer B`, a program's other objects are stood in for by an allocation of B bytes before
 * each parameter and each gradient array of the second layout (a tensor object, its shape,
 * whatever else the program allocates between them): the arrays spread over more memory, as
 * they do in a real program. The ratio of the times is the floor under the cost of many small
 * tensors on this machine; an engine that stays within 2.5x of a one-array probe on 10,000
 * tensors of 100 elements cannot do better than this ratio allows.
 *
 * Build: gcc -O3 -march=native -fopenmp tensor_floor.c -o tensor_floor -lm
 * Run:   tensor_floor --elements N --tensors T --threads H --reps R [--spacer B]
 * Prints one JSON line per layout (one array, then T arrays) with the median and minimum
 * milliseconds per step.
 */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) {
        fprintf(stderr, "tensor_floor: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    for (size_t i = 0; i < n; ++i) p[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    return p;
}

/* Bytes allocated before each parameter and gradient array of the by-kind layout, kept for the
 * program's life as a program's other objects are. */
static long spacer_bytes = 0;

typedef struct {
    float *p, *g, *m, *v;
    long n;
} tensor;

/* torch's Adam, default options, step t: the formula of step_probe.c. */
static inline void adam(tensor t, float b1c, float b2, float b2c, float step_size, float bc2_sqrt, float eps) {
    float *restrict p = t.p, *restrict m = t.m, *restrict v = t.v;
    const float *restrict g = t.g;
    for (long i = 0; i < t.n; ++i) {
        m[i] = m[i] + b1c * (g[i] - m[i]);
        v[i] = v[i] * b2 + b2c * g[i] * g[i];
        p[i] = p[i] - step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Asks for the first `bytes` of each of t's arrays. */
static inline void prefetch(tensor t, long bytes) {
    for (long offset = 0; offset < bytes; offset += 64) {
        __builtin_prefetch((const char *)t.p + offset, 1);
        __builtin_prefetch((const char *)t.g + offset, 0);
        __builtin_prefetch((const char *)t.m + offset, 1);
        __builtin_prefetch((const char *)t.v + offset, 1);
    }
}

static void run(const char *layout, tensor *tensors, long count, long reps, long elements, long threads,
                long ahead, long prefetched_bytes) {
    double *times = malloc(sizeof(double) * (size_t)reps);
    if (!times) exit(1);
    for (long r = -1; r < reps; ++r) {
        const long step = r + 2;
        const float bc1 = 1.0f - powf(0.9f, (float)step), bc2 = 1.0f - powf(0.999f, (float)step);
        const float step_size = 1e-3f / bc1, bc2_sqrt = sqrtf(bc2);
        const double start = now_seconds();
#pragma omp parallel for schedule(static)
        for (long k = 0; k < count; ++k) {
            if (ahead > 0 && k + ahead < count) prefetch(tensors[k + ahead], prefetched_bytes);
            adam(tensors[k], 0.1f, 0.999f, 0.001f, step_size, bc2_sqrt, 1e-8f);
        }
        const double seconds = now_seconds() - start;
        if (r >= 0) times[r] = seconds;
    }
    qsort(times, (size_t)reps, sizeof(double), compare);
    double checksum = 0;
    for (long k = 0; k < count; ++k)
        for (long i = 0; i < tensors[k].n; ++i) checksum += tensors[k].p[i];
    printf("{\"layout\":\"%s\",\"spacer\":%ld,\"tensors\":%ld,\"elements\":%ld,\"threads\":%ld,\"reps\":%ld,"
           "\"prefetch_ahead\":%ld,\"prefetched_bytes\":%ld,\"ms_median\":%.5f,\"ms_min\":%.5f,\"checksum\":%.6g}\n",
           layout, strcmp(layout, "tensors by kind") ? 0 : spacer_bytes, count, elements, threads, reps, ahead,
           prefetched_bytes, 1e3 * times[reps / 2], 1e3 * times[0],
           checksum);
    free(times);
}

/* `count` tensors of `per_tensor` elements; `by_kind`: every parameter array first, then every
 * gradient, then each state, as a program allocates parameters, then gradients, then optimizer
 * state; otherwise each tensor's four arrays one after another. */
static tensor *make(long count, long per_tensor, int by_kind) {
    tensor *tensors = malloc(sizeof(tensor) * (size_t)count);
    if (!tensors) exit(1);
    for (int kind = 0; kind < 4; ++kind) {
        for (long k = 0; k < count; ++k) {
            tensors[k].n = per_tensor;
            for (int array = 0; array < 4; ++array) {
                if (by_kind ? array != kind : kind != 0) continue;
                if (by_kind && array < 2 && spacer_bytes > 0 && !malloc((size_t)spacer_bytes)) exit(1);
                float *values = alloc_floats((size_t)per_tensor);
                if (array >= 2) memset(values, 0, sizeof(float) * (size_t)per_tensor);
                if (array == 0) tensors[k].p = values;
                if (array == 1) tensors[k].g = values;
                if (array == 2) tensors[k].m = values;
                if (array == 3) tensors[k].v = values;
            }
        }
    }
    return tensors;
}

int main(int argc, char **argv) {
    long elements = 1000000, count = 10000, threads = 2, reps = 200;
    for (int a = 1; a + 1 < argc; a += 2) {
        long value = strtol(argv[a + 1], NULL, 10);
        if (!strcmp(argv[a], "--elements")) elements = value;
        else if (!strcmp(argv[a], "--tensors")) count = value;
        else if (!strcmp(argv[a], "--threads")) threads = value;
        else if (!strcmp(argv[a], "--reps")) reps = value;
        else if (!strcmp(argv[a], "--spacer")) spacer_bytes = value;
        else {
            fprintf(stderr, "usage: tensor_floor [--elements N] [--tensors T] [--threads H] [--reps R] [--spacer B]\n");
            return 2;
        }
    }
    if (elements <= 0 || count <= 0 || threads <= 0 || reps <= 0 || spacer_bytes < 0 || elements % count != 0) {
        fprintf(stderr, "tensor_floor: positive sizes, and elements a multiple of tensors\n");
        return 2;
    }
    omp_set_num_threads((int)threads);
    /* The one array is cut into one piece per thread, so that both layouts are split alike. */
    tensor *one = make(1, elements, 0);
    tensor *pieces = malloc(sizeof(tensor) * (size_t)threads);
    if (!pieces) return 1;
    for (long h = 0; h < threads; ++h) {
        long begin = elements * h / threads, end = elements * (h + 1) / threads;
        pieces[h] = (tensor){one->p + begin, one->g + begin, one->m + begin, one->v + begin, end - begin};
    }
    tensor *many = make(count, elements / count, 0);
    tensor *by_kind = make(count, elements / count, 1);
    const long bytes = (long)sizeof(float) * (elements / count);
    for (int round = 0; round < 3; ++round) {
        run("one array", pieces, threads, reps, elements, threads, 0, 0);
        run("tensors", many, count, reps, elements, threads, 0, 0);
        run("tensors", many, count, reps, elements, threads, 1, 256);
        run("tensors", many, count, reps, elements, threads, 1, bytes);
        run("tensors", many, count, reps, elements, threads, 2, bytes);
        run("tensors", many, count, reps, elements, threads, 4, bytes);
        run("tensors by kind", by_kind, count, reps, elements, threads, 0, 0);
        run("tensors by kind", by_kind, count, reps, elements, threads, 2, bytes);
    }
    return 0;
}
