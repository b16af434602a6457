/*
 * nir.h -- NIR graphs (Neuromorphic Intermediate Representation, HDF5 files)
 * loaded and executed as snnd models of kind "nir".
 *
 * Glossary
 *   graph     a NIRGraph: named nodes plus directed edges (source -> target).
 *             A node may itself be a NIRGraph (a subgraph); the loader flattens
 *             subgraphs, naming their nodes "outer/inner".
 *   dt        the integration time step of the equations below (seconds). NIR
 *             files do not store it: it comes from the sidecar <name>.json or
 *             defaults to 1e-4 s, the step every NIR paper experiment used
 *             (neuromorphs/NIR paper/01_lif/README.md, paper/03_rnn/README.md).
 *   bin_s     seconds of event time per step (snn_model.dt, what the stream
 *             bins by). Defaults to dt; the braille graphs use dt = 1e-4 for
 *             the equations but consume one 5 ms bin per step.
 *
 * File layout read (neuromorphs/NIR nir/serialization.py, format 0.2.x):
 *   /version            string (optional)
 *   /node               group: type = "NIRGraph", nodes/<name>/..., edges [E,2]
 *                       strings (source, target; a flat list of 2E also reads,
 *                       [2,E] is refused as it would pair the wrong nodes)
 *   /node/nodes/<name>  group: type = string, one dataset per parameter
 * Parameters may be stored in any float or integer type (read as float32). An
 * Input's or Output's size is its "shape", else its input_type / output_type
 * (a dataset, or a group holding one). A one-value Affine bias is broadcast;
 * a Scale, Threshold or neuron whose parameters are all scalars (shape ())
 * takes its size from its source. An edge endpoint "G.x" names node x of
 * subgraph G and "A.input" / "A.output" node A (NIR's port notation), after
 * the literal name and the sidecar's aliases.
 *
 * Supported nodes and their per-step equations. x_t is the node's input at
 * step t: the sum of the outputs of every node with an edge into it. All
 * neuron parameters are per element; H(u) = 1 if u > 0 else 0 (strictly
 * greater, as NIR's "v > v_threshold"). Continuous NIR equations are
 * discretised with forward Euler at step dt, the convention of NIR's own numpy
 * reference (paper/03_rnn/extras/debug_CubaLIF/nir_reference_impl.py) and of
 * Norse (which exported lif_norse.nir):
 *
 *   Input       y_t = model input (top level) or x_t (inside a subgraph)
 *   Output      y_t = x_t (top level: the model output)
 *   Affine      y_t = W x_t + b            W [n_out, n_in]
 *   Linear      y_t = W x_t
 *   Scale       y_t = s ⊙ x_t
 *   Flatten     y_t = x_t                  (data are kept flat, C order)
 *   Conv2d      y_t[o, i, j] = b[o] + Σ_c Σ_{u,v} W[o, c, u, v] ·
 *                   x_t[g·C_g + c, s_h i - p_h + d_h u, s_w j - p_w + d_w v]
 *               W [C_out, C_g = C_in / groups, k_h, k_w], g = o / (C_out / groups),
 *               x zero outside the map (PyTorch's conv2d: a cross-correlation);
 *               output size ⌊(H + p_h + p_h' - d_h (k_h - 1) - 1) / s_h⌋ + 1 (and W)
 *   Conv1d      Conv2d over a map of height 1 (W [C_out, C_g, k])
 *   SumPool2d   y_t[c, i, j] = Σ_{u,v} x_t[c, s_h i - p_h + u, s_w j - p_w + v]
 *   AvgPool2d   the same sum / (k_h k_w) (zero padding counted, PyTorch's default)
 *   Delay       y_t[i] = x_{t - k_i}[i],  k_i = delay[i] / dt, a whole number of
 *               steps (to 1e-3 of one); zero before step k_i and after a reset
 *   Threshold   y_t = H(x_t - θ)
 *   I           v_t = v_{t-1} + dt r x_t;                              y_t = v_t
 *   IF          v_t = v_{t-1} + dt r x_t;  z_t = H(v_t - θ); reset;   y_t = z_t
 *   LI          v_t = v_{t-1} + dt/τ (v_leak - v_{t-1} + r x_t);      y_t = v_t
 *   LIF         v_t = v_{t-1} + dt/τ (v_leak - v_{t-1} + r x_t);
 *               z_t = H(v_t - θ); reset;                              y_t = z_t
 *   CubaLI      I_t = I_{t-1} + dt/τ_syn (-I_{t-1} + w_in x_t)
 *               v_t = v_{t-1} + dt/τ_mem (v_leak - v_{t-1} + r I*);   y_t = v_t
 *   CubaLIF     as CubaLI, then z_t = H(v_t - θ); reset;              y_t = z_t
 *
 *   I and IF integrate dt r x_t per step: a graph whose exporter meant "v += x
 *   per step" with r = 1 (Sinabs) needs "dt": 1 in its sidecar, and Sinabs'
 *   own reset, "reset": "subtract" (the NIR paper's cnn_sinabs.nir: sidecar
 *   {"dt": 1, "reset": "subtract"}; tests/conformance/conf_nir.c). Sinabs'
 *   MultiSpike (several spikes in one step) is not NIR's IF and not modelled.
 *
 *   I* = I_t ("cuba": "updated", the default) or I_{t-1} ("cuba": "previous").
 *   "updated" is what executing CubaLIF as its NIR decomposition LI -> LIF
 *   without delay gives, and equals snnTorch's Synaptic/RSynaptic (with
 *   alpha = 1 - dt/τ_syn, beta = 1 - dt/τ_mem, w_in dt/τ_syn = r dt/τ_mem = 1,
 *   exactly how snnTorch exports, e.g. the braille graphs); "previous" is the
 *   order of NIR's numpy reference (and, judging by its braille lif1 raster,
 *   which lags snnTorch's by one step, Norse's): the input reaches v one step
 *   later. tests/conformance/conf_nir.c checks "updated" against an
 *   independent PyTorch run of snnTorch's equations on the braille state
 *   dicts (identical spike counts), and the LIF equation against Norse's
 *   lif_norse.csv trace (max |dv| 3.7e-9, identical spikes).
 *
 *   reset ("reset" in the sidecar):
 *     "zero"     (default, NIR's definition)  v_t = v_reset      where z_t = 1
 *     "subtract" (snnTorch/Rockpool/NIR ref.) v_t = v_t - θ      where z_t = 1
 *   v_reset defaults to 0 when the file has none (as nir.LIF does).
 *
 * Maps are C x H x W in C order. A Conv's weight gives its channels; its
 * height and width come from input_shape ((H, W), (C, H, W); Conv1d (L) or
 * (C, L)) or, when absent, from its source's shape, as the pools' channels
 * and size always do. A node's output shape is known for Input (a shape of
 * 2 or 3 dimensions, (C, L) read as C x 1 x L), Convs and pools, neurons,
 * Scale and Threshold whose parameters have 2 or 3 dimensions, and passes
 * through element-wise nodes (neurons, Scale, Threshold, Output); Flatten
 * and Affine give flat vectors. stride and dilation default to 1, padding to
 * 0; a pool's stride defaults to its kernel. Padding is numbers (each side),
 * "valid" (none) or "same" (stride 1 only: as PyTorch, an odd total puts the
 * extra row or column after). A Conv's work follows its input's activity:
 * each non-zero input element is scattered to the outputs its taps reach.
 *
 * Execution order and cycles: the flattened graph is ordered by a depth-first
 * search from the top-level Input node that follows each node's out-edges in
 * the order the file lists them (then from any node not reached, in name
 * order); nodes run in reverse post-order. An edge that reaches a node still
 * on the DFS stack closes a cycle (a back edge): it carries its source's output
 * from the previous step. Every other edge carries the current step's value.
 * Before the first step (and after state_reset) a delayed edge carries its
 * source's initial output: the bias for an Affine or Conv node, zero for every
 * other node (so snnTorch's RSynaptic recurrence W_rec s_{t-1} + b_rec, with
 * s_{-1} = 0, is reproduced exactly).
 *
 * Sidecar <dir>/<name>.json (optional; every key optional):
 *   {"dt": 1e-4, "bin_s": 0.005, "reset": "zero"|"subtract",
 *    "cuba": "updated"|"previous", "input_kind": "spikes",
 *    "labels": ["Space", "A", ...], "out_names": [...],
 *    "decision": "sum"|"last"|"max"|"mean"|"none",
 *    "aliases": {"lif1/lif": "lif1"}}
 * For the NIR paper's braille graphs: {"dt": 1e-4, "bin_s": 0.005, "reset":
 * "zero" (or "subtract" for the *_subtract graphs), "labels": ["Space", "A",
 * "E", "I", "O", "U", "Y"]}, plus the alias below for the *_subgraph files.
 * decision defaults to "sum" when labels are given, else "none". "aliases"
 * repairs edges that name a node that does not exist: in the subgraph with
 * flattened prefix "lif1/", an edge endpoint "lif" means node "lif1". The
 * published braille *_subgraph.nir files (NIR paper/03_rnn/extras) need it:
 * their subgraph edges say "lif" but the node is called "lif1". Keys
 * "description", "provenance" and "encoder" are free-form and ignored; any
 * other key is an error (a typo must not silently change the dynamics).
 *
 * Errors name the file and the node: unknown or unsupported node types
 * (a type newer than this list -> SNN_ENOTSUP), missing parameters and
 * malformed files (SNN_EFORMAT), size mismatches between parameters or across
 * an edge, a map smaller than its kernel, a channel count that differs from
 * a Conv's weight, a pool or Conv after a flat vector, a state (node outputs,
 * neuron variables, Delay histories) above 2^28 floats (SNN_ESHAPE). Edges
 * compare element counts (a Flatten's input is its flat C-order vector).
 *
 * libhdf5 (Debian's serial build) is not thread-safe: load models from one
 * thread at a time. Stepping touches no HDF5 state.
 */
