/*
 * step_probe: the memory-bandwidth ceiling of one float32 optimizer step on this machine.
 *
 * One flat update over N float32 elements with the optimizer's default options (the ones
 * `optim bench` and peer_bench.py use), written with AVX-512 intrinsics (16 floats a vector)
 * and a scalar tail, split over threads with an OpenMP static schedule:
 *
 *   adam     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *            p = p - lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)           28 bytes/element
 *   adamw    p = p (1 - lr wd), then as adam                               28 bytes/element
 *   rmsprop  v = alpha v + (1 - alpha) g^2;  p = p - lr g / (sqrt(v) + eps)  20 bytes/element
 *   adagrad  s = s + g^2;  p = p - lr / (1 + (t - 1) lr_decay) g / (sqrt(s) + eps)  20
 *   sgd      b = mu b + g (b = g at the first step);  p = p - lr b          20 bytes/element
 *
 * The bytes are the least traffic a step can have: every array read once, every state and
 * the parameter written once. The arrays are 2 MiB aligned and offered for transparent huge
 * pages, as optim's tensors are; pages are first touched with the update's schedule, and
 * one untimed step runs before the timed ones.
 *
 * Build: gcc -O3 -march=native -fopenmp step_probe.c -o step_probe -lm
 *        (Benchmarks/peers/build_probe.sh does this)
 * Run:   step_probe --optimizer O --elements N --threads T --reps R [--warmup W]
 * Prints one JSON line:
 *   {"peer":"c-avx512-probe","optimizer":O,"elements":N,"threads":T,"reps":R,"ms_median":..,
 *    "ms_min":..,"ns_per_element_median":..,"bytes_per_element":..,"gb_per_s":..,"checksum":..}
 * gb_per_s is bytes_per_element * N / median time.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#ifndef __AVX512F__
#error "step_probe needs AVX-512F: build with -march=native on an AVX-512 machine"
#endif

#define LANES 16
#define HUGE_PAGE (2u << 20)

typedef enum { ADAM, ADAMW, RMSPROP, ADAGRAD, SGD } rule_kind;

typedef struct {
    const char *name;
    rule_kind kind;
    int states;
    double bytes_per_element;
} rule_info;

static const rule_info RULES[] = {
    {"adam", ADAM, 2, 28.0},     {"adamw", ADAMW, 2, 28.0}, {"rmsprop", RMSPROP, 1, 20.0},
    {"adagrad", ADAGRAD, 1, 20.0}, {"sgd", SGD, 1, 20.0},
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *alloc_floats(size_t n) {
    size_t bytes = (n * sizeof(float) + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    float *p = aligned_alloc(HUGE_PAGE, bytes);
    if (!p) {
        fprintf(stderr, "step_probe: cannot allocate %zu bytes\n", bytes);
        exit(1);
    }
    madvise(p, bytes, MADV_HUGEPAGE);
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

/* First touch: the update loop's static split, in whole vectors, so pages land by thread. */
static void first_touch(float *p, float *g, float *s0, float *s1, size_t n) {
    const long blocks = (long)((n + LANES - 1) / LANES);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t end = (size_t)(b + 1) * LANES < n ? (size_t)(b + 1) * LANES : n;
        for (size_t i = (size_t)b * LANES; i < end; i++) {
            p[i] = hash_unit(i, 1);
            g[i] = 1e-2f * hash_unit(i, 2);
            s0[i] = 0.0f;
            if (s1) s1[i] = 0.0f;
        }
    }
}

typedef struct {
    float a, b, c, d, e, f;
} step_scalars;

