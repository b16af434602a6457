/*
 * nir.c -- the "nir" model kind: a flattened NIR graph compiled into an
 * execution order and stepped one bin at a time. Equations, execution order
 * and the sidecar are documented in nir.h.
 */
#include "nir.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nir_read.h"
#include "session.h"

enum op {
    OP_INPUT, OP_OUTPUT, OP_AFFINE, OP_LINEAR, OP_SCALE, OP_FLATTEN, OP_THRESHOLD,
    OP_CONV, OP_SUMPOOL, OP_AVGPOOL, OP_DELAY,
    OP_I, OP_IF, OP_LI, OP_LIF, OP_CUBALI, OP_CUBALIF,
};

static const struct {
    const char *type;
    int op;
} op_names[] = {
    {"Input", OP_INPUT},     {"Output", OP_OUTPUT},   {"Affine", OP_AFFINE},
    {"Linear", OP_LINEAR},   {"Scale", OP_SCALE},     {"Flatten", OP_FLATTEN},
    {"Threshold", OP_THRESHOLD}, {"I", OP_I},         {"IF", OP_IF},
    {"LI", OP_LI},           {"LIF", OP_LIF},         {"CubaLI", OP_CUBALI},
    {"CubaLIF", OP_CUBALIF}, {"Conv1d", OP_CONV},     {"Conv2d", OP_CONV},
    {"SumPool2d", OP_SUMPOOL}, {"AvgPool2d", OP_AVGPOOL}, {"Delay", OP_DELAY},
};

#define SUPPORTED "Input, Output, Affine, Linear, Scale, Flatten, Threshold, I, IF, LI, LIF, " \
                  "CubaLI, CubaLIF, Conv1d, Conv2d, SumPool2d, AvgPool2d, Delay, NIRGraph"

/* Geometry of a convolution or pool over C x H x W maps (C order; a Conv1d
 * is a Conv2d of height 1). Padding is ph/pw before and ph_hi/pw_hi after. */
typedef struct geo {
    uint32_t c_in, h_in, w_in, c_out, h_out, w_out;
    uint32_t kh, kw, sh, sw, dh, dw, ph, pw, ph_hi, pw_hi;
    uint32_t groups;
    int one_d;         /* Conv1d: the input's height must be 1 */
    int resolved;      /* input height and width known, sizes set */
} geo;

#define NONE UINT32_MAX

typedef struct node {
    char name[256];
    const char *type;
    int op;
    int top;           /* belongs to the top-level graph */
    int spiking;       /* output is a spike vector */
    int hidden;        /* spiking and not feeding the model output directly */
    uint32_t n_in, n_out;
    float *wt;         /* Affine/Linear: W transposed, [n_in][n_out] */
    float *b;          /* Affine bias [n_out] */
    float *s;          /* Scale factors / Threshold θ / Delay steps [n] */
    float *a_mem;      /* dt/τ or dt/τ_mem [n] (I, IF: unused) */
    float *a_syn;      /* dt/τ_syn [n] */
    float *r;          /* r [n]; I and IF: dt r */
    float *v_leak;     /* [n] */
    float *w_in;       /* [n] */
    float *v_th;       /* [n] */
    float *v_reset;    /* [n] */
    float *kt;         /* Conv: weights [c_in][kh][kw][c_out / groups] */
    geo g;             /* Conv, SumPool2d, AvgPool2d */
    uint32_t dims[3];  /* output shape C, H, W, when known (has_dims) */
    int has_dims;
    int bcast;         /* parameters all scalars (shape ()): size from the source */
    uint32_t out_off;  /* offsets into the state's floats */
    uint32_t v_off, i_off;
    uint32_t ring_off, ring_len; /* Delay: ring_len slots of n_out, then the head */
    uint32_t in_first, in_count; /* sources in model in_src[] */
} node;

typedef struct edge {
    uint32_t src, dst; /* execution-order indices */
    int delayed;
} edge;

typedef struct nir_model {
    snn_model base;
    char version[32];
    double dt_int;      /* integration step */
    int reset, cuba;
    node *nodes;        /* execution order */
    uint32_t n_nodes;
    edge *edges;
    uint32_t n_edges, n_delayed;
    uint32_t *in_src;   /* per node, its source nodes (n_edges entries) */
    uint32_t input, output;
    uint32_t n_state;   /* floats of node outputs + neuron state */
    uint32_t max_in;    /* scratch size */
} nir_model;

typedef struct nir_state {
    float *f;           /* n_state floats */
    float *scratch;     /* max_in floats */
} nir_state;

static const snn_model_ops nir_ops;

/* Returns the file name part of a path (for messages). */
static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Contract in nir.h. */
void snn_nir_options_default(snn_nir_options *o)
{
    memset(o, 0, sizeof *o);
    o->dt = 1e-4;
    o->reset = SNN_NIR_RESET_ZERO;
    o->cuba = SNN_NIR_CUBA_UPDATED;
    snprintf(o->input_kind, sizeof o->input_kind, "spikes");
    o->decision = -1;
}

/* ---- sidecar ---------------------------------------------------------- */

/* Copies the JSON array of strings v into a new array (*out, *n). Returns 0 or
 * -SNN_EFORMAT / -SNN_ENOMEM naming file and key; nothing is kept on error. */
static int read_str_array(json_t *v, const char *file, const char *key, char ***out,
                          uint32_t *n, const snn_allocator *a, snn_err *err)
{
    if (!json_is_array(v))
        return snn_err_set(err, SNN_EFORMAT, "%s: \"%s\" must be an array of strings", file, key);
    size_t len = json_array_size(v);
    char **s = a->calloc(len ? len : 1, sizeof *s);
    if (!s)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", file);
    for (size_t i = 0; i < len; i++) {
        json_t *e = json_array_get(v, i);
        const char *t = json_string_value(e);
        if (!t) {
            for (size_t j = 0; j < i; j++)
                a->free(s[j]);
            a->free(s);
            return snn_err_set(err, SNN_EFORMAT, "%s: \"%s\"[%zu] is not a string", file, key, i);
        }
        s[i] = a->malloc(strlen(t) + 1);
        if (!s[i]) {
            for (size_t j = 0; j < i; j++)
                a->free(s[j]);
            a->free(s);
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", file);
        }
        memcpy(s[i], t, strlen(t) + 1);
    }
    *out = s;
    *n = (uint32_t)len;
    return 0;
}

/* Frees o's alias pairs (allocated by snn_nir_options_read) and clears them. */
static void free_aliases(snn_nir_options *o, const snn_allocator *a)
{
    char **al = (char **)o->aliases;
    for (uint32_t i = 0; al && i < 2 * o->n_aliases; i++)
        a->free(al[i]);
    a->free(al);
    o->aliases = NULL;
    o->n_aliases = 0;
}

/* Contract in nir.h. */
void snn_nir_options_free_strings(snn_nir_options *o, const snn_allocator *a)
{
    a = snn_alloc_or_default(a);
    char **l = (char **)o->labels, **n = (char **)o->out_names;
    for (uint32_t i = 0; l && i < o->n_labels; i++)
        a->free(l[i]);
    for (uint32_t i = 0; n && i < o->n_out_names; i++)
        a->free(n[i]);
    a->free(l);
    a->free(n);
    o->labels = o->out_names = NULL;
    o->n_labels = o->n_out_names = 0;
    free_aliases(o, a);
}

/* Contract in nir.h. Keys are checked one by one; on error the keys read so
 * far stay applied (the caller discards o). */
