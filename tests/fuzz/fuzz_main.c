/*
 * fuzz_main.c -- the libFuzzer entry of one target; FUZZ_ONE names its
 * function (fuzz.h), set by tests/fuzz/meson.build.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return FUZZ_ONE(data, size);
}
