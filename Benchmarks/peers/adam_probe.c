/*
 * adam_probe: the memory-bandwidth ceiling for a float32 Adam step on this machine.
 *
 * One flat Adam update over N float32 elements: reads param, grad, exp_avg and
 * exp_avg_sq, writes param, exp_avg and exp_avg_sq (28 bytes per element at least).
 * The math is torch.optim.Adam's default (no weight decay, no amsgrad):
 *
 *     m     = beta1 * m + (1 - beta1) * g
 *     v     = beta2 * v + (1 - beta2) * g * g
 *     denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *     p     = p - (lr / (1 - beta1^t)) * m / denom
 *
 * The element loop is written with AVX-512 intrinsics (16 floats a vector) and a
 * scalar tail, split over threads with an OpenMP static schedule. Pages are first
 * touched in parallel with the same schedule, so each thread's share lives where
 * that thread runs, and one untimed step runs before the timed ones.
 *
 * Build: gcc -O3 -march=native -fopenmp adam_probe.c -o adam_probe -lm
 *        (Benchmarks/peers/build_probe.sh does this)
 * Run:   adam_probe --elements N --threads T --reps R [--warmup W]
 * Prints one JSON line:
 *   {"peer":"c-avx512-probe","elements":N,"threads":T,"reps":R,"ms_median":..,
 *    "ms_min":..,"ns_per_element_median":..,"gb_per_s":..,"checksum":..}
 * gb_per_s is 28 bytes * N / median time.
 */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef __AVX512F__
#error "adam_probe needs AVX-512F: build with -march=native on an AVX-512 machine"
#endif

#define LANES 16
#define ALIGNMENT 64
#define BYTES_PER_ELEMENT 28.0

typedef struct {
    float lr, beta1, beta2, eps;
} adam_hparams;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    if (bytes == 0) bytes = ALIGNMENT;
    float *p = aligned_alloc(ALIGNMENT, bytes);
    if (!p) {
        fprintf(stderr, "adam_probe: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

/* A cheap, deterministic value in [-1, 1) from an index. */
static inline float hash_unit(uint64_t i, uint64_t salt) {
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ salt;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (float)((double)(x >> 40) / (double)(1ull << 23) - 1.0);
}

/* First touch: same static split as the update loop, so pages land by thread. */
static void first_touch(float *p, float *g, float *m, float *v, size_t n) {
    size_t blocks = n / LANES;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks; b++) {
        for (size_t i = b * LANES; i < (b + 1) * LANES; i++) {
            p[i] = hash_unit(i, 1);
            g[i] = 1e-2f * hash_unit(i, 2);
            m[i] = 0.0f;
            v[i] = 0.0f;
        }
    }
    for (size_t i = blocks * LANES; i < n; i++) {
        p[i] = hash_unit(i, 1);
        g[i] = 1e-2f * hash_unit(i, 2);
        m[i] = 0.0f;
        v[i] = 0.0f;
    }
}

static inline void adam_scalar(float *p, const float *g, float *m, float *v, size_t i,
                               float beta1, float one_minus_beta1, float beta2,
                               float one_minus_beta2, float step_size,
                               float inv_sqrt_bc2, float eps) {
    float gi = g[i];
    float mi = beta1 * m[i] + one_minus_beta1 * gi;
    float vi = beta2 * v[i] + one_minus_beta2 * gi * gi;
    float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] - step_size * (mi / denom);
}