int snn_nir_options_read(const char *json_path, snn_nir_options *o, const snn_allocator *a,
                         snn_err *err)
{
    a = snn_alloc_or_default(a);
    const char *file = base_name(json_path);
    FILE *fp = fopen(json_path, "rb");
    if (!fp)
        return -SNN_ENOENT;
    json_error_t je;
    json_t *root = json_loadf(fp, 0, &je);
    fclose(fp);
    if (!root)
        return snn_err_set(err, SNN_EFORMAT, "%s:%d: %s", file, je.line, je.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: must be a JSON object", file);
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        const char *s = json_string_value(v);
        if (!strcmp(key, "dt") || !strcmp(key, "bin_s")) {
            double d = json_number_value(v);
            if (!json_is_number(v) || !(d > 0) || !isfinite(d)) {
                rc = snn_err_set(err, SNN_EFORMAT, "%s: \"%s\" must be a positive number", file, key);
                goto done;
            }
            if (!strcmp(key, "dt"))
                o->dt = d;
            else
                o->bin_s = d;
        } else if (!strcmp(key, "reset")) {
            if (s && !strcmp(s, "zero"))
                o->reset = SNN_NIR_RESET_ZERO;
            else if (s && !strcmp(s, "subtract"))
                o->reset = SNN_NIR_RESET_SUBTRACT;
            else {
                rc = snn_err_set(err, SNN_EFORMAT, "%s: \"reset\" must be \"zero\" or \"subtract\"", file);
                goto done;
            }
        } else if (!strcmp(key, "cuba")) {
            if (s && !strcmp(s, "updated"))
                o->cuba = SNN_NIR_CUBA_UPDATED;
            else if (s && !strcmp(s, "previous"))
                o->cuba = SNN_NIR_CUBA_PREVIOUS;
            else {
                rc = snn_err_set(err, SNN_EFORMAT, "%s: \"cuba\" must be \"updated\" or \"previous\"", file);
                goto done;
            }
        } else if (!strcmp(key, "input_kind")) {
            if (!s || snn_input_kind_parse(s) <= 0) {
                rc = snn_err_set(err, SNN_EFORMAT,
                                 "%s: \"input_kind\" must be spikes, binned, tactile, analog or audio", file);
                goto done;
            }
            snprintf(o->input_kind, sizeof o->input_kind, "%s", s);
        } else if (!strcmp(key, "decision")) {
            static const struct { const char *n; int d; } ds[] = {
                {"none", SNN_DECISION_NONE}, {"sum", SNN_DECISION_ARGMAX_SUM},
                {"last", SNN_DECISION_ARGMAX_LAST}, {"max", SNN_DECISION_ARGMAX_MAX},
                {"mean", SNN_DECISION_MEAN}};
            int found = 0;
            for (size_t i = 0; s && i < sizeof ds / sizeof ds[0]; i++)
                if (!strcmp(s, ds[i].n)) {
                    o->decision = ds[i].d;
                    found = 1;
                }
            if (!found) {
                rc = snn_err_set(err, SNN_EFORMAT,
                                 "%s: \"decision\" must be none, sum, last, max or mean", file);
                goto done;
            }
        } else if (!strcmp(key, "labels") || !strcmp(key, "out_names")) {
            char **arr = NULL;
            uint32_t n = 0;
            if ((rc = read_str_array(v, file, key, &arr, &n, a, err)) < 0)
                goto done;
            if (!strcmp(key, "labels")) {
                o->labels = (const char *const *)arr;
                o->n_labels = n;
            } else {
                o->out_names = (const char *const *)arr;
                o->n_out_names = n;
            }
        } else if (!strcmp(key, "aliases")) {
            if (!json_is_object(v)) {
                rc = snn_err_set(err, SNN_EFORMAT, "%s: \"aliases\" must be an object of strings", file);
                goto done;
            }
            size_t na = json_object_size(v);
            char **al = a->calloc(2 * na + 1, sizeof *al);
            if (!al) {
                rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", file);
                goto done;
            }
            free_aliases(o, a);
            o->aliases = (const char *const *)al;
            const char *from;
            json_t *to;
            json_object_foreach(v, from, to) {
                const char *t = json_string_value(to);
                if (!t) {
                    rc = snn_err_set(err, SNN_EFORMAT, "%s: \"aliases\".\"%s\" is not a string", file, from);
                    goto done;
                }
                al[2 * o->n_aliases] = a->malloc(strlen(from) + 1);
                al[2 * o->n_aliases + 1] = a->malloc(strlen(t) + 1);
                if (!al[2 * o->n_aliases] || !al[2 * o->n_aliases + 1]) {
                    a->free(al[2 * o->n_aliases]);
                    a->free(al[2 * o->n_aliases + 1]);
                    al[2 * o->n_aliases] = al[2 * o->n_aliases + 1] = NULL;
                    rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", file);
                    goto done;
                }
                memcpy(al[2 * o->n_aliases], from, strlen(from) + 1);
                memcpy(al[2 * o->n_aliases + 1], t, strlen(t) + 1);
                o->n_aliases++;
            }
        } else if (strcmp(key, "description") && strcmp(key, "provenance") &&
                   strcmp(key, "encoder")) {
            rc = snn_err_set(err, SNN_EFORMAT, "%s: unknown key \"%s\"", file, key);
            goto done;
        }
    }
done:
    json_decref(root);
    return rc;
}

/* ---- compile ---------------------------------------------------------- */

/* Frees the parameter arrays of n (NULL ones are fine). */
static void free_node(const snn_allocator *a, node *n)
{
    float **arrs[] = {&n->wt, &n->b, &n->s, &n->a_mem, &n->a_syn, &n->r,
                      &n->v_leak, &n->w_in, &n->v_th, &n->v_reset, &n->kt};
    for (size_t i = 0; i < sizeof arrs / sizeof arrs[0]; i++) {
        a->free(*arrs[i]);
        *arrs[i] = NULL;
    }
}

/* ops->free: frees a (possibly partly built) model and everything it owns. */
static void model_free(snn_model *base)
{
    if (!base)
        return;
    nir_model *m = (nir_model *)base;
    const snn_allocator *a = base->alloc;
    for (uint32_t i = 0; i < m->n_nodes; i++)
        free_node(a, &m->nodes[i]);
    a->free(m->nodes);
    a->free(m->edges);
    a->free(m->in_src);
    snn_model_free_common(base);
    a->free(m);
}

typedef struct cctx {
    const char *file;
    const snn_allocator *a;
    snn_err *err;
    const snn_nir_options *o;
} cctx;

/* Copies n floats of p (broadcasting a 1-element p) into a new array. */
static int copy_param(cctx *c, const snn_nir_rnode *rn, const char *pname, uint32_t n,
                      float dflt, int required, float **out)
{
    const snn_nir_param *p = snn_nir__param(rn, pname);
    if (!p && required)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter %s",
                           c->file, rn->name, rn->type, pname);
    if (p && p->n != n && p->n != 1)
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: node '%s' (%s): parameter %s has %u elements, expected %u",
                           c->file, rn->name, rn->type, pname, p->n, n);
    float *d = c->a->malloc((n ? n : 1) * sizeof *d);
    if (!d)
        return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
    for (uint32_t i = 0; i < n; i++)
        d[i] = p ? p->data[p->n == 1 ? 0 : i] : dflt;
    *out = d;
    return 0;
}

/* Turns d[i] (a time constant) into dt/d[i] in place; τ must be > 0. */
static int rate_from_tau(cctx *c, const snn_nir_rnode *rn, const char *pname, float *d, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (!(d[i] > 0) || !isfinite(d[i]))
            return snn_err_set(c->err, SNN_EFORMAT,
                               "%s: node '%s' (%s): %s[%u] = %g must be a positive time constant",
                               c->file, rn->name, rn->type, pname, i, (double)d[i]);
        d[i] = (float)(c->o->dt / (double)d[i]);
    }
    return 0;
}

/* 1 if v is a whole number from lo to hi (NaN is not), the test every integer
 * a NIR file stores as a float (shapes, groups, strides, ...) must pass before
 * it is cast. */
static int whole_in(float v, float lo, float hi)
{
    return v >= lo && v <= hi && v == floorf(v);
}

/* Product of a shape parameter's values; 0 if a value is not a positive whole
 * number or the product is absurd (>= 1e9). */
static uint32_t prod_of(const snn_nir_param *p)
{
    double n = 1;
    for (uint32_t i = 0; i < p->n; i++) {
        if (!whole_in(p->data[i], 1.0f, 1e9f))
            return 0;
        n *= p->data[i];
    }
    return n < 1e9 ? (uint32_t)n : 0;
}

/* Reads the integer hyper-parameter pname of rn (a scalar or one value per
 * spatial dimension; nsp = 1 or 2) into out[0..1] (height, width; a Conv1d's
 * height is 1 and gets dflt_h). Values must be integers from lo to 65535; an
 * absent parameter is an error when required, else dflt. */