#ifndef SNN_NIR_H
#define SNN_NIR_H

#include <stdint.h>

#include "model.h"

enum { SNN_NIR_RESET_ZERO = 0, SNN_NIR_RESET_SUBTRACT = 1 };
enum { SNN_NIR_CUBA_UPDATED = 0, SNN_NIR_CUBA_PREVIOUS = 1 };

/* What the sidecar can set; snn_nir_options_default() gives the defaults. */
typedef struct snn_nir_options {
    double dt;                 /* integration step of the equations, seconds */
    double bin_s;              /* event time per step (snn_model.dt); 0 = dt */
    int reset;                 /* SNN_NIR_RESET_* */
    int cuba;                  /* SNN_NIR_CUBA_* */
    char input_kind[16];       /* default stream input kind */
    int decision;              /* snn_decision, or -1 = by labels */
    const char *const *labels; /* n_labels class labels (copied) or NULL */
    uint32_t n_labels;
    const char *const *out_names; /* n_out_names output names (copied) or NULL */
    uint32_t n_out_names;
    const char *const *aliases;   /* n_aliases pairs {from, to}: edge repairs */
    uint32_t n_aliases;
} snn_nir_options;

/* Fills o with the defaults: dt 1e-4, bin_s = dt, reset zero, cuba updated,
 * input_kind "spikes", decision by labels, no labels or names. */
