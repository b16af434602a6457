/*
 * fuzz_onnx.c -- models/onnx.c: an ONNX graph from memory.
 *
 * The graph is loaded (decode, validation, shape inference, memory plan); a
 * graph small enough to run quickly is run once on zeros. A graph that loads
 * is then loaded again through the DNSMOS model kind (its path entry point,
 * given a memory file), which checks the graph's shape against P.835/P.808.
 */
#include <stdlib.h>
#include <unistd.h>

#include "dnsmos.h"
#include "fuzz.h"
#include "onnx.h"

int fuzz_onnx_one(const uint8_t *data, size_t n)
{
    snn_onnx_graph *g = NULL;
    snn_err err = {{0}};
    if (snn_onnx_load_buffer(data, n, "fuzz.onnx", NULL, &g, &err) < 0) {
        fuzz_note("onnx", err.msg);
        return 0;
    }
    size_t in_n = snn_onnx_input_numel(g), out_n = snn_onnx_output_numel(g), work_n = snn_onnx_work_size(g);
    if (snn_onnx_flops(g) < 20000000u && work_n < (64u << 20) && in_n < (16u << 20) && out_n < (16u << 20)) {
        float *in = calloc(in_n ? in_n : 1, sizeof *in), *out = calloc(out_n ? out_n : 1, sizeof *out);
        void *work = malloc(work_n ? work_n : 1);
        if (in && out && work) {
            snn_onnx_run(g, in, out, work);
            fuzz_note("onnx", "graph ran");
        }
        free(in);
        free(out);
        free(work);
    }
    snn_onnx_free(g);
    char path[64];
    int fd = fuzz_memfd(data, n, path, sizeof path);
    if (fd >= 0) {
        snn_model *m = NULL;
        if (snn_onnx_model_load(path, NULL, &m, &err) == 0)
            snn_model_free(m);
        else
            fuzz_note("onnx model", err.msg);
        close(fd);
    }
    return 0;
}