static int hyper(cctx *c, const snn_nir_rnode *rn, const char *pname, int nsp, uint32_t lo,
                 uint32_t dflt, uint32_t dflt_h, int required, uint32_t out[2])
{
    const snn_nir_param *p = snn_nir__param(rn, pname);
    out[0] = nsp == 1 ? dflt_h : dflt;
    out[1] = dflt;
    if (!p) {
        if (required || snn_nir__text(rn, pname))
            return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): %s parameter %s",
                               c->file, rn->name, rn->type,
                               required && !snn_nir__text(rn, pname) ? "missing" : "unsupported text",
                               pname);
        return 0;
    }
    if (p->n != 1 && p->n != (uint32_t)nsp)
        return snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): %s has %u values, expected 1 or %d",
                           c->file, rn->name, rn->type, pname, p->n, nsp);
    for (int k = 0; k < nsp; k++) {
        float v = p->data[p->n == 1 ? 0 : k];
        if (!whole_in(v, (float)lo, 65535.0f))
            return snn_err_set(c->err, SNN_EFORMAT,
                               "%s: node '%s' (%s): %s = %g must be an integer from %u to 65535",
                               c->file, rn->name, rn->type, pname, (double)v, lo);
        out[nsp == 1 ? 1 : k] = (uint32_t)v;
    }
    return 0;
}

/* Reads a Conv's or pool's padding: numbers (hyper), or the text "valid"
 * (none) or "same" (stride 1 only: output size = input size; as PyTorch, any
 * odd total goes after). The "same" amounts depend on the kernel only. */
static int padding(cctx *c, const snn_nir_rnode *rn, int nsp, geo *g)
{
    const char *t = snn_nir__text(rn, "padding");
    if (!t) {
        uint32_t p[2];
        int rc = hyper(c, rn, "padding", nsp, 0, 0, 0, 0, p);
        g->ph = g->ph_hi = p[0];
        g->pw = g->pw_hi = p[1];
        return rc;
    }
    if (!strcmp(t, "valid")) {
        g->ph = g->ph_hi = g->pw = g->pw_hi = 0;
        return 0;
    }
    if (strcmp(t, "same"))
        return snn_err_set(c->err, SNN_EFORMAT,
                           "%s: node '%s' (%s): padding \"%s\" (supported: numbers, \"same\", \"valid\")",
                           c->file, rn->name, rn->type, t);
    if (g->sh != 1 || g->sw != 1)
        return snn_err_set(c->err, SNN_ENOTSUP, "%s: node '%s' (%s): padding \"same\" needs stride 1",
                           c->file, rn->name, rn->type);
    uint32_t th = g->dh * (g->kh - 1), tw = g->dw * (g->kw - 1);
    g->ph = th / 2;
    g->ph_hi = th - g->ph;
    g->pw = tw / 2;
    g->pw_hi = tw - g->pw;
    return 0;
}

/* One output length of a convolution or pool (nir.h); 0 if it has none. */
static uint32_t out_len(uint32_t in, uint32_t lo, uint32_t hi, uint32_t k, uint32_t d, uint32_t s)
{
    uint64_t span = (uint64_t)d * (k - 1) + 1, padded = (uint64_t)in + lo + hi;
    return padded < span ? 0 : (uint32_t)((padded - span) / s + 1);
}

/* Completes n's geometry from its input height h and width w: output sizes,
 * element counts and output shape. Errors when there is no output. */
static int resolve(cctx *c, node *n, uint32_t h, uint32_t w)
{
    geo *g = &n->g;
    g->h_in = h;
    g->w_in = w;
    g->h_out = out_len(h, g->ph, g->ph_hi, g->kh, g->dh, g->sh);
    g->w_out = out_len(w, g->pw, g->pw_hi, g->kw, g->dw, g->sw);
    uint64_t in = (uint64_t)g->c_in * h * w, out = (uint64_t)g->c_out * g->h_out * g->w_out;
    if (!g->h_out || !g->w_out)
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: node '%s' (%s): a %ux%u input is smaller than its %ux%u kernel "
                           "(dilation %ux%u, padding %u+%u x %u+%u)", c->file, n->name, n->type,
                           h, w, g->kh, g->kw, g->dh, g->dw, g->ph, g->ph_hi, g->pw, g->pw_hi);
    if (!in || in > (1u << 28) || out > (1u << 28))
        return snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): %llu inputs, %llu outputs "
                           "(supported: 1 to 2^28)", c->file, n->name, n->type,
                           (unsigned long long)in, (unsigned long long)out);
    n->n_in = (uint32_t)in;
    n->n_out = (uint32_t)out;
    n->dims[0] = g->c_out;
    n->dims[1] = g->h_out;
    n->dims[2] = g->w_out;
    n->has_dims = 1;
    g->resolved = 1;
    return 0;
}

/* Sets n's output shape from parameter p when p has 2 (C, W) or 3 (C, H, W)
 * dimensions (as_list: p lists the dimensions, e.g. Input's shape). */
static void dims_from(node *n, const snn_nir_param *p, int as_list)
{
    uint64_t d[3] = {0, 1, 0};
    int nd = as_list ? (int)p->n : p->ndim;
    for (int k = 0; k < nd && nd <= 3; k++) {
        uint64_t v = as_list ? (uint64_t)p->data[k] : p->dims[k];
        d[nd == 2 && k == 1 ? 2 : k] = v;
    }
    if ((nd == 2 || nd == 3) && d[0] && d[1] && d[2] && d[0] * d[1] * d[2] == n->n_out) {
        for (int k = 0; k < 3; k++)
            n->dims[k] = (uint32_t)d[k];
        n->has_dims = 1;
    }
}

/* Compiles a Conv1d / Conv2d node: weight [c_out, c_in / groups, (kh,) kw],
 * bias [c_out] (or one value), stride, padding, dilation, groups, and the
 * optional input_shape ((H, W) or (C, H, W); a Conv1d's (L) or (C, L)). The
 * input's height and width come from input_shape, else from the source
 * (resolve, from compile). */
static int compile_conv(cctx *c, const snn_nir_rnode *rn, node *n, uint64_t *n_params)
{
    geo *g = &n->g;
    int nsp = !strcmp(rn->type, "Conv1d") ? 1 : 2;
    const snn_nir_param *w = snn_nir__param(rn, "weight"), *gr = snn_nir__param(rn, "groups");
    if (!w)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter weight",
                           c->file, rn->name, rn->type);
    if (w->ndim != nsp + 2 || w->n == 0)
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: node '%s' (%s): weight must have %d non-empty dimensions "
                           "(out, in / groups, %s), has %d", c->file, rn->name, rn->type, nsp + 2,
                           nsp == 1 ? "width" : "height, width", w->ndim);
    g->groups = 1;
    g->one_d = nsp == 1;
    if (gr && (gr->n != 1 || !whole_in(gr->data[0], 1.0f, 65535.0f) ||
               w->dims[0] % (uint64_t)gr->data[0]))
        return snn_err_set(c->err, SNN_EFORMAT,
                           "%s: node '%s' (%s): groups must be one positive integer dividing the "
                           "%llu output channels", c->file, rn->name, rn->type,
                           (unsigned long long)w->dims[0]);
    if (gr)
        g->groups = (uint32_t)gr->data[0];
    if (w->dims[0] > 65535 || w->dims[1] * g->groups > 65535 || w->dims[2] > 65535 ||
        w->dims[w->ndim - 1] > 65535)
        return snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): weight dimensions above 65535",
                           c->file, rn->name, rn->type);
    g->c_out = (uint32_t)w->dims[0];
    g->c_in = (uint32_t)w->dims[1] * g->groups;
    g->kh = nsp == 1 ? 1 : (uint32_t)w->dims[2];
    g->kw = (uint32_t)w->dims[w->ndim - 1];
    uint32_t st[2], dl[2];
    int rc;
    if ((rc = hyper(c, rn, "stride", nsp, 1, 1, 1, 0, st)) < 0 ||
        (rc = hyper(c, rn, "dilation", nsp, 1, 1, 1, 0, dl)) < 0)
        return rc;
    g->sh = st[0], g->sw = st[1], g->dh = dl[0], g->dw = dl[1];
    if ((rc = padding(c, rn, nsp, g)) < 0)
        return rc;
    /* weights transposed so that one input element's taps are contiguous per output channel */
    uint32_t cog = g->c_out / g->groups, cig = g->c_in / g->groups;
    n->kt = c->a->malloc((size_t)w->n * sizeof *n->kt);
    if (!n->kt)
        return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
    for (uint32_t co = 0; co < g->c_out; co++)
        for (uint32_t cl = 0; cl < cig; cl++)
            for (uint32_t k = 0; k < g->kh * g->kw; k++) {
                uint32_t ci = (co / cog) * cig + cl;
                n->kt[((size_t)ci * g->kh * g->kw + k) * cog + co % cog] =
                    w->data[((size_t)co * cig + cl) * g->kh * g->kw + k];
            }
    const snn_nir_param *b = snn_nir__param(rn, "bias");
    if (!b)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter bias",
                           c->file, rn->name, rn->type);
    if ((rc = copy_param(c, rn, "bias", g->c_out, 0, 1, &n->b)) < 0)
        return rc;
    *n_params += w->n + b->n;
    const snn_nir_param *is = snn_nir__param(rn, "input_shape");
    if (!is)
        return 0; /* n_in 0: resolved from the source */
    uint32_t v[3] = {0, 0, 0};
    for (uint32_t k = 0; k < is->n && k < 3; k++)
        v[k] = whole_in(is->data[k], 1.0f, 999999.0f) ? (uint32_t)is->data[k] : 0;
    int with_c = is->n == (uint32_t)nsp + 1;
    if ((is->n != (uint32_t)nsp && !with_c) || (with_c && v[0] != g->c_in) || !v[0] ||
        (nsp == 2 && !v[1]) || (with_c && !v[nsp]))
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: node '%s' (%s): input_shape must be %s%s with %u channels",
                           c->file, rn->name, rn->type, nsp == 1 ? "(L) or (C, L)" : "(H, W) or (C, H, W)",
                           " of positive integers", g->c_in);
    const uint32_t *sp = v + with_c;
    return resolve(c, n, nsp == 1 ? 1 : sp[0], sp[nsp - 1]);
}

