/*
 * fuzz_nir.c -- models/nir_read.c + nir.c: a NIR graph (an HDF5 file).
 *
 * libhdf5 reads by path, so the input goes to a scratch file. A graph that
 * loads is run for 10 steps of zero input from a fresh state.
 */
#include <unistd.h>

#include "fuzz.h"
#include "nir.h"

int fuzz_nir_one(const uint8_t *data, size_t n)
{
    const char *path = fuzz_tmpfile(data, n, ".nir");
    if (!path)
        return 0;
    snn_nir_options o;
    snn_nir_options_default(&o);
    snn_model *m = NULL;
    snn_err err = {{0}};
    if (snn_nir_model_load_opts(path, &o, NULL, &m, &err) == 0) {
        fuzz_run_model(m, 10);
        snn_model_free(m);
    } else {
        fuzz_note("nir", err.msg);
    }
    return 0;
}
