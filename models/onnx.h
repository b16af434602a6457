/*
 * onnx.h -- load an ONNX graph and run it on float32 tensors.
 *
 * Glossary
 *   graph    the parsed, validated, shape-checked network: constant tensors
 *            (initializers), nodes in topological order, one float input and
 *            one float output. Immutable after loading; shared by every run.
 *   work     one caller-owned buffer of snn_onnx_work_size() bytes holding all
 *            intermediate tensors (planned at load time so that tensors whose
 *            lifetimes do not overlap share memory) plus convolution scratch.
 *            A run allocates nothing; concurrent runs need separate work.
 *
 * The file is decoded with protobuf-c from a minimal copy of the official
 * schema (onnx.proto beside this file). Dynamic input dimensions (a batch "N")
 * are fixed to 1 at load time, so every shape is static; any other dynamic
 * input dimension is refused, naming it.
 *
 * Supported operators (default domain, opsets 7..21; only ReduceMax's axes moved
 * from an attribute to an input in that span, and both forms read): Conv (group 1),
 * MaxPool (no padding), ReduceMax, MatMul, Add, Sub, Mul, Div, Max, Pow, Relu,
 * Sqrt, Log, Exp, Sigmoid, Tanh, Neg, Abs, Transpose, Reshape, Flatten,
 * Unsqueeze, Squeeze, Identity, Slice, Concat; Constant nodes (value,
 * value_float(s), value_int(s)) become constants. A Relu that is the only reader
 * of a Conv output is fused into the Conv. Anything else is rejected at
 * load time with "<file>: node <i> (<name>): unsupported operator '<op>'".
 */
#ifndef SNN_ONNX_H
#define SNN_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"
#include "onnx_ops.h"

typedef struct snn_onnx_graph snn_onnx_graph;

/* Reads and validates the ONNX file at path. On success *out owns the graph
 * (free with snn_onnx_free). Errors: -SNN_EIO (cannot read), -SNN_EFORMAT
 * (not a ModelProto, bad tensor data), -SNN_ENOTSUP (operator, attribute or
 * data type snnd does not run), -SNN_ESHAPE (shapes do not fit), -SNN_ENOMEM;
 * err names the file, node and field. */
int snn_onnx_load(const char *path, const snn_allocator *a, snn_onnx_graph **out,
                  snn_err *err);

/* As snn_onnx_load, from len bytes in memory; label names the source in
 * error messages. */
int snn_onnx_load_buffer(const uint8_t *buf, size_t len, const char *label,
                         const snn_allocator *a, snn_onnx_graph **out, snn_err *err);

/* Frees a graph (NULL is fine). */
void snn_onnx_free(snn_onnx_graph *g);

/* Shape of the graph input / output (dynamic dims already fixed to 1). */
int snn_onnx_input_rank(const snn_onnx_graph *g);
const int64_t *snn_onnx_input_dims(const snn_onnx_graph *g);
size_t snn_onnx_input_numel(const snn_onnx_graph *g);
int snn_onnx_output_rank(const snn_onnx_graph *g);
const int64_t *snn_onnx_output_dims(const snn_onnx_graph *g);
size_t snn_onnx_output_numel(const snn_onnx_graph *g);

/* Bytes of work buffer a run needs (aligned to 64 bytes by the caller's
 * allocator or not: the run aligns internally). */
size_t snn_onnx_work_size(const snn_onnx_graph *g);

/* Floating-point operations of one run (2 per multiply-add of Conv/MatMul;
 * elementwise ops counted 1 per element), number of float parameters and
 * bytes of stored constant data. */
uint64_t snn_onnx_flops(const snn_onnx_graph *g);
uint64_t snn_onnx_n_params(const snn_onnx_graph *g);
uint64_t snn_onnx_footprint(const snn_onnx_graph *g);
size_t snn_onnx_n_nodes(const snn_onnx_graph *g);

/* Chooses how 3x3 stride-1 convolutions with >= 8 input channels run: 1
 * (the default) with Winograd F(4x4,3x3), and a 1-channel stem Conv that only
 * feeds such a Conv run together with it in strips of rows (the map between
 * them is never written whole); 0 with im2col + sgemm, one node at a time.
 * Both give the same result up to float rounding; for comparisons and benchmarks. */
void snn_onnx_set_fast_conv(snn_onnx_graph *g, int on);

/* Number of Conv pairs that run together in strips when fast_conv is on (DNSMOS P.835: 1). */
size_t snn_onnx_n_fused(const snn_onnx_graph *g);

/* Runs the graph: in[snn_onnx_input_numel] -> out[snn_onnx_output_numel],
 * using work (snn_onnx_work_size bytes). Allocates nothing. */
void snn_onnx_run(const snn_onnx_graph *g, const float *in, float *out, void *work);

/*
 * Parts of a graph, for a caller that runs the front of a known network its own way (dnsmos.c
 * streams DNSMOS P.835 by keeping convolution outputs between overlapping windows) and the
 * rest with the graph. Nodes are numbered 0.. in file order.
 */

/* ONNX op_type of node k ("Conv", "Relu", ...; a Relu fused into its Conv keeps its name but
 * runs as an identity), or NULL when k is out of range. */
const char *snn_onnx_node_op(const snn_onnx_graph *g, size_t k);

/* Flops (as snn_onnx_flops counts them) of nodes k .. last. */
uint64_t snn_onnx_flops_from(const snn_onnx_graph *g, size_t k);

typedef struct snn_onnx_conv_view {
    snn_conv2d geom;   /* geometry as loaded (a 1-D Conv has H = KH = 1) */
    const float *w;    /* [Co][C][KH][KW] */
    const float *b;    /* [Co] or NULL */
    const float *wino; /* Winograd weights (snn_winograd_weights) when that path is on, else NULL */
    int relu;          /* a following Relu is fused */
} snn_onnx_conv_view;

/* Fills *cv for node k if it is a Conv: returns 0, else -1. The pointers live as long as g. */
int snn_onnx_node_conv(const snn_onnx_graph *g, size_t k, snn_onnx_conv_view *cv);

/* Node k's input i if it is a float constant: its data (*n elements), else NULL. */
const float *snn_onnx_node_const(const snn_onnx_graph *g, size_t k, int i, size_t *n);

/* Where node k's first input lives in work (its shape in *dims, *rank), or NULL if that input is
 * not an intermediate float tensor. Write it there, then snn_onnx_run_from(g, k, ...). */
float *snn_onnx_node_input(const snn_onnx_graph *g, size_t k, void *work, const int64_t **dims,
                           int *rank);

/* Runs nodes k .. last on the tensors already in work (node k's inputs must have been written,
 * see snn_onnx_node_input; no node from k on may read the graph input) and writes the graph
 * output to out. Allocates nothing. */
void snn_onnx_run_from(const snn_onnx_graph *g, size_t k, float *out, void *work);

#endif