/* Completes the geometry of Conv or pool n (no input_shape) from its first
 * source s (NULL: none), whose output shape must be known. */
static int resolve_from(cctx *c, node *n, const node *s)
{
    if (!s)
        return snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): size unknown (no input_shape "
                           "and no input edge)", c->file, n->name, n->type);
    if (!s->has_dims)
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: node '%s' (%s): its input's shape is unknown: '%s' (%s) gives %u "
                           "values with no channel, height and width%s", c->file, n->name, n->type,
                           s->name, s->type, s->n_out,
                           n->op == OP_CONV ? " (give the node an input_shape)" : "");
    if (n->op != OP_CONV)
        n->g.c_in = n->g.c_out = s->dims[0];
    if (s->dims[0] != n->g.c_in || (n->g.one_d && s->dims[1] != 1))
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: edge '%s' -> '%s': '%s' (%s) outputs %u x %u x %u, '%s' (%s) takes "
                           "%u channels%s", c->file, s->name, n->name, s->name, s->type, s->dims[0],
                           s->dims[1], s->dims[2], n->name, n->type, n->g.c_in,
                           n->g.one_d ? " of height 1" : "");
    return resolve(c, n, s->dims[1], s->dims[2]);
}

/* Compiles a SumPool2d / AvgPool2d node: kernel_size, stride (default: the
 * kernel), padding (default 0). Channels and input size come from the
 * source (resolve, from compile). */
static int compile_pool(cctx *c, const snn_nir_rnode *rn, node *n)
{
    geo *g = &n->g;
    uint32_t k[2], st[2];
    int rc;
    if ((rc = hyper(c, rn, "kernel_size", 2, 1, 0, 0, 1, k)) < 0 ||
        (rc = hyper(c, rn, "stride", 2, 1, 0, 0, 0, st)) < 0) /* absent: 0, the kernel */
        return rc;
    st[0] = st[0] ? st[0] : k[0];
    st[1] = st[1] ? st[1] : k[1];
    g->kh = k[0], g->kw = k[1], g->sh = st[0], g->sw = st[1], g->dh = g->dw = 1, g->groups = 1;
    return padding(c, rn, 2, g);
}

/* Compiles a Delay node: delay [n] in seconds, each a whole number of steps
 * of dt (to 1e-3 of a step), kept as step counts in n->s; the ring holds the
 * last max + 1 inputs (at most 2^24 floats in all). */
static int compile_delay(cctx *c, const snn_nir_rnode *rn, node *n)
{
    const snn_nir_param *p = snn_nir__param(rn, "delay");
    if (!p)
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter delay",
                           c->file, rn->name, rn->type);
    int rc = copy_param(c, rn, "delay", p->n, 0, 1, &n->s);
    if (rc < 0)
        return rc;
    n->n_in = n->n_out = p->n;
    dims_from(n, p, 0);
    uint32_t max = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        double d = (double)p->data[i] / c->o->dt, r = floor(d + 0.5);
        if (!(d >= 0) || d > 1e7 || fabs(d - r) > 1e-3)
            return snn_err_set(c->err, SNN_EFORMAT,
                               "%s: node '%s' (%s): delay[%u] = %g s is not a whole number of "
                               "steps of dt = %g s (from 0 to 1e7 steps)", c->file, rn->name,
                               rn->type, i, (double)p->data[i], c->o->dt);
        n->s[i] = (float)r;
        max = r > max ? (uint32_t)r : max;
    }
    if ((uint64_t)(max + 1) * p->n > (1u << 24))
        return snn_err_set(c->err, SNN_ESHAPE,
                           "%s: node '%s' (%s): a delay of %u steps over %u values needs more than "
                           "2^24 floats of history", c->file, rn->name, rn->type, max, p->n);
    n->ring_len = max + 1;
    return 0;
}

/* Marks n, a Scale, Threshold or neuron whose parameters are all scalars
 * (shape ()), as taking its size from its first source, as numpy broadcasts
 * a scalar over its input (snnTorch exports a layer with one scalar beta and
 * threshold so). compile() sets the size and widens the parameters (widen). */
static void set_bcast(node *n)
{
    n->bcast = 1;
    n->n_in = n->n_out = 0;
    n->has_dims = 0;
}

/* Widens the one-element parameter arrays of a broadcast node n (set_bcast)
 * to its n->n_out elements, now known. Returns 0 or -SNN_ENOMEM (c->err set). */
static int widen(cctx *c, node *n)
{
    float **arrs[] = {&n->s, &n->a_mem, &n->a_syn, &n->r, &n->v_leak, &n->w_in, &n->v_th,
                      &n->v_reset};
    for (size_t k = 0; k < sizeof arrs / sizeof arrs[0]; k++) {
        if (!*arrs[k])
            continue;
        float *w = c->a->malloc((size_t)n->n_out * sizeof *w);
        if (!w)
            return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        for (uint32_t i = 0; i < n->n_out; i++)
            w[i] = (*arrs[k])[0];
        c->a->free(*arrs[k]);
        *arrs[k] = w;
    }
    return 0;
}

