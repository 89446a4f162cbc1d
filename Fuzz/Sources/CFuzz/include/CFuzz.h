#ifndef CFUZZ_H
#define CFUZZ_H

#include <stddef.h>
#include <stdint.h>

/// The hash that checkpoint files carry (defined in swift-optim's COptimKernels).
uint64_t optim_hash_bytes(const void *bytes, int64_t count, uint64_t seed);

/// libFuzzer's driver, for an executable that has its own `main` (SwiftPM renames an
/// executable's entry point, so libFuzzer's `main` cannot be used).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
