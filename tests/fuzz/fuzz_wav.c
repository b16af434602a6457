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
        int fmt_ok = w.format == SNN_WAV_PCM || w.format == SNN_WAV_FLOAT || w.format == SNN_WAV_ALAW ||
                     w.format == SNN_WAV_MULAW;
        if (!fmt_ok || w.channels < 1 || w.channels > SNN_WAV_MAX_CHANNELS)
            abort();
        for (size_t i = 0; i < w.n; i++) {
            sum += w.x[i];
            /* integer and G.711 samples decode into [-1, 1] (32-bit PCM near 2^31 rounds to 1.0f); only
             * float files carry other values */
            if (w.format != SNN_WAV_FLOAT && !(w.x[i] >= -1.0f && w.x[i] <= 1.0f))
                abort();
        }
        (void)sum;
        snn_wav_free(&w);
    } else {
        fuzz_note("wav", err.msg);
    }
    return 0;
}