/* Fills n (op, sizes, parameters) from the raw node rn. */
static int compile_node(cctx *c, const snn_nir_rnode *rn, node *n, uint64_t *n_params)
{
    int rc = 0;
    snprintf(n->name, sizeof n->name, "%s", rn->name);
    n->top = rn->top;
    n->op = -1;
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (!strcmp(rn->type, op_names[i].type)) {
            n->op = op_names[i].op;
            n->type = op_names[i].type;
        }
    if (n->op < 0)
        return snn_err_set(c->err, SNN_ENOTSUP,
                           "%s: node '%s': node type %s is not supported (supported: " SUPPORTED ")",
                           c->file, rn->name, rn->type);
    const snn_nir_param *p;
    uint32_t sz = 0;
    switch (n->op) {
    case OP_INPUT:
    case OP_OUTPUT: {
        /* NIR writes "shape"; a writer that kept the node's input_type /
         * output_type (group {input: shape} or dataset) gives the same */
        const char *alt[2] = {"input_type", "output_type"};
        int o = n->op == OP_OUTPUT;
        if (!(p = snn_nir__param(rn, "shape")) && !(p = snn_nir__param(rn, alt[o])) &&
            !(p = snn_nir__param(rn, alt[!o])))
            return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter shape "
                               "(nor %s)", c->file, rn->name, rn->type, alt[o]);
        sz = prod_of(p);
        if (!sz)
            return snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): shape must list positive "
                               "whole numbers with a product below 1e9", c->file, rn->name, rn->type);
        n->n_in = n->n_out = sz;
        dims_from(n, p, 1);
        return 0;
    }
    case OP_CONV:
        return compile_conv(c, rn, n, n_params);
    case OP_SUMPOOL:
    case OP_AVGPOOL:
        return compile_pool(c, rn, n);
    case OP_FLATTEN:
        p = snn_nir__param(rn, "input_type");
        n->n_in = n->n_out = p ? prod_of(p) : 0; /* 0: taken from the source */
        return 0;
    case OP_AFFINE:
    case OP_LINEAR: {
        if (!(p = snn_nir__param(rn, "weight")))
            return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter weight",
                               c->file, rn->name, rn->type);
        if (p->ndim != 2 || !p->dims[0] || !p->dims[1])
            return snn_err_set(c->err, SNN_ENOTSUP,
                               "%s: node '%s' (%s): weight must be a non-empty 2-D matrix, has %d dimensions",
                               c->file, rn->name, rn->type, p->ndim);
        n->n_out = (uint32_t)p->dims[0];
        n->n_in = (uint32_t)p->dims[1];
        n->wt = c->a->malloc((size_t)n->n_in * n->n_out * sizeof *n->wt);
        if (!n->wt)
            return snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        for (uint32_t o = 0; o < n->n_out; o++)
            for (uint32_t i = 0; i < n->n_in; i++)
                n->wt[(size_t)i * n->n_out + o] = p->data[(size_t)o * n->n_in + i];
        *n_params += p->n;
        if (n->op == OP_AFFINE) {
            const snn_nir_param *b = snn_nir__param(rn, "bias");
            if (!b)
                return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter bias",
                                   c->file, rn->name, rn->type);
            if (b->n != n->n_out && b->n != 1) /* one value is broadcast, as numpy does */
                return snn_err_set(c->err, SNN_ESHAPE,
                                   "%s: node '%s' (%s): bias has %u elements, weight has %u rows",
                                   c->file, rn->name, rn->type, b->n, n->n_out);
            if ((rc = copy_param(c, rn, "bias", n->n_out, 0, 1, &n->b)) < 0)
                return rc;
            *n_params += b->n;
        }
        return 0;
    }
    case OP_DELAY:
        return compile_delay(c, rn, n);
    case OP_SCALE:
    case OP_THRESHOLD: {
        const char *pn = n->op == OP_SCALE ? "scale" : "threshold";
        if (!(p = snn_nir__param(rn, pn)))
            return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter %s",
                               c->file, rn->name, rn->type, pn);
        n->n_in = n->n_out = p->n;
        n->spiking = n->op == OP_THRESHOLD;
        dims_from(n, p, 0);
        *n_params += p->n;
        rc = copy_param(c, rn, pn, p->n, 0, 1, &n->s);
        if (p->ndim == 0)
            set_bcast(n);
        return rc;
    }
    default:
        break;
    }
    /* neurons: the size is that of r (every kind has it) */
    if (!(p = snn_nir__param(rn, "r")))
        return snn_err_set(c->err, SNN_EFORMAT, "%s: node '%s' (%s): missing parameter r", c->file,
                           rn->name, rn->type);
    sz = p->n;
    n->n_in = n->n_out = sz;
    dims_from(n, p, 0);
    int cuba = n->op == OP_CUBALI || n->op == OP_CUBALIF;
    int fires = n->op == OP_IF || n->op == OP_LIF || n->op == OP_CUBALIF;
    int leaky = n->op != OP_I && n->op != OP_IF;
    n->spiking = fires;
    if ((rc = copy_param(c, rn, "r", sz, 0, 1, &n->r)) < 0)
        return rc;
    if (leaky) {
        const char *tn = cuba ? "tau_mem" : "tau";
        if ((rc = copy_param(c, rn, tn, sz, 0, 1, &n->a_mem)) < 0 ||
            (rc = rate_from_tau(c, rn, tn, n->a_mem, sz)) < 0 ||
            (rc = copy_param(c, rn, "v_leak", sz, 0, 1, &n->v_leak)) < 0)
            return rc;
        /* strict sizes for the defining parameters (only w_in/v_reset broadcast) */
        const char *strict[] = {tn, "v_leak", cuba ? "tau_syn" : NULL};
        for (size_t i = 0; i < 3 && strict[i]; i++) {
            const snn_nir_param *q = snn_nir__param(rn, strict[i]);
            if (q && q->n != sz)
                return snn_err_set(c->err, SNN_ESHAPE,
                                   "%s: node '%s' (%s): parameter %s has %u elements, expected %u",
                                   c->file, rn->name, rn->type, strict[i], q->n, sz);
        }
    } else {
        for (uint32_t i = 0; i < sz; i++)
            n->r[i] = (float)(c->o->dt * (double)n->r[i]);
    }
    if (cuba) {
        if ((rc = copy_param(c, rn, "tau_syn", sz, 0, 1, &n->a_syn)) < 0 ||
            (rc = rate_from_tau(c, rn, "tau_syn", n->a_syn, sz)) < 0 ||
            (rc = copy_param(c, rn, "w_in", sz, 1.0f, 0, &n->w_in)) < 0)
            return rc;
    }
    if (fires) {
        if ((rc = copy_param(c, rn, "v_threshold", sz, 0, 1, &n->v_th)) < 0 ||
            (rc = copy_param(c, rn, "v_reset", sz, 0.0f, 0, &n->v_reset)) < 0)
            return rc;
        const snn_nir_param *q = snn_nir__param(rn, "v_threshold");
        if (q->n != sz)
            return snn_err_set(c->err, SNN_ESHAPE,
                               "%s: node '%s' (%s): parameter v_threshold has %u elements, expected %u",
                               c->file, rn->name, rn->type, q->n, sz);
    }
    for (uint32_t i = 0; i < rn->n_params; i++)
        *n_params += rn->params[i].n;
    int all_scalar = 1;
    for (uint32_t i = 0; i < rn->n_params; i++)
        all_scalar &= rn->params[i].ndim <= 0; /* strings (ndim -1) do not count */
    if (all_scalar)
        set_bcast(n);
    return 0;
}

/* Depth-first order from the Input node (see nir.h). Writes the execution
 * order (reverse post-order) into order[] and marks back edges in delayed[]. */
static int dfs_order(cctx *c, const snn_nir_rgraph *g, uint32_t start, uint32_t *order,
                     uint8_t *delayed)
{
    uint32_t n = g->n_nodes, e_n = g->n_edges;
    const snn_allocator *a = c->a;
    uint32_t *first = a->calloc(n + 1, sizeof *first);
    uint32_t *adj = a->malloc((e_n ? e_n : 1) * sizeof *adj);
    uint8_t *color = a->calloc(n ? n : 1, 1);
    uint32_t *stack = a->malloc((n ? n : 1) * sizeof *stack);
    uint32_t *next = a->malloc((n ? n : 1) * sizeof *next);
    int rc = 0;
    if (!first || !adj || !color || !stack || !next) {
        rc = snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        goto done;
    }
    /* out-edges per node, in file order (counting sort is stable) */
    for (uint32_t e = 0; e < e_n; e++)
        first[g->edges[e].src + 1]++;
    for (uint32_t i = 0; i < n; i++)
        first[i + 1] += first[i];
    {
        uint32_t *fill = next; /* reuse as a cursor */
        for (uint32_t i = 0; i < n; i++)
            fill[i] = first[i];
        for (uint32_t e = 0; e < e_n; e++)
            adj[fill[g->edges[e].src]++] = e;
    }
    uint32_t post = n; /* order is filled from the back */
    for (uint32_t k = 0; k <= n; k++) {
        uint32_t root = k == 0 ? start : k - 1;
        if (color[root])
            continue;
        uint32_t sp = 0;
        stack[sp++] = root;
        next[root] = first[root];
        color[root] = 1;
        while (sp) {
            uint32_t u = stack[sp - 1];
            if (next[u] < first[u + 1]) {
                uint32_t e = adj[next[u]++];
                uint32_t v = g->edges[e].dst;
                if (color[v] == 1) {
                    delayed[e] = 1;
                } else if (color[v] == 0) {
                    color[v] = 1;
                    next[v] = first[v];
                    stack[sp++] = v;
                }
            } else {
                color[u] = 2;
                order[--post] = u;
                sp--;
            }
        }
    }
done:
    a->free(first);
    a->free(adj);
    a->free(color);
    a->free(stack);
    a->free(next);
    return rc;
}

/* Compiles the raw graph g into m: checks the single top-level Input and
 * Output, orders the nodes (dfs_order), compiles each node, groups the edges
 * by destination, infers Flatten sizes, checks every edge's sizes and lays
 * out the state. Returns 0 or a negative code with c->err set. */