/* The per-step scalars of each rule, from torch's defaults, in double where torch uses it. */
static step_scalars scalars_for(rule_kind kind, long t) {
    step_scalars s = {0};
    switch (kind) {
    case ADAM:
    case ADAMW: {
        const double lr = 1e-3, b1 = 0.9, b2 = 0.999;
        s.a = (float)b1;
        s.b = (float)(1 - b1);
        s.c = (float)b2;
        s.d = (float)(1 - b2);
        s.e = (float)(lr / (1.0 - pow(b1, (double)t)));  /* step size */
        s.f = (float)(1.0 / sqrt(1.0 - pow(b2, (double)t)));
        break;
    }
    case RMSPROP:
        s.a = 0.99f, s.b = 0.01f, s.c = 1e-8f, s.d = 1e-2f;
        break;
    case ADAGRAD:
        s.a = 1e-10f, s.b = (float)(1e-2 / (1.0 + (double)(t - 1) * 0.0));
        break;
    case SGD:
        s.a = 0.9f, s.b = 1e-3f;
        break;
    }
    return s;
}

static void step(rule_kind kind, float *restrict p, const float *restrict g, float *restrict s0,
                 float *restrict s1, size_t n, long t) {
    const step_scalars k = scalars_for(kind, t);
    const __m512 va = _mm512_set1_ps(k.a), vb = _mm512_set1_ps(k.b), vc = _mm512_set1_ps(k.c);
    const __m512 vd = _mm512_set1_ps(k.d), ve = _mm512_set1_ps(k.e), vf = _mm512_set1_ps(k.f);
    const __m512 eps8 = _mm512_set1_ps(1e-8f);
    const float decay = 1.0f - 1e-3f * 1e-2f;
    const __m512 vdecay = _mm512_set1_ps(decay);
    const long blocks = (long)(n / LANES);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        const size_t i = (size_t)b * LANES;
        __m512 pi = _mm512_load_ps(p + i), gi = _mm512_load_ps(g + i);
        __m512 x = _mm512_load_ps(s0 + i);
        switch (kind) {
        case ADAMW:
            pi = _mm512_mul_ps(pi, vdecay);
            /* fall through */
        case ADAM: {
            __m512 y = _mm512_load_ps(s1 + i);
            x = _mm512_fmadd_ps(va, x, _mm512_mul_ps(vb, gi));
            y = _mm512_fmadd_ps(vc, y, _mm512_mul_ps(vd, _mm512_mul_ps(gi, gi)));
            __m512 denom = _mm512_fmadd_ps(_mm512_sqrt_ps(y), vf, eps8);
            pi = _mm512_fnmadd_ps(ve, _mm512_div_ps(x, denom), pi);
            _mm512_store_ps(s1 + i, y);
            break;
        }
        case RMSPROP:
            x = _mm512_fmadd_ps(va, x, _mm512_mul_ps(vb, _mm512_mul_ps(gi, gi)));
            pi = _mm512_fnmadd_ps(vd, _mm512_div_ps(gi, _mm512_add_ps(_mm512_sqrt_ps(x), vc)), pi);
            break;
        case ADAGRAD:
            x = _mm512_fmadd_ps(gi, gi, x);
            pi = _mm512_fnmadd_ps(vb, _mm512_div_ps(gi, _mm512_add_ps(_mm512_sqrt_ps(x), va)), pi);
            break;
        case SGD:
            x = t == 1 ? gi : _mm512_fmadd_ps(va, x, gi);
            pi = _mm512_fnmadd_ps(vb, x, pi);
            break;
        }
        _mm512_store_ps(s0 + i, x);
        _mm512_store_ps(p + i, pi);
    }
    for (size_t i = (size_t)blocks * LANES; i < n; i++) {
        float pi = p[i], gi = g[i], x = s0[i];
        switch (kind) {
        case ADAMW:
            pi *= decay;
            /* fall through */
        case ADAM: {
            float y = s1[i];
            x = k.a * x + k.b * gi;
            y = k.c * y + k.d * gi * gi;
            pi -= k.e * (x / (sqrtf(y) * k.f + 1e-8f));
            s1[i] = y;
            break;
        }
        case RMSPROP:
            x = k.a * x + k.b * gi * gi;
            pi -= k.d * (gi / (sqrtf(x) + k.c));
            break;
        case ADAGRAD:
            x += gi * gi;
            pi -= k.b * (gi / (sqrtf(x) + k.a));
            break;
        case SGD:
            x = t == 1 ? gi : k.a * x + gi;
            pi -= k.b * x;
            break;
        }
        s0[i] = x;
        p[i] = pi;
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: step_probe [--optimizer adam|adamw|rmsprop|adagrad|sgd] --elements N\n"
            "                  [--threads T] [--reps R] [--warmup W]\n"
            "  Times R float32 steps over N elements (after W untimed ones) and prints one\n"
            "  JSON line. Defaults: adam, T = OpenMP's default, R = 20, W = 1.\n");
}

