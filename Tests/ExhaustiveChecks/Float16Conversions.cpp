// Checks, over every float (2^32) and every half (2^16), that F16C's conversions give the bits of
// the baseline tier's integer code (Float16Storage in Sources/COptimKernels/Storage.h), which
// F16CFloat16Storage replaces in the AVX2 and AVX-512 tiers. About a minute on one core; needs a
// CPU with F16C. From the repository root:
//
//     clang++ -O2 -std=c++17 Tests/ExhaustiveChecks/Float16Conversions.cpp -o /tmp/float16-check
//     /tmp/float16-check            # prints the mismatches, then their count; exits 1 if any
#include <stdio.h>

#include "../../Sources/COptimKernels/Storage.h"

using namespace optim;

__attribute__((target("arch=x86-64-v3"), noinline)) static void f16c_narrow(const float *in, uint16_t *out) {
    F16CFloat16Storage::store(out, *reinterpret_cast<const VFloat *>(in));
}

__attribute__((target("arch=x86-64-v3"), noinline)) static void f16c_widen(const uint16_t *in, float *out) {
    VFloat v;
    F16CFloat16Storage::load(v, in);
    memcpy(out, &v, sizeof v);
}

static uint64_t mismatches = 0;

static void report(const char *what, uint32_t input, uint32_t integer_code, uint32_t f16c) {
    if (mismatches++ < 10) printf("%s %08x: integer code %08x, F16C %08x\n", what, input, integer_code, f16c);
}

int main() {
    alignas(64) float floats[16];
    alignas(64) uint16_t by_f16c[16];
    for (uint64_t first = 0; first < (uint64_t(1) << 32); first += 16) {
        for (int k = 0; k < 16; ++k) {
            const uint32_t bits = uint32_t(first + k);
            memcpy(&floats[k], &bits, sizeof bits);
        }
        VU32 by_integer_code;
        Float16Storage::narrow(by_integer_code, *reinterpret_cast<const VFloat *>(floats));
        f16c_narrow(floats, by_f16c);
        for (int k = 0; k < 16; ++k)
            if (uint16_t(by_integer_code[k]) != by_f16c[k])
                report("narrow", uint32_t(first + k), by_integer_code[k], by_f16c[k]);
    }
    for (uint32_t first = 0; first < 65536; first += 16) {
        alignas(64) uint16_t halves[16];
        for (int k = 0; k < 16; ++k) halves[k] = uint16_t(first + k);
        VFloat by_integer_code;
        Float16Storage::load(by_integer_code, halves);
        f16c_widen(halves, floats);
        for (int k = 0; k < 16; ++k) {
            const float a = by_integer_code[k];
            uint32_t x, y;
            memcpy(&x, &a, sizeof x);
            memcpy(&y, &floats[k], sizeof y);
            if (x != y) report("widen", first + k, x, y);
        }
    }
    printf("%llu mismatches\n", (unsigned long long)mismatches);
    return mismatches == 0 ? 0 : 1;
}