static int compile(cctx *c, const snn_nir_rgraph *g, nir_model *m)
{
    const snn_allocator *a = c->a;
    uint32_t n = g->n_nodes;
    int rc = 0;
    uint32_t *order = NULL, *pos = NULL;
    uint8_t *delayed = NULL;
    long in = -1, out = -1;
    for (uint32_t i = 0; i < n; i++) {
        const snn_nir_rnode *rn = &g->nodes[i];
        if (!rn->top)
            continue;
        if (!strcmp(rn->type, "Input"))
            in = in == -1 ? (long)i : -2;
        if (!strcmp(rn->type, "Output"))
            out = out == -1 ? (long)i : -2;
    }
    if (in < 0 || out < 0)
        return snn_err_set(c->err, in == -2 || out == -2 ? SNN_ENOTSUP : SNN_EFORMAT,
                           "%s: the top-level graph needs exactly one %s node, has %s", c->file,
                           in < 0 ? "Input" : "Output", (in < 0 ? in : out) == -1 ? "none" : "several");
    order = a->malloc(n * sizeof *order);
    pos = a->malloc(n * sizeof *pos);
    delayed = a->calloc(g->n_edges ? g->n_edges : 1, 1);
    m->nodes = a->calloc(n, sizeof *m->nodes);
    m->edges = a->calloc(g->n_edges ? g->n_edges : 1, sizeof *m->edges);
    m->in_src = a->calloc(g->n_edges ? g->n_edges : 1, sizeof *m->in_src);
    if (!order || !pos || !delayed || !m->nodes || !m->edges || !m->in_src) {
        rc = snn_err_set(c->err, SNN_ENOMEM, "%s: out of memory", c->file);
        goto done;
    }
    if ((rc = dfs_order(c, g, (uint32_t)in, order, delayed)) < 0)
        goto done;
    for (uint32_t k = 0; k < n; k++)
        pos[order[k]] = k;
    m->n_nodes = n;
    for (uint32_t k = 0; k < n; k++)
        if ((rc = compile_node(c, &g->nodes[order[k]], &m->nodes[k], &m->base.n_params)) < 0)
            goto done;
    for (uint32_t k = 0; k < n; k++)
        for (uint32_t j = 0; j < g->nodes[order[k]].n_params; j++)
            m->base.footprint += g->nodes[order[k]].params[j].stored_bytes;
    m->input = pos[in];
    m->output = pos[out];
    /* edges, grouped by destination in execution order */
    m->n_edges = g->n_edges;
    uint32_t w = 0;
    for (uint32_t k = 0; k < n; k++) {
        m->nodes[k].in_first = w;
        for (uint32_t e = 0; e < g->n_edges; e++) {
            if (pos[g->edges[e].dst] != k)
                continue;
            edge *ed = &m->edges[w];
            ed->src = pos[g->edges[e].src];
            ed->dst = k;
            ed->delayed = delayed[e];
            m->n_delayed += delayed[e];
            m->in_src[w++] = ed->src;
        }
        m->nodes[k].in_count = w - m->nodes[k].in_first;
    }
    if (m->nodes[m->input].in_count)
        { rc = snn_err_set(c->err, SNN_ENOTSUP, "%s: node '%s' (Input): edges into the graph's Input node are not supported",
                           c->file, m->nodes[m->input].name); goto done; }
    /* sizes: infer Convs' and pools' without input_shape and Flatten's from their
     * first source, check every edge, pass shapes through element-wise nodes */
    for (uint32_t k = 0; k < n; k++) {
        node *d = &m->nodes[k];
        const node *s0 = d->in_count ? &m->nodes[m->in_src[d->in_first]] : NULL;
        if ((d->op == OP_CONV || d->op == OP_SUMPOOL || d->op == OP_AVGPOOL) && !d->g.resolved &&
            (rc = resolve_from(c, d, s0)) < 0)
            goto done;
        if (d->op == OP_CONV && s0 && s0->has_dims &&
            (s0->dims[0] != d->g.c_in || s0->dims[1] != d->g.h_in || s0->dims[2] != d->g.w_in)) {
            rc = snn_err_set(c->err, SNN_ESHAPE,
                             "%s: edge '%s' -> '%s': '%s' (%s) outputs %u x %u x %u, '%s' (%s) "
                             "takes %u x %u x %u (its input_shape)", c->file, s0->name, d->name,
                             s0->name, s0->type, s0->dims[0], s0->dims[1], s0->dims[2], d->name,
                             d->type, d->g.c_in, d->g.h_in, d->g.w_in);
            goto done;
        }
        if (d->n_in == 0) {
            if (!d->in_count) {
                rc = snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): size unknown (no input_type and no input edge)",
                                 c->file, d->name, d->type);
                goto done;
            }
            d->n_in = d->n_out = m->nodes[m->in_src[d->in_first]].n_out;
            if (d->bcast && (rc = widen(c, d)) < 0)
                goto done;
        }
        for (uint32_t j = 0; j < d->in_count; j++) {
            const node *s = &m->nodes[m->in_src[d->in_first + j]];
            if (s->n_out == 0 || s->n_out != d->n_in) {
                rc = snn_err_set(c->err, SNN_ESHAPE,
                                 "%s: edge '%s' -> '%s': '%s' (%s) outputs %u values, '%s' (%s) takes %u",
                                 c->file, s->name, d->name, s->name, s->type, s->n_out, d->name,
                                 d->type, d->n_in);
                goto done;
            }
        }
        int elementwise = d->op == OP_OUTPUT || d->op == OP_SCALE || d->op == OP_THRESHOLD ||
                          d->op == OP_DELAY || d->op >= OP_I;
        if (elementwise && !d->has_dims && s0 && s0->has_dims) {
            memcpy(d->dims, s0->dims, sizeof d->dims);
            d->has_dims = 1;
        }
    }
    /* state layout and hidden-ness; the state is at most 2^28 floats (1 GiB) */
    uint64_t off = 0;
    for (uint32_t k = 0; k < n; k++) {
        node *d = &m->nodes[k];
        d->out_off = (uint32_t)off;
        off += d->n_out;
        d->v_off = d->i_off = NONE;
        if (d->op == OP_DELAY) {
            d->ring_off = (uint32_t)off;
            off += (uint64_t)d->ring_len * d->n_out + 1; /* + the head slot index */
        }
        if (d->op >= OP_I) {
            d->v_off = (uint32_t)off;
            off += d->n_out;
        }
        if (d->op == OP_CUBALI || d->op == OP_CUBALIF) {
            d->i_off = (uint32_t)off;
            off += d->n_out;
        }
        if (off > (1u << 28)) {
            rc = snn_err_set(c->err, SNN_ESHAPE, "%s: node '%s' (%s): the graph's state passes "
                             "2^28 floats (1 GiB)", c->file, d->name, d->type);
            goto done;
        }
        if (d->n_in > m->max_in)
            m->max_in = d->n_in;
        d->hidden = d->spiking;
    }
    for (uint32_t j = 0; j < m->nodes[m->output].in_count; j++)
        m->nodes[m->in_src[m->nodes[m->output].in_first + j]].hidden = 0;
    m->n_state = (uint32_t)off;
    m->base.n_in = m->nodes[m->input].n_out;
    m->base.n_out = m->nodes[m->output].n_out;
done:
    a->free(order);
    a->free(pos);
    a->free(delayed);
    return rc;
}

/* Sets labels, output names (labels, out_names or y0..) and the decision. */
static int set_names(cctx *c, nir_model *m)
{
    const snn_nir_options *o = c->o;
    snn_model *b = &m->base;
    if (o->labels && o->n_labels != b->n_out)
        return snn_err_set(c->err, SNN_EINVAL, "%s: sidecar labels: %u names for %u outputs",
                           c->file, o->n_labels, b->n_out);
    if (o->out_names && o->n_out_names != b->n_out)
        return snn_err_set(c->err, SNN_EINVAL, "%s: sidecar out_names: %u names for %u outputs",
                           c->file, o->n_out_names, b->n_out);
    int rc;
    if (o->labels && (rc = snn_model_set_names(b, &b->labels, o->labels, b->n_out)) < 0)
        return snn_err_set(c->err, -rc, "%s: out of memory", c->file);
    const char *const *names = o->out_names ? o->out_names : o->labels;
    if (names)
        rc = snn_model_set_names(b, &b->out_names, names, b->n_out);
    else {
        char **gen = c->a->calloc(b->n_out, sizeof *gen);
        rc = gen ? 0 : -SNN_ENOMEM;
        for (uint32_t i = 0; rc == 0 && i < b->n_out; i++) {
            gen[i] = c->a->malloc(16);
            if (!gen[i])
                rc = -SNN_ENOMEM;
            else
                snprintf(gen[i], 16, "y%u", i);
        }
        if (rc == 0)
            rc = snn_model_set_names(b, &b->out_names, (const char *const *)gen, b->n_out);
        for (uint32_t i = 0; gen && i < b->n_out; i++)
            c->a->free(gen[i]);
        c->a->free(gen);
    }
    if (rc < 0)
        return snn_err_set(c->err, -rc, "%s: out of memory", c->file);
    b->decision = o->decision >= 0 ? (snn_decision)o->decision
                                   : o->labels ? SNN_DECISION_ARGMAX_SUM : SNN_DECISION_NONE;
    return 0;
}