static long parse_long(const char *flag, const char *s) {
    char *end = NULL;
    long long x = strtoll(s, &end, 10);
    if (!s[0] || *end || x < 0) {
        fprintf(stderr, "step_probe: %s needs a non-negative integer, got '%s'\n", flag, s);
        exit(2);
    }
    return (long)x;
}

int main(int argc, char **argv) {
    long elements = -1, threads = 0, reps = 20, warmup = 1;
    const rule_info *rule = &RULES[0];
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a + 1 >= argc) {
            fprintf(stderr, "step_probe: unknown or incomplete option '%s'\n", arg);
            usage(stderr);
            return 2;
        }
        if (!strcmp(arg, "--elements")) elements = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--threads")) threads = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--reps")) reps = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--warmup")) warmup = parse_long(arg, argv[++a]);
        else if (!strcmp(arg, "--optimizer")) {
            const char *name = argv[++a];
            rule = NULL;
            for (size_t r = 0; r < sizeof RULES / sizeof RULES[0]; r++)
                if (!strcmp(name, RULES[r].name)) rule = &RULES[r];
            if (!rule) {
                fprintf(stderr, "step_probe: no rule for optimizer '%s'\n", name);
                usage(stderr);
                return 2;
            }
        } else {
            fprintf(stderr, "step_probe: unknown option '%s'\n", arg);
            usage(stderr);
            return 2;
        }
    }
    if (elements <= 0 || reps <= 0) {
        fprintf(stderr, "step_probe: --elements and --reps must be positive\n");
        usage(stderr);
        return 2;
    }
    if (threads > 0) omp_set_num_threads((int)threads);
    threads = omp_get_max_threads();

    const size_t n = (size_t)elements;
    float *p = alloc_floats(n), *g = alloc_floats(n), *s0 = alloc_floats(n);
    float *s1 = rule->states > 1 ? alloc_floats(n) : NULL;
    first_touch(p, g, s0, s1, n);

    long t = 0;
    for (long w = 0; w < warmup; w++) step(rule->kind, p, g, s0, s1, n, ++t);

    double *ms = malloc((size_t)reps * sizeof(double));
    if (!ms) return 1;
    for (long r = 0; r < reps; r++) {
        double t0 = now_seconds();
        step(rule->kind, p, g, s0, s1, n, ++t);
        ms[r] = 1e3 * (now_seconds() - t0);
    }
    qsort(ms, (size_t)reps, sizeof(double), cmp_double);
    double median = (reps % 2) ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);

    /* A checksum over a sample of the parameters keeps the result observable. */
    double checksum = 0.0;
    size_t stride = n / 4096 ? n / 4096 : 1;
    for (size_t i = 0; i < n; i += stride) checksum += (double)p[i];

    printf("{\"peer\":\"c-avx512-probe\",\"optimizer\":\"%s\",\"elements\":%ld,\"threads\":%ld,"
           "\"reps\":%ld,\"warmup\":%ld,\"ms_median\":%.4f,\"ms_min\":%.4f,"
           "\"ns_per_element_median\":%.4f,\"bytes_per_element\":%.0f,\"gb_per_s\":%.2f,"
           "\"checksum\":%.9g}\n",
           rule->name, elements, threads, reps, warmup, median, ms[0], 1e6 * median / (double)n,
           rule->bytes_per_element, rule->bytes_per_element * (double)n / (median * 1e6),
           checksum);

    free(ms);
    free(p);
    free(g);
    free(s0);
    free(s1);
    return 0;
}