/* One Adam step (step number t >= 1) over n elements. */
static void adam_step(float *restrict p, const float *restrict g, float *restrict m,
                      float *restrict v, size_t n, adam_hparams h, long t) {
    /* Per-step scalars, in double, as torch computes its bias corrections. */
    double bc1 = 1.0 - pow((double)h.beta1, (double)t);
    double bc2 = 1.0 - pow((double)h.beta2, (double)t);
    const float step_size = (float)((double)h.lr / bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float beta1 = h.beta1, beta2 = h.beta2, eps = h.eps;
    const float one_minus_beta1 = 1.0f - beta1, one_minus_beta2 = 1.0f - beta2;

    const __m512 vb1 = _mm512_set1_ps(beta1);
    const __m512 v1mb1 = _mm512_set1_ps(one_minus_beta1);
    const __m512 vb2 = _mm512_set1_ps(beta2);
    const __m512 v1mb2 = _mm512_set1_ps(one_minus_beta2);
    const __m512 vstep = _mm512_set1_ps(step_size);
    const __m512 vibc2 = _mm512_set1_ps(inv_sqrt_bc2);
    const __m512 veps = _mm512_set1_ps(eps);

    size_t blocks = n / LANES;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < blocks; b++) {
        size_t i = b * LANES;
        __m512 gi = _mm512_load_ps(g + i);
        __m512 mi = _mm512_load_ps(m + i);
        __m512 vi = _mm512_load_ps(v + i);
        __m512 pi = _mm512_load_ps(p + i);
        /* m = beta1 * m + (1 - beta1) * g */
        mi = _mm512_fmadd_ps(vb1, mi, _mm512_mul_ps(v1mb1, gi));
        /* v = beta2 * v + (1 - beta2) * g * g */
        vi = _mm512_fmadd_ps(vb2, vi, _mm512_mul_ps(v1mb2, _mm512_mul_ps(gi, gi)));
        /* denom = sqrt(v) / sqrt(bc2) + eps */
        __m512 denom = _mm512_fmadd_ps(_mm512_sqrt_ps(vi), vibc2, veps);
        /* p = p - step_size * m / denom */
        pi = _mm512_fnmadd_ps(vstep, _mm512_div_ps(mi, denom), pi);
        _mm512_store_ps(m + i, mi);
        _mm512_store_ps(v + i, vi);
        _mm512_store_ps(p + i, pi);
    }
    for (size_t i = blocks * LANES; i < n; i++)
        adam_scalar(p, g, m, v, i, beta1, one_minus_beta1, beta2, one_minus_beta2,
                    step_size, inv_sqrt_bc2, eps);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: adam_probe --elements N [--threads T] [--reps R] [--warmup W]\n"
            "  Times R float32 Adam steps over N elements (after W untimed ones) and\n"
            "  prints one JSON line. Defaults: T = OpenMP's default, R = 20, W = 1.\n");
}

static long parse_long(const char *flag, const char *s) {
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (!s[0] || *end || x < 0) {
        fprintf(stderr, "adam_probe: %s needs a non-negative integer, got '%s'\n", flag, s);
        exit(2);
    }
    return (long)x;
}

int main(int argc, char **argv) {
    long elements = -1, threads = 0, reps = 20, warmup = 1;
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a + 1 >= argc) {
            fprintf(stderr, "adam_probe: unknown or incomplete option '%s'\n", arg);
            usage(stderr);
            return 2;
        }
        if (!strcmp(arg, "--elements")) elements = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--threads")) threads = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--reps")) reps = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--warmup")) warmup = parse_long(arg, argv[++a]);
        else {
            fprintf(stderr, "adam_probe: unknown option '%s'\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (elements <= 0 || reps <= 0) {
        fprintf(stderr, "adam_probe: --elements and --reps must be positive\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) omp_set_num_threads((int)threads);
    threads = omp_get_max_threads();

    size_t n = (size_t)elements;
    float *p = alloc_floats(n), *g = alloc_floats(n), *m = alloc_floats(n), *v = alloc_floats(n);
    first_touch(p, g, m, v, n);

    const adam_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f};
    long t = 0;
    for (long w = 0; w < warmup; w++) adam_step(p, g, m, v, n, h, ++t);

    double *ms = malloc((size_t)reps * sizeof(double));
    if (!ms) return 1;
    for (long r = 0; r < reps; r++) {
        double t0 = now_seconds();
        adam_step(p, g, m, v, n, h, ++t);
        ms[r] = 1e3 * (now_seconds() - t0);
    }
    qsort(ms, (size_t)reps, sizeof(double), cmp_double);
    double median = (reps % 2) ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    double best = ms[0];

    /* A checksum over a sample of the parameters keeps the result observable. */
    double checksum = 0.0;
    size_t stride = n / 4096 ? n / 4096 : 1;
    for (size_t i = 0; i < n; i += stride) checksum += (double)p[i];

    printf("{\"peer\":\"c-avx512-probe\",\"elements\":%ld,\"threads\":%ld,\"reps\":%ld,"
           "\"warmup\":%ld,\"ms_median\":%.4f,\"ms_min\":%.4f,"
           "\"ns_per_element_median\":%.4f,\"gb_per_s\":%.2f,\"checksum\":%.9g}\n",
           elements, threads, reps, warmup, median, best, 1e6 * median / (double)n,
           BYTES_PER_ELEMENT * (double)n / (median * 1e6), checksum);

    free(ms);
    free(p);
    free(g);
    free(m);
    free(v);
    return 0;
}