/* Contract in nir.h. */
int snn_nir_model_load_opts(const char *path, const snn_nir_options *o, const snn_allocator *a,
                            snn_model **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    snn_nir_options dflt;
    if (!o) {
        snn_nir_options_default(&dflt);
        o = &dflt;
    }
    cctx c = {base_name(path), a, err, o};
    if (!(o->dt > 0))
        return snn_err_set(err, SNN_EINVAL, "%s: dt must be positive", c.file);
    snn_nir_rgraph g;
    memset(&g, 0, sizeof g);
    int rc = snn_nir__read(path, o->aliases, o->n_aliases, a, &g, err);
    if (rc < 0) {
        snn_nir__rgraph_free(&g, a);
        return rc;
    }
    nir_model *m = a->calloc(1, sizeof *m);
    if (!m) {
        snn_nir__rgraph_free(&g, a);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", c.file);
    }
    m->base.ops = &nir_ops;
    m->base.alloc = a;
    snprintf(m->version, sizeof m->version, "%s", g.version);
    m->dt_int = o->dt;
    m->reset = o->reset;
    m->cuba = o->cuba;
    m->base.dt = o->bin_s > 0 ? o->bin_s : o->dt;
    snprintf(m->base.input_kind, sizeof m->base.input_kind, "%s", o->input_kind);
    rc = snn_model_set_path(&m->base, path);
    if (rc < 0)
        rc = snn_err_set(err, -rc, "%s: bad path", c.file);
    if (rc == 0)
        rc = compile(&c, &g, m);
    if (rc == 0)
        rc = set_names(&c, m);
    snn_nir__rgraph_free(&g, a);
    if (rc < 0) {
        model_free(&m->base);
        return rc;
    }
    *out = &m->base;
    return 0;
}

/* Contract in nir.h. The sidecar is the path with its extension replaced by
 * ".json"; a missing sidecar means defaults, a malformed one is an error. */
int snn_nir_model_load(const char *path, const snn_allocator *a, snn_model **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    snn_nir_options o;
    snn_nir_options_default(&o);
    char side[1100];
    size_t l = strlen(path);
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        l = (size_t)(dot - path);
    if (l + 6 > sizeof side)
        return snn_err_set(err, SNN_EINVAL, "%s: path too long", base_name(path));
    memcpy(side, path, l);
    memcpy(side + l, ".json", 6);
    int rc = snn_nir_options_read(side, &o, a, err);
    if (rc < 0 && rc != -SNN_ENOENT) {
        snn_nir_options_free_strings(&o, a);
        return rc;
    }
    rc = snn_nir_model_load_opts(path, &o, a, out, err);
    snn_nir_options_free_strings(&o, a);
    return rc;
}

/* ---- state and step --------------------------------------------------- */

/* ops->state_reset: neuron state and node outputs to zero, Affine and Conv
 * outputs to their bias (what a delayed edge carries before the first step). */
static void state_reset(const snn_model *base, snn_state *st)
{
    const nir_model *m = (const nir_model *)base;
    nir_state *s = (nir_state *)st;
    memset(s->f, 0, m->n_state * sizeof *s->f);
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        const node *d = &m->nodes[k];
        uint32_t hw = d->g.h_out * d->g.w_out;
        if (d->op == OP_AFFINE)
            memcpy(s->f + d->out_off, d->b, d->n_out * sizeof(float));
        for (uint32_t i = 0; d->op == OP_CONV && i < d->n_out; i++)
            s->f[d->out_off + i] = d->b[i / hw];
    }
}

/* ops->state_new: one block of n_state floats plus the input scratch. */
static int state_new(const snn_model *base, snn_state **out, snn_err *err)
{
    const nir_model *m = (const nir_model *)base;
    const snn_allocator *a = base->alloc;
    nir_state *s = a->calloc(1, sizeof *s);
    float *f = a->calloc((size_t)m->n_state + m->max_in + 1, sizeof *f);
    if (!s || !f) {
        a->free(s);
        a->free(f);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for state", base->name);
    }
    s->f = f;
    s->scratch = f + m->n_state;
    state_reset(base, (snn_state *)s);
    *out = (snn_state *)s;
    return 0;
}

/* ops->state_free (NULL is fine). */
static void state_free(const snn_model *base, snn_state *st)
{
    if (!st)
        return;
    nir_state *s = (nir_state *)st;
    base->alloc->free(s->f);
    base->alloc->free(s);
}

/* Fires where v > θ and resets (see nir.h). Returns the spike count. */
static uint32_t fire(const nir_model *m, const node *d, float *v, float *z)
{
    uint32_t spikes = 0;
    for (uint32_t i = 0; i < d->n_out; i++) {
        int f = v[i] > d->v_th[i];
        z[i] = (float)f;
        spikes += (uint32_t)f;
        if (f)
            v[i] = m->reset == SNN_NIR_RESET_SUBTRACT ? v[i] - d->v_th[i] : d->v_reset[i];
    }
    return spikes;
}

/* A Conv's output y = bias + W * x (nir.h), computed by scattering each
 * non-zero input element into the outputs its taps reach, so the work
 * follows the input's activity. Counts the work as step() does for Affine. */
static void conv_step(const node *d, const float *x, float *y, snn_step_info *info)
{
    const geo *g = &d->g;
    uint32_t hw = g->h_out * g->w_out, cog = g->c_out / g->groups, cig = g->c_in / g->groups;
    uint32_t taps = g->kh * g->kw;
    for (uint32_t co = 0; co < g->c_out; co++)
        for (uint32_t i = 0; i < hw; i++)
            y[(size_t)co * hw + i] = d->b[co];
    info->dense_ops += (uint64_t)d->n_out * cig * taps;
    for (uint32_t ci = 0; ci < g->c_in; ci++) {
        float *yg = y + (size_t)(ci / cig) * cog * hw;
        for (uint32_t iy = 0; iy < g->h_in; iy++)
            for (uint32_t ix = 0; ix < g->w_in; ix++) {
                float xi = x[((size_t)ci * g->h_in + iy) * g->w_in + ix];
                if (xi == 0.0f)
                    continue;
                for (uint32_t ky = 0; ky < g->kh; ky++) {
                    int64_t ty = (int64_t)iy + g->ph - (int64_t)ky * g->dh;
                    if (ty < 0 || ty % g->sh || ty / g->sh >= g->h_out)
                        continue;
                    for (uint32_t kx = 0; kx < g->kw; kx++) {
                        int64_t tx = (int64_t)ix + g->pw - (int64_t)kx * g->dw;
                        if (tx < 0 || tx % g->sw || tx / g->sw >= g->w_out)
                            continue;
                        const float *w = d->kt + ((size_t)ci * taps + ky * g->kw + kx) * cog;
                        float *yo = yg + (size_t)(ty / g->sh) * g->w_out + (size_t)(tx / g->sw);
                        if (xi == 1.0f) {
                            for (uint32_t o = 0; o < cog; o++)
                                yo[(size_t)o * hw] += w[o];
                            info->eff_acs += cog;
                        } else {
                            for (uint32_t o = 0; o < cog; o++)
                                yo[(size_t)o * hw] += w[o] * xi;
                            info->eff_macs += cog;
                        }
                    }
                }
            }
    }
}

/* A SumPool2d's or AvgPool2d's output (nir.h): per channel, the sum (or the
 * sum over the kernel's area) of the window, zero padding included. */
static void pool_step(const node *d, const float *x, float *y)
{
    const geo *g = &d->g;
    float scale = d->op == OP_AVGPOOL ? 1.0f / (float)(g->kh * g->kw) : 1.0f;
    for (uint32_t c = 0; c < g->c_out; c++)
        for (uint32_t oy = 0; oy < g->h_out; oy++)
            for (uint32_t ox = 0; ox < g->w_out; ox++) {
                float acc = 0.0f;
                for (uint32_t ky = 0; ky < g->kh; ky++) {
                    int64_t iy = (int64_t)oy * g->sh + ky - g->ph;
                    if (iy < 0 || iy >= g->h_in)
                        continue;
                    for (uint32_t kx = 0; kx < g->kw; kx++) {
                        int64_t ix = (int64_t)ox * g->sw + kx - g->pw;
                        if (ix >= 0 && ix < g->w_in)
                            acc += x[((size_t)c * g->h_in + (size_t)iy) * g->w_in + (size_t)ix];
                    }
                }
                y[((size_t)c * g->h_out + oy) * g->w_out + ox] = acc * scale;
            }
}