void snn_nir_options_default(snn_nir_options *o);

/* Loads the NIR graph at path with the options of its sidecar
 * <dir>/<name>.json if that file exists (defaults otherwise). On success *out
 * is a model of kind "nir" (free with snn_model_free) and 0 is returned; on
 * failure a negative SNN_E* code with err naming the file and node. */
int snn_nir_model_load(const char *path, const snn_allocator *a, snn_model **out,
                       snn_err *err);

/* As snn_nir_model_load but with explicit options (no sidecar is read). */
int snn_nir_model_load_opts(const char *path, const snn_nir_options *o,
                            const snn_allocator *a, snn_model **out, snn_err *err);

/* Reads the sidecar JSON at json_path into o (starting from o's current
 * values). Returns 0, -SNN_ENOENT if the file does not exist (o unchanged), or
 * -SNN_EFORMAT naming the bad key. String arrays (labels, out_names, aliases)
 * are allocated with a; free them with snn_nir_options_free_strings(). */
int snn_nir_options_read(const char *json_path, snn_nir_options *o,
                         const snn_allocator *a, snn_err *err);
void snn_nir_options_free_strings(snn_nir_options *o, const snn_allocator *a);

/* Looks at a node's state after a step, for tests and tracing: var "out" (the
 * node's output y_t), "v" (membrane) or "i" (synaptic current). node is the
 * flattened name ("lif1.lif", "lif1/lif1"). Sets *vals (valid until the next
 * step) and *n; returns 0, or -SNN_ENOENT if the node or variable is absent. */
int snn_nir_probe(const snn_model *m, const snn_state *s, const char *node,
                  const char *var, const float **vals, uint32_t *n);

/* Number of nodes in the flattened graph and their names in execution order
 * (i < count). Returns NULL when i is out of range. */
uint32_t snn_nir_node_count(const snn_model *m);
const char *snn_nir_node_name(const snn_model *m, uint32_t i);

/* Number of edges that close a cycle (carried with a one-step delay). */
uint32_t snn_nir_delayed_edge_count(const snn_model *m);

#endif
