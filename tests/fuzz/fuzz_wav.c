/*
 * fuzz_wav.c -- models/wav.c: snn_wav_parse() on any bytes.
 */
#include <math.h>
#include <stdlib.h>

#include "fuzz.h"
#include "wav.h"

int fuzz_wav_one(const uint8_t *data, size_t n)
{
    snn_wav w;
    snn_err err = {{0}};
    if (snn_wav_parse(data, n, "fuzz.wav", NULL, &w, &err) == 0) {
        /* Touch every sample: a wrong count shows up as a sanitizer report. */
        volatile float sum = 0;
        for (size_t i = 0; i < w.n; i++)
            sum += w.x[i];
        (void)sum;
        if (w.format != 1 && w.format != 3)
            abort();
        snn_wav_free(&w);
    } else {
        fuzz_note("wav", err.msg);
    }
    return 0;
}