/* ops->step: runs every node once in execution order (equations in nir.h).
 * A node's input is the sum of its sources' output buffers: a source later in
 * the order still holds the previous step's value, which is exactly the
 * one-step delay of an edge that closes a cycle. Allocates nothing. info:
 * dense_ops/eff_* count Affine/Linear work (an input of exactly 1 is an
 * accumulate, any other non-zero input a multiply-accumulate); hidden_* count
 * spiking nodes not wired straight into the Output node. */
static int step(const snn_model *base, snn_state *st, const float *in, float *out,
                snn_step_info *info)
{
    const nir_model *m = (const nir_model *)base;
    nir_state *s = (nir_state *)st;
    float *f = s->f;
    snn_step_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        const node *d = &m->nodes[k];
        float *y = f + d->out_off;
        const float *x = s->scratch;
        uint32_t n = d->n_out;
        if (k == m->input) {
            x = in;
        } else {
            memset(s->scratch, 0, d->n_in * sizeof *s->scratch);
            for (uint32_t j = 0; j < d->in_count; j++) {
                const float *src = f + m->nodes[m->in_src[d->in_first + j]].out_off;
                for (uint32_t i = 0; i < d->n_in; i++)
                    s->scratch[i] += src[i];
            }
        }
        float *v = d->v_off != NONE ? f + d->v_off : NULL;
        float *cur = d->i_off != NONE ? f + d->i_off : NULL;
        switch (d->op) {
        case OP_INPUT:
        case OP_OUTPUT:
        case OP_FLATTEN:
            memmove(y, x, n * sizeof *y);
            break;
        case OP_AFFINE:
        case OP_LINEAR:
            if (d->b)
                memcpy(y, d->b, n * sizeof *y);
            else
                memset(y, 0, n * sizeof *y);
            info->dense_ops += (uint64_t)d->n_in * n;
            for (uint32_t i = 0; i < d->n_in; i++) {
                float xi = x[i];
                if (xi == 0.0f)
                    continue;
                const float *col = d->wt + (size_t)i * n;
                if (xi == 1.0f) {
                    for (uint32_t o = 0; o < n; o++)
                        y[o] += col[o];
                    info->eff_acs += n;
                } else {
                    for (uint32_t o = 0; o < n; o++)
                        y[o] += col[o] * xi;
                    info->eff_macs += n;
                }
            }
            break;
        case OP_CONV:
            conv_step(d, x, y, info);
            break;
        case OP_SUMPOOL:
        case OP_AVGPOOL:
            pool_step(d, x, y);
            break;
        case OP_DELAY: {
            /* the ring's slot head gets x_t; y_t[i] = x_{t - delay[i]} */
            float *ring = f + d->ring_off, *head = ring + (size_t)d->ring_len * n;
            uint32_t h = (uint32_t)*head;
            memcpy(ring + (size_t)h * n, x, n * sizeof *x);
            for (uint32_t i = 0; i < n; i++)
                y[i] = ring[(size_t)((h + d->ring_len - (uint32_t)d->s[i]) % d->ring_len) * n + i];
            *head = (float)((h + 1) % d->ring_len);
            break;
        }
        case OP_SCALE:
            for (uint32_t i = 0; i < n; i++)
                y[i] = d->s[i] * x[i];
            break;
        case OP_THRESHOLD:
            for (uint32_t i = 0; i < n; i++)
                y[i] = x[i] > d->s[i] ? 1.0f : 0.0f;
            break;
        case OP_I:
        case OP_IF:
            for (uint32_t i = 0; i < n; i++)
                v[i] += d->r[i] * x[i];
            break;
        case OP_LI:
        case OP_LIF:
            for (uint32_t i = 0; i < n; i++)
                v[i] += d->a_mem[i] * (d->v_leak[i] - v[i] + d->r[i] * x[i]);
            break;
        case OP_CUBALI:
        case OP_CUBALIF:
            for (uint32_t i = 0; i < n; i++) {
                float i_prev = cur[i];
                cur[i] = i_prev + d->a_syn[i] * (d->w_in[i] * x[i] - i_prev);
                float drive = m->cuba == SNN_NIR_CUBA_PREVIOUS ? i_prev : cur[i];
                v[i] += d->a_mem[i] * (d->v_leak[i] - v[i] + d->r[i] * drive);
            }
            break;
        }
        if (d->op == OP_IF || d->op == OP_LIF || d->op == OP_CUBALIF) {
            uint32_t sp = fire(m, d, v, y);
            if (d->hidden) {
                info->hidden_spikes += sp;
                info->hidden_neurons += n;
            }
        } else if (d->op == OP_THRESHOLD && d->hidden) {
            for (uint32_t i = 0; i < n; i++)
                info->hidden_spikes += y[i] != 0.0f;
            info->hidden_neurons += n;
        } else if (v) {
            memcpy(y, v, n * sizeof *y);
        }
    }
    memcpy(out, f + m->nodes[m->output].out_off, m->base.n_out * sizeof *out);
    info->has_output = 1;
    return 0;
}

/* ---- introspection ---------------------------------------------------- */

/* ops->describe: NIR version, integration dt, reset, CubaLIF order, the
 * flattened nodes in execution order and the delayed (cycle) edges. */
static int describe(const snn_model *base, json_t *obj)
{
    const nir_model *m = (const nir_model *)base;
    json_t *nodes = json_array(), *delayed = json_array();
    if (!nodes || !delayed) {
        json_decref(nodes);
        json_decref(delayed);
        return -SNN_ENOMEM;
    }
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        const node *d = &m->nodes[k];
        json_t *o = json_pack("{s:s, s:s, s:I, s:I}", "name", d->name, "type", d->type, "in",
                              (json_int_t)d->n_in, "out", (json_int_t)d->n_out);
        if (o && d->has_dims)
            json_object_set_new(o, "shape", json_pack("[I, I, I]", (json_int_t)d->dims[0],
                                                      (json_int_t)d->dims[1], (json_int_t)d->dims[2]));
        json_array_append_new(nodes, o);
    }
    for (uint32_t e = 0; e < m->n_edges; e++)
        if (m->edges[e].delayed)
            json_array_append_new(delayed, json_pack("[s, s]", m->nodes[m->edges[e].src].name,
                                                     m->nodes[m->edges[e].dst].name));
    json_object_set_new(obj, "nir_version", json_string(m->version));
    json_object_set_new(obj, "dt_integration", json_real(m->dt_int));
    json_object_set_new(obj, "reset", json_string(m->reset == SNN_NIR_RESET_SUBTRACT ? "subtract" : "zero"));
    json_object_set_new(obj, "cuba", json_string(m->cuba == SNN_NIR_CUBA_PREVIOUS ? "previous" : "updated"));
    json_object_set_new(obj, "nodes", nodes);
    json_object_set_new(obj, "delayed_edges", delayed);
    return 0;
}

/* Contract in nir.h. */
int snn_nir_probe(const snn_model *base, const snn_state *st, const char *name, const char *var,
                  const float **vals, uint32_t *n)
{
    const nir_model *m = (const nir_model *)base;
    const nir_state *s = (const nir_state *)st;
    if (!base || base->ops != &nir_ops)
        return -SNN_EINVAL;
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        const node *d = &m->nodes[k];
        if (strcmp(d->name, name))
            continue;
        uint32_t off = !strcmp(var, "out") ? d->out_off : !strcmp(var, "v") ? d->v_off
                     : !strcmp(var, "i") ? d->i_off : NONE;
        if (off == NONE)
            return -SNN_ENOENT;
        *vals = s->f + off;
        *n = d->n_out;
        return 0;
    }
    return -SNN_ENOENT;
}

/* Contracts in nir.h. */
uint32_t snn_nir_node_count(const snn_model *base)
{
    return base && base->ops == &nir_ops ? ((const nir_model *)base)->n_nodes : 0;
}

const char *snn_nir_node_name(const snn_model *base, uint32_t i)
{
    if (i >= snn_nir_node_count(base))
        return NULL;
    return ((const nir_model *)base)->nodes[i].name;
}

uint32_t snn_nir_delayed_edge_count(const snn_model *base)
{
    return base && base->ops == &nir_ops ? ((const nir_model *)base)->n_delayed : 0;
}

static const snn_model_ops nir_ops = {
    .kind = "nir",
    .free = model_free,
    .state_new = state_new,
    .state_free = state_free,
    .state_reset = state_reset,
    .step = step,
    .finish = NULL,
    .describe = describe,
};
