/*
 * fuzz_model.c -- models/safetensors.c + rsnn.c: a model file from memory.
 *
 * The input is parsed as a safetensors container, built into an RSNN model
 * and, if that succeeds, run for 10 steps of zero input from a fresh state.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rsnn.h"
#include "safetensors.h"

int fuzz_model_one(const uint8_t *data, size_t n)
{
    uint8_t *buf = malloc(n ? n : 1); /* snn_st_parse takes ownership */
    if (!buf)
        return 0;
    memcpy(buf, data, n);
    snn_st st;
    snn_err err = {{0}};
    if (snn_st_parse(&st, buf, n, "fuzz.safetensors", NULL, &err) < 0) {
        fuzz_note("model", err.msg);
        return 0;
    }
    snn_model *m = NULL;
    if (snn_rsnn_load(&st, "fuzz.safetensors", NULL, &m, &err) == 0) {
        fuzz_run_model(m, 10);
        snn_model_free(m);
    } else {
        fuzz_note("model", err.msg);
    }
    snn_st_close(&st);
    return 0;
}
