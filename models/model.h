/*
 * model.h -- the one interface every model kind implements.
 *
 * Glossary
 *   model   immutable, loaded once from a file, shared read-only by every stream
 *           that uses it (whisper.cpp's model/state split).
 *   state   per-stream mutable state, allocated when a stream opens; a step
 *           allocates nothing.
 *   step    one tick of event time: the model consumes one input vector (the
 *           counts of one bin, one tactile frame's encoded events, one hop of
 *           audio) and may produce one output vector (a prediction).
 *
 * Where to start when adding a model kind: implement snn_model_ops in a file of
 * its own (see rsnn.c), fill in struct snn_model's common fields, and add its
 * extension to snn_model_load() in modelfile.c.
 *
 * Errors: functions return 0 or a negative errno-style code (SNN_E*) and, when
 * given one, fill an snn_err with one line naming the file, field or value that
 * was wrong, e.g. "model.safetensors: tensor layers.0.w_in: expected shape
 * [64,96], found [64,95]".
 */
#ifndef SNN_MODEL_H
#define SNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

typedef struct json_t json_t; /* jansson's; avoids including jansson.h here */

/* Error codes (negative when returned). */
enum {
    SNN_OK = 0,
    SNN_EINVAL = 1,   /* bad argument or malformed input */
    SNN_ENOMEM = 2,   /* allocation failed */
    SNN_EIO = 3,      /* read/write failed */
    SNN_EFORMAT = 4,  /* file is not in the expected format / corrupt */
    SNN_ESHAPE = 5,   /* shapes do not match */
    SNN_ENOTSUP = 6,  /* unsupported operator, node, kind or version */
    SNN_ENOENT = 7,   /* no such model / file */
    SNN_ETIME = 8,    /* a timestamp before the open bin, going backwards or out of range */
};

/* One line of error text; callers keep it on their stack. */
typedef struct snn_err {
    char msg[320];
} snn_err;

/* Formats msg into err (if err is not NULL) and returns -code. */
int snn_err_set(snn_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Returns a static English name for an error code (positive or negative). */
const char *snn_strerror(int code);

typedef struct snn_model snn_model;
typedef struct snn_state snn_state;

/* What one step did; filled by step(). Counts are for NeuroBench-style metrics. */
typedef struct snn_step_info {
    int has_output;          /* 1 if out[] holds a new prediction */
    uint32_t hidden_spikes;  /* spikes emitted by hidden neurons this step */
    uint32_t hidden_neurons; /* number of hidden neurons (for activation sparsity) */
    uint64_t dense_ops;      /* synaptic operations a dense implementation does */
    uint64_t eff_macs;       /* effective multiply-accumulates (non-spiking, non-zero inputs) */
    uint64_t eff_acs;        /* effective accumulates (driven by binary spikes) */
    int outside_decision;    /* 1: the prediction is not counted in the decision (a DNSMOS
                              * window dnsmos_local.py does not score, dnsmos.h) */
} snn_step_info;

/* How a model's per-step outputs become one decision for a recording. */
typedef enum snn_decision {
    SNN_DECISION_NONE = 0,   /* regression: no decision */
    SNN_DECISION_ARGMAX_SUM, /* classifier: argmax of outputs summed over steps */
    SNN_DECISION_ARGMAX_LAST,/* classifier: argmax of the last step's outputs */
    SNN_DECISION_ARGMAX_MAX, /* classifier: argmax of per-class maximum over steps */
    SNN_DECISION_MEAN,       /* scorer: mean of each output over steps with output */
} snn_decision;

typedef struct snn_model_ops {
    const char *kind; /* "rsnn", "onnx", "dnsmos-bam", "nir" */
    void (*free)(snn_model *m);
    /* Allocates a zeroed state for m. */
    int (*state_new)(const snn_model *m, snn_state **out, snn_err *err);
    void (*state_free)(const snn_model *m, snn_state *s);
    /* Returns the state to its initial values (as just after state_new). */
    void (*state_reset)(const snn_model *m, snn_state *s);
    /* Advances one step: in[n_in] -> out[n_out]. Must not allocate. */
    int (*step)(const snn_model *m, snn_state *s, const float *in, float *out,
                snn_step_info *info);
    /* Optional: a step on the first n < n_in inputs only (the last, partial
     * hop of an audio stream). NULL: a partial step's inputs are dropped.
     * Must not allocate. */
    int (*step_partial)(const snn_model *m, snn_state *s, const float *in, size_t n, float *out,
                        snn_step_info *info);
    /* Optional: end of stream (e.g. tile a short audio clip). May produce one
     * last output (info->has_output). NULL if the kind has nothing to do. */
    int (*finish)(const snn_model *m, snn_state *s, float *out, snn_step_info *info);
    /* Adds kind-specific fields to a JSON object (architecture, parameter
     * counts, static sparsity). */
    int (*describe)(const snn_model *m, json_t *obj);
} snn_model_ops;

/* Common header of every model; kinds embed it first in their own struct. */
struct snn_model {
    const snn_model_ops *ops;
    const snn_allocator *alloc;
    char name[128];       /* file name without extension */
    char path[1024];      /* file it was loaded from */
    uint32_t n_in;        /* input vector length per step */
    uint32_t n_out;       /* output vector length per step */
    double dt;            /* seconds of event time per step */
    char input_kind[16];  /* default stream input: spikes|binned|tactile|analog|audio */
    char **out_names;     /* n_out names (vx, vy / Space, A, ... / SIG, BAK, OVRL) */
    char **labels;        /* classifier class labels (n_out) or NULL */
    snn_decision decision;
    uint64_t footprint;   /* bytes of stored parameters */
    uint64_t n_params;    /* number of parameters */
};

/* Loads a model file by path; the kind is chosen by extension (.safetensors,
 * .onnx, .nir). The model's name is the basename without extension. */
int snn_model_load(const char *path, const snn_allocator *a, snn_model **out,
                   snn_err *err);

/* Frees a model loaded by snn_model_load (NULL is fine). */
void snn_model_free(snn_model *m);

/* Fills obj with the model's static description (name, kind, inputs,
 * outputs, footprint, parameter count and the kind-specific fields). */
int snn_model_describe(const snn_model *m, json_t *obj);

/* Helpers for kinds: set name/path from a path; set out_names/labels (copied). */
int snn_model_set_path(snn_model *m, const char *path);
int snn_model_set_names(snn_model *m, char ***dst, const char *const *names, uint32_t n);
void snn_model_free_common(snn_model *m);

#endif
