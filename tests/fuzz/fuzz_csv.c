/*
 * fuzz_csv.c -- clients/csv.c: snn_csv_parse() on any text.
 *
 * The first byte chooses the expected channel count (0: any), the rest is the
 * file, so both the count check and the free-form parse are explored.
 */
#include <stdlib.h>

#include "csv.h"
#include "fuzz.h"

int fuzz_csv_one(const uint8_t *data, size_t n)
{
    if (n == 0)
        return 0;
    uint32_t expect = data[0] < 0x80 ? 0 : data[0] & 0x0F;
    snn_csv c;
    char err[256];
    if (snn_csv_parse((const char *)data + 1, n - 1, "fuzz.csv", expect, &c, err, sizeof err) == 0) {
        volatile float sum = 0;
        for (size_t i = 0; i < c.n_rows * c.n_ch; i++)
            sum += c.values[i];
        for (uint32_t i = 0; i < c.n_ch; i++)
            if (!c.ch_names[i])
                abort();
        if (c.has_t)
            for (size_t i = 0; i < c.n_rows; i++)
                sum += (float)c.t[i];
        (void)sum;
        if (expect && c.n_ch != expect)
            abort();
        snn_csv_free(&c);
    } else {
        fuzz_note("csv", err);
    }
    return 0;
}
