#ifndef CFUZZHASH_H
#define CFUZZHASH_H

#include <stdint.h>

/// The hash that checkpoint files carry (defined in swift-optim's COptimKernels).
uint64_t optim_hash_bytes(const void *bytes, int64_t count, uint64_t seed);

#endif
