/*
 * onnx.c -- ONNX file -> validated static graph -> allocation-free runs.
 *
 * Loading goes in four passes: decode the protobuf (protobuf-c, onnx.pb-c.h
 * generated at build time from onnx.proto), convert initializers to float or
 * int64 arrays, check every node and infer its output shape, then plan the
 * work buffer (reshape-like nodes and last-use elementwise nodes share their
 * input's memory; other tensors get a block that is reused once the tensor is
 * dead).
 */
#include "onnx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#define MAX_IN 8
#define ALIGN 64
#define NEVER 0x7fffffff

enum { DT_F32 = 1, DT_I32 = 6, DT_I64 = 7 };
enum { V_CONST, V_INPUT, V_TEMP };

typedef enum op {
    OP_CONV, OP_MAXPOOL, OP_REDUCEMAX, OP_MATMUL, OP_BINARY, OP_UNARY,
    OP_TRANSPOSE, OP_RESHAPE, OP_SLICE, OP_CONCAT,
} op_t;

typedef struct oval {
    char *name;
    int dtype;
    int rank;
    int64_t d[SNN_ONNX_MAX_RANK];
    int64_t n;
    int kind;
    void *cdata;    /* V_CONST: owned data */
    size_t off;     /* V_TEMP: byte offset in the work buffer (of its root) */
    int alias;      /* -1, or the value whose storage this one shares */
    int last;       /* index of the last node reading it (NEVER: graph output) */
} oval;

typedef struct onode {
    op_t op;
    const char *opname; /* ONNX op_type (static string) */
    uint64_t flops;     /* this node's share of snn_onnx_flops */
    int in[MAX_IN];
    int nin;
    int out;
    snn_conv2d conv;
    int has_bias;
    int relu;        /* a following Relu fused into this Conv */
    float *wino;     /* Winograd-transformed weights (owned) or NULL */
    int fuse_with;   /* > 0: the Winograd Conv that alone reads this direct Conv's output:
                      * both run together in strips of rows (run_stem_pair) */
    int64_t pool[4]; /* kh, kw, sh, sw */
    int64_t perm[SNN_ONNX_MAX_RANK];
    int reduce[SNN_ONNX_MAX_RANK];
    int64_t start[SNN_ONNX_MAX_RANK], step[SNN_ONNX_MAX_RANK];
    int axis;
    snn_binop bop;
    snn_unop uop;
} onode;

struct snn_onnx_graph {
    const snn_allocator *a;
    oval *v;
    size_t nv, capv;
    onode *nodes;
    size_t nn;
    int input, output;
    size_t arena;   /* bytes of tensors */
    size_t scratch; /* floats of convolution scratch */
    uint64_t flops, n_params, footprint;
    int fast_conv;  /* use Winograd where nodes have transformed weights */
};

/* ---- small helpers ---------------------------------------------------- */

static char *xstrdup(const snn_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = a->malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static int find_value(const snn_onnx_graph *g, const char *name)
{
    for (size_t i = 0; i < g->nv; i++)
        if (strcmp(g->v[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int add_value(snn_onnx_graph *g, const char *name)
{
    if (g->nv == g->capv) {
        size_t cap = g->capv ? 2 * g->capv : 64;
        oval *nv = g->a->realloc(g->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        g->v = nv;
        g->capv = cap;
    }
    oval *v = &g->v[g->nv];
    memset(v, 0, sizeof *v);
    v->alias = -1;
    v->last = -1;
    v->name = xstrdup(g->a, name);
    if (!v->name)
        return -1;
    return (int)g->nv++;
}

/* Largest tensor (elements) and dimension a graph may declare: every shape
 * that passes numel() keeps later dimension arithmetic far from overflow. */
#define MAX_NUMEL ((int64_t)1 << 30)

/* Elements of shape d[0..r), or -1 if a dimension is negative or larger than
 * MAX_NUMEL, or the product is larger than MAX_NUMEL. */
static int64_t numel(const int64_t *d, int r)
{
    int64_t n = 1;
    for (int i = 0; i < r; i++) {
        if (d[i] < 0 || d[i] > MAX_NUMEL)
            return -1;
        n *= d[i];
        if (n > MAX_NUMEL)
            return -1;
    }
    return n;
}

static size_t esize(int dt) { return dt == DT_I64 ? 8 : 4; }

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void shape_str(const oval *v, char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < v->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)v->d[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* ---- attributes -------------------------------------------------------- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *nd, const char *name)
{
    for (size_t i = 0; i < nd->n_attribute; i++)
        if (nd->attribute[i]->name && strcmp(nd->attribute[i]->name, name) == 0)
            return nd->attribute[i];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *nd, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *at = attr(nd, name);
    return at && at->has_i ? at->i : dflt;
}

/* Copies up to max ints of attribute name into out; returns the count, 0 when
 * absent, -1 when longer than max. */
static int attr_ints(const Onnx__NodeProto *nd, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *at = attr(nd, name);
    if (!at)
        return 0;
    if (at->n_ints > (size_t)max)
        return -1;
    for (size_t i = 0; i < at->n_ints; i++)
        out[i] = at->ints[i];
    return (int)at->n_ints;
}

static const char *attr_s(const Onnx__NodeProto *nd, const char *name, char *buf, size_t n)
{
    const Onnx__AttributeProto *at = attr(nd, name);
    if (!at || !at->has_s)
        return NULL;
    size_t k = at->s.len < n - 1 ? at->s.len : n - 1;
    memcpy(buf, at->s.data, k);
    buf[k] = 0;
    return buf;
}

/* ---- initializers ------------------------------------------------------ */

static int load_initializer(snn_onnx_graph *g, const Onnx__TensorProto *t,
                            const char *label, snn_err *err)
{
    const char *name = t->name ? t->name : "";
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return snn_err_set(err, SNN_ENOTSUP, "%s: initializer '%s': external data is not supported",
                           label, name);
    if (t->n_dims > SNN_ONNX_MAX_RANK)
        return snn_err_set(err, SNN_ENOTSUP, "%s: initializer '%s': rank %zu > %d", label, name,
                           t->n_dims, SNN_ONNX_MAX_RANK);
    int vi = add_value(g, name);
    if (vi < 0)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
    oval *v = &g->v[vi];
    v->kind = V_CONST;
    v->rank = (int)t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return snn_err_set(err, SNN_EFORMAT, "%s: initializer '%s': negative dim %lld", label,
                               name, (long long)t->dims[i]);
        v->d[i] = t->dims[i];
    }
    v->n = numel(v->d, v->rank);
    if (v->n < 0)
        return snn_err_set(err, SNN_ESHAPE, "%s: initializer '%s': more than %lld elements", label, name,
                           (long long)MAX_NUMEL);
    int dt = t->data_type;
    /* The data's size is checked before anything is allocated for it. */
    if (dt == DT_F32) {
        v->dtype = DT_F32;
        if (t->has_raw_data && t->raw_data.len != (size_t)v->n * 4)
            return snn_err_set(err, SNN_EFORMAT,
                               "%s: initializer '%s': raw_data has %zu bytes, shape needs %lld",
                               label, name, t->raw_data.len, (long long)v->n * 4);
        if (!t->has_raw_data && t->n_float_data != (size_t)v->n)
            return snn_err_set(err, SNN_EFORMAT,
                               "%s: initializer '%s': float_data has %zu values, shape needs %lld",
                               label, name, t->n_float_data, (long long)v->n);
        v->cdata = g->a->malloc((size_t)v->n * 4 + 1);
        if (!v->cdata)
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
        if (v->n == 0) /* the data pointers may be NULL */
            ;
        else if (t->has_raw_data)
            memcpy(v->cdata, t->raw_data.data, (size_t)v->n * 4); /* little-endian host */
        else
            memcpy(v->cdata, t->float_data, (size_t)v->n * 4);
        g->n_params += (uint64_t)v->n;
        g->footprint += (uint64_t)v->n * 4;
    } else if (dt == DT_I64 || dt == DT_I32) {
        v->dtype = DT_I64;
        size_t es = dt == DT_I64 ? 8 : 4;
        if (t->has_raw_data && t->raw_data.len != (size_t)v->n * es)
            return snn_err_set(err, SNN_EFORMAT,
                               "%s: initializer '%s': raw_data has %zu bytes, shape needs %lld",
                               label, name, t->raw_data.len, (long long)v->n * (long long)es);
        if (!t->has_raw_data && dt == DT_I64 && t->n_int64_data != (size_t)v->n)
            return snn_err_set(err, SNN_EFORMAT,
                               "%s: initializer '%s': int64_data has %zu values, shape needs %lld",
                               label, name, t->n_int64_data, (long long)v->n);
        if (!t->has_raw_data && dt == DT_I32 && t->n_int32_data != (size_t)v->n)
            return snn_err_set(err, SNN_EFORMAT,
                               "%s: initializer '%s': int32_data has %zu values, shape needs %lld",
                               label, name, t->n_int32_data, (long long)v->n);
        int64_t *p = g->a->malloc((size_t)v->n * 8 + 1);
        v->cdata = p;
        if (!p)
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
        if (t->has_raw_data) {
            for (int64_t i = 0; i < v->n; i++) {
                if (es == 8) {
                    memcpy(&p[i], t->raw_data.data + i * 8, 8);
                } else {
                    int32_t x;
                    memcpy(&x, t->raw_data.data + i * 4, 4);
                    p[i] = x;
                }
            }
        } else if (dt == DT_I64 && v->n > 0) {
            memcpy(p, t->int64_data, (size_t)v->n * 8);
        } else if (dt == DT_I32) {
            for (int64_t i = 0; i < v->n; i++)
                p[i] = t->int32_data[i];
        }
        g->footprint += (uint64_t)v->n * es;
    } else {
        return snn_err_set(err, SNN_ENOTSUP, "%s: initializer '%s': unsupported data type %d", label,
                           name, dt);
    }
    return 0;
}

/* ---- node checking and shape inference -------------------------------- */

#define NERR(code, ...) node_err(err, code, label, ni, nd, __VA_ARGS__)

static int node_err(snn_err *err, int code, const char *label, size_t ni,
                    const Onnx__NodeProto *nd, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static int node_err(snn_err *err, int code, const char *label, size_t ni,
                    const Onnx__NodeProto *nd, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return snn_err_set(err, code, "%s: node %zu (%s): %s", label, ni,
                       nd->name && *nd->name ? nd->name : nd->op_type, what);
}

static const int64_t *const_i64(const snn_onnx_graph *g, int vi)
{
    if (vi < 0 || g->v[vi].kind != V_CONST || g->v[vi].dtype != DT_I64)
        return NULL;
    return g->v[vi].cdata;
}

static int norm_axis(int64_t ax, int r)
{
    if (ax < 0)
        ax += r;
    return (ax < 0 || ax >= r) ? -1 : (int)ax;
}

static const struct {
    const char *name;
    op_t op;
    int sub;
} op_table[] = {
    {"Conv", OP_CONV, 0},
    {"MaxPool", OP_MAXPOOL, 0},
    {"ReduceMax", OP_REDUCEMAX, 0},
    {"MatMul", OP_MATMUL, 0},
    {"Add", OP_BINARY, SNN_BIN_ADD},
    {"Sub", OP_BINARY, SNN_BIN_SUB},
    {"Mul", OP_BINARY, SNN_BIN_MUL},
    {"Div", OP_BINARY, SNN_BIN_DIV},
    {"Max", OP_BINARY, SNN_BIN_MAX},
    {"Pow", OP_BINARY, SNN_BIN_POW},
    {"Relu", OP_UNARY, SNN_UN_RELU},
    {"Sqrt", OP_UNARY, SNN_UN_SQRT},
    {"Log", OP_UNARY, SNN_UN_LOG},
    {"Exp", OP_UNARY, SNN_UN_EXP},
    {"Sigmoid", OP_UNARY, SNN_UN_SIGMOID},
    {"Tanh", OP_UNARY, SNN_UN_TANH},
    {"Neg", OP_UNARY, SNN_UN_NEG},
    {"Abs", OP_UNARY, SNN_UN_ABS},
    {"Transpose", OP_TRANSPOSE, 0},
    {"Reshape", OP_RESHAPE, 0},
    {"Flatten", OP_RESHAPE, 1},
    {"Unsqueeze", OP_RESHAPE, 2},
    {"Squeeze", OP_RESHAPE, 3},
    {"Identity", OP_RESHAPE, 4},
    {"Slice", OP_SLICE, 0},
    {"Concat", OP_CONCAT, 0},
};

/* Node ni is a Constant (default domain): defines its output as a constant value, as if it were
 * an initializer of that name, from attribute value (a tensor), value_float(s) or value_int(s)
 * (opset 12). The graph keeps no node for it. Errors as load_initializer's, naming the node;
 * sparse_value and value_string(s) are -SNN_ENOTSUP. */
static int load_constant(snn_onnx_graph *g, size_t ni, const Onnx__NodeProto *nd, const char *label,
                         snn_err *err)
{
    if (nd->n_output != 1 || !nd->output[0][0])
        return NERR(SNN_EFORMAT, "Constant needs one output");
    if (find_value(g, nd->output[0]) >= 0)
        return NERR(SNN_EFORMAT, "output '%s' is defined twice", nd->output[0]);
    if (nd->n_attribute != 1 || !nd->attribute[0]->name)
        return NERR(SNN_EFORMAT, "Constant needs exactly one attribute");
    const Onnx__AttributeProto *at = nd->attribute[0];
    Onnx__TensorProto t;
    int64_t dim;
    if (strcmp(at->name, "value") == 0 && at->t) {
        t = *at->t;
    } else {
        onnx__tensor_proto__init(&t);
        t.has_data_type = 1;
        t.dims = &dim;
        if (strcmp(at->name, "value_float") == 0) {
            t.data_type = DT_F32;
            t.n_float_data = 1;
            t.float_data = (float *)&at->f;
        } else if (strcmp(at->name, "value_floats") == 0) {
            t.data_type = DT_F32;
            t.n_dims = 1;
            dim = (int64_t)at->n_floats;
            t.n_float_data = at->n_floats;
            t.float_data = at->floats;
        } else if (strcmp(at->name, "value_int") == 0) {
            t.data_type = DT_I64;
            t.n_int64_data = 1;
            t.int64_data = (int64_t *)&at->i;
        } else if (strcmp(at->name, "value_ints") == 0) {
            t.data_type = DT_I64;
            t.n_dims = 1;
            dim = (int64_t)at->n_ints;
            t.n_int64_data = at->n_ints;
            t.int64_data = at->ints;
        } else {
            return NERR(SNN_ENOTSUP, "Constant attribute '%s' is not supported", at->name);
        }
    }
    t.name = nd->output[0];
    return load_initializer(g, &t, label, err);
}

/* Checks node ni of the file (ni names it in errors), fills g->nodes[slot] and defines its output
 * value. */
static int check_node(snn_onnx_graph *g, size_t slot, size_t ni, const Onnx__NodeProto *nd,
                      const char *label, snn_err *err)
{
    onode *n = &g->nodes[slot];
    const char *opn = nd->op_type ? nd->op_type : "";
    int sub = 0, found = 0;
    memset(n, 0, sizeof *n);
    if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx") != 0)
        return NERR(SNN_ENOTSUP, "unsupported operator domain '%s'", nd->domain);
    for (size_t i = 0; i < sizeof op_table / sizeof op_table[0]; i++) {
        if (strcmp(opn, op_table[i].name) == 0) {
            n->op = op_table[i].op;
            n->opname = op_table[i].name;
            sub = op_table[i].sub;
            found = 1;
        }
    }
    if (!found)
        return NERR(SNN_ENOTSUP, "unsupported operator '%s'", opn);
    if (nd->n_output != 1)
        return NERR(SNN_ENOTSUP, "%zu outputs (only 1 is supported)", nd->n_output);
    if (nd->n_input == 0 || nd->n_input > MAX_IN)
        return NERR(SNN_EFORMAT, "%zu inputs", nd->n_input);
    n->nin = 0;
    for (size_t i = 0; i < nd->n_input; i++) {
        if (!nd->input[i][0]) { /* omitted optional input */
            n->in[n->nin++] = -1;
            continue;
        }
        int vi = find_value(g, nd->input[i]);
        if (vi < 0)
            return NERR(SNN_EFORMAT, "input '%s' is not defined before use", nd->input[i]);
        n->in[n->nin++] = vi;
    }
    if (n->in[0] < 0)
        return NERR(SNN_EFORMAT, "first input is empty");
    if (find_value(g, nd->output[0]) >= 0)
        return NERR(SNN_EFORMAT, "output '%s' is defined twice", nd->output[0]);
    int oi = add_value(g, nd->output[0]);
    if (oi < 0)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
    n->out = oi;
    oval *o = &g->v[oi];
    const oval *x = &g->v[n->in[0]];
    o->kind = V_TEMP;
    o->dtype = DT_F32;
    char sbuf[96], buf[32];

    /* data inputs must be float (int64 constants are parameters) */
    int ndata = n->op == OP_BINARY || n->op == OP_MATMUL || n->op == OP_CONCAT ? n->nin
                : n->op == OP_CONV ? n->nin : 1;
    for (int i = 0; i < ndata; i++) {
        if (n->in[i] < 0 && n->op != OP_CONV) /* Conv's bias is optional; the others are not */
            return NERR(SNN_EFORMAT, "input %d is empty", i);
        if (n->in[i] >= 0 && g->v[n->in[i]].dtype != DT_F32)
            return NERR(SNN_ENOTSUP, "input '%s' is not float32", g->v[n->in[i]].name);
    }

    switch (n->op) {
    case OP_CONV: {
        if (n->nin < 2 || n->in[1] < 0)
            return NERR(SNN_EFORMAT, "Conv needs inputs X and W");
        const oval *w = &g->v[n->in[1]];
        if (w->kind != V_CONST)
            return NERR(SNN_ENOTSUP, "weights '%s' must be an initializer", w->name);
        if (x->rank != 3 && x->rank != 4)
            return NERR(SNN_ENOTSUP, "Conv input rank %d (only 1-D and 2-D)", x->rank);
        if (w->rank != x->rank)
            return NERR(SNN_ESHAPE, "weight rank %d != input rank %d", w->rank, x->rank);
        if (attr_i(nd, "group", 1) != 1)
            return NERR(SNN_ENOTSUP, "attribute group=%lld (only 1)",
                        (long long)attr_i(nd, "group", 1));
        int sp = x->rank - 2;
        int64_t st[2] = {1, 1}, dl[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
        int64_t kk[2];
        if (attr_ints(nd, "strides", st, sp) < 0 || attr_ints(nd, "dilations", dl, sp) < 0 ||
            attr_ints(nd, "pads", pads, 2 * sp) < 0 || attr_ints(nd, "kernel_shape", kk, sp) < 0)
            return NERR(SNN_EFORMAT, "attribute longer than %d spatial dims", sp);
        int nk = attr_ints(nd, "kernel_shape", kk, sp);
        for (int i = 0; i < nk; i++)
            if (kk[i] != w->d[2 + i])
                return NERR(SNN_ESHAPE, "kernel_shape[%d]=%lld but weights have %lld", i,
                            (long long)kk[i], (long long)w->d[2 + i]);
        snn_conv2d *c = &n->conv;
        c->C = x->d[1];
        c->Co = w->d[0];
        if (w->d[1] != c->C)
            return NERR(SNN_ESHAPE, "weights '%s' have %lld input channels, input has %lld",
                        w->name, (long long)w->d[1], (long long)c->C);
        if (sp == 1) {
            c->H = 1; c->W = x->d[2]; c->KH = 1; c->KW = w->d[2];
            c->sh = 1; c->sw = st[0]; c->dh = 1; c->dw = dl[0];
            c->pt = 0; c->pb = 0; c->pl = pads[0]; c->pr = pads[1];
        } else {
            c->H = x->d[2]; c->W = x->d[3]; c->KH = w->d[2]; c->KW = w->d[3];
            c->sh = st[0]; c->sw = st[1]; c->dh = dl[0]; c->dw = dl[1];
            c->pt = pads[0]; c->pl = pads[1]; c->pb = pads[2]; c->pr = pads[3];
        }
        const char *ap = attr_s(nd, "auto_pad", buf, sizeof buf);
        if (ap && strcmp(ap, "VALID") == 0) {
            c->pt = c->pl = c->pb = c->pr = 0;
        } else if (ap && (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0)) {
            int64_t oh = (c->H + c->sh - 1) / c->sh, ow = (c->W + c->sw - 1) / c->sw;
            int64_t ph = (oh - 1) * c->sh + c->dh * (c->KH - 1) + 1 - c->H;
            int64_t pw = (ow - 1) * c->sw + c->dw * (c->KW - 1) + 1 - c->W;
            ph = ph < 0 ? 0 : ph;
            pw = pw < 0 ? 0 : pw;
            int upper = ap[5] == 'U';
            c->pt = upper ? ph / 2 : ph - ph / 2;
            c->pb = ph - c->pt;
            c->pl = upper ? pw / 2 : pw - pw / 2;
            c->pr = pw - c->pl;
        } else if (ap && strcmp(ap, "NOTSET") != 0) {
            return NERR(SNN_ENOTSUP, "auto_pad '%s'", ap);
        }
        if (snn_conv2d_init(c) != 0)
            return NERR(SNN_ESHAPE, "impossible Conv geometry");
        if (n->nin >= 3 && n->in[2] >= 0) {
            const oval *b = &g->v[n->in[2]];
            if (b->kind != V_CONST || b->n != c->Co)
                return NERR(SNN_ESHAPE, "bias '%s' must be an initializer of %lld values", b->name,
                            (long long)c->Co);
            n->has_bias = 1;
        }
        o->rank = x->rank;
        o->d[0] = x->d[0];
        o->d[1] = c->Co;
        if (sp == 1) {
            o->d[2] = c->OW;
        } else {
            o->d[2] = c->OH;
            o->d[3] = c->OW;
        }
        size_t s = snn_conv2d_scratch(c);
        if (s > g->scratch)
            g->scratch = s;
        /* Winograd pays off with several input channels (not for the 1-channel stem) */
        if (snn_winograd_ok(c) && c->C >= 8) {
            n->wino = g->a->malloc(snn_winograd_weights_size(c) * sizeof(float));
            if (!n->wino)
                return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
            snn_winograd_weights(c, w->cdata, n->wino);
            s = snn_winograd_scratch(c);
            if (s > g->scratch)
                g->scratch = s;
        }
        g->flops += (uint64_t)(2 * x->d[0] * c->Co * c->C * c->KH * c->KW * c->OH * c->OW);
        break;
    }
    case OP_MAXPOOL: {
        if (x->rank != 4)
            return NERR(SNN_ENOTSUP, "MaxPool input rank %d (only 2-D)", x->rank);
        int64_t ks[2] = {0, 0}, st[2] = {1, 1}, pads[4] = {0, 0, 0, 0}, dl[2] = {1, 1};
        if (attr_ints(nd, "kernel_shape", ks, 2) != 2)
            return NERR(SNN_EFORMAT, "MaxPool needs a 2-D kernel_shape");
        if (attr_ints(nd, "strides", st, 2) < 0 || attr_ints(nd, "pads", pads, 4) < 0 ||
            attr_ints(nd, "dilations", dl, 2) < 0)
            return NERR(SNN_EFORMAT, "bad MaxPool attribute");
        const char *ap = attr_s(nd, "auto_pad", buf, sizeof buf);
        if ((ap && strcmp(ap, "VALID") != 0 && strcmp(ap, "NOTSET") != 0) || pads[0] || pads[1] ||
            pads[2] || pads[3] || dl[0] != 1 || dl[1] != 1 || attr_i(nd, "ceil_mode", 0) != 0 ||
            attr_i(nd, "storage_order", 0) != 0)
            return NERR(SNN_ENOTSUP, "MaxPool with padding, dilation, ceil_mode or storage_order");
        if (ks[0] <= 0 || ks[1] <= 0 || st[0] <= 0 || st[1] <= 0 || ks[0] > x->d[2] ||
            ks[1] > x->d[3])
            return NERR(SNN_ESHAPE, "MaxPool kernel does not fit the input");
        memcpy(n->pool, (int64_t[4]){ks[0], ks[1], st[0], st[1]}, sizeof n->pool);
        o->rank = 4;
        o->d[0] = x->d[0];
        o->d[1] = x->d[1];
        o->d[2] = (x->d[2] - ks[0]) / st[0] + 1;
        o->d[3] = (x->d[3] - ks[1]) / st[1] + 1;
        break;
    }
    case OP_REDUCEMAX: {
        int64_t ax[SNN_ONNX_MAX_RANK];
        int na = attr_ints(nd, "axes", ax, SNN_ONNX_MAX_RANK);
        if (na == 0 && n->nin == 2 && n->in[1] >= 0) { /* opset 18: axes is an input */
            const int64_t *ai = const_i64(g, n->in[1]);
            if (!ai || g->v[n->in[1]].n > SNN_ONNX_MAX_RANK)
                return NERR(SNN_ENOTSUP, "ReduceMax axes input must be an int64 initializer");
            na = (int)g->v[n->in[1]].n;
            memcpy(ax, ai, (size_t)na * 8);
            if (na == 0 && attr_i(nd, "noop_with_empty_axes", 0))
                return NERR(SNN_ENOTSUP, "ReduceMax with noop_with_empty_axes");
        } else if (na < 0 || n->nin > 1) {
            return NERR(SNN_ENOTSUP, "ReduceMax axes must be an attribute or an int64 initializer");
        }
        int keep = (int)attr_i(nd, "keepdims", 1);
        for (int i = 0; i < x->rank; i++)
            n->reduce[i] = na == 0; /* no axes: reduce all */
        for (int i = 0; i < na; i++) {
            int a = norm_axis(ax[i], x->rank);
            if (a < 0)
                return NERR(SNN_ESHAPE, "axis %lld out of range", (long long)ax[i]);
            n->reduce[a] = 1;
        }
        o->rank = 0;
        for (int i = 0; i < x->rank; i++) {
            if (!n->reduce[i])
                o->d[o->rank++] = x->d[i];
            else if (keep)
                o->d[o->rank++] = 1;
        }
        break;
    }
    case OP_MATMUL: {
        const oval *b = &g->v[n->in[1]];
        if (n->nin != 2 || b->rank != 2 || x->rank < 1)
            return NERR(SNN_ENOTSUP, "MatMul only as [..., K] x [K, N]");
        if (x->d[x->rank - 1] != b->d[0])
            return NERR(SNN_ESHAPE, "MatMul inner dims %lld != %lld",
                        (long long)x->d[x->rank - 1], (long long)b->d[0]);
        o->rank = x->rank;
        memcpy(o->d, x->d, sizeof o->d);
        o->d[o->rank - 1] = b->d[1];
        g->flops += (uint64_t)(2 * numel(x->d, x->rank) * b->d[1]);
        break;
    }
    case OP_BINARY: {
        if (n->nin != 2 || n->in[1] < 0)
            return NERR(SNN_ENOTSUP, "%s needs exactly 2 inputs", opn);
        const oval *b = &g->v[n->in[1]];
        n->bop = (snn_binop)sub;
        if (snn_broadcast_shape(x->d, x->rank, b->d, b->rank, o->d, &o->rank) != 0) {
            char s2[96];
            shape_str(x, sbuf, sizeof sbuf);
            shape_str(b, s2, sizeof s2);
            return NERR(SNN_ESHAPE, "shapes %s and %s do not broadcast", sbuf, s2);
        }
        break;
    }
    case OP_UNARY:
        n->uop = (snn_unop)sub;
        o->rank = x->rank;
        memcpy(o->d, x->d, sizeof o->d);
        break;
    case OP_TRANSPOSE: {
        int np = attr_ints(nd, "perm", n->perm, SNN_ONNX_MAX_RANK);
        if (np == 0) {
            for (int i = 0; i < x->rank; i++)
                n->perm[i] = x->rank - 1 - i;
        } else if (np != x->rank) {
            return NERR(SNN_ESHAPE, "perm has %d entries for rank %d", np, x->rank);
        }
        int seen[SNN_ONNX_MAX_RANK] = {0};
        for (int i = 0; i < x->rank; i++) {
            if (n->perm[i] < 0 || n->perm[i] >= x->rank || seen[n->perm[i]]++)
                return NERR(SNN_EFORMAT, "perm is not a permutation");
            o->d[i] = x->d[n->perm[i]];
        }
        o->rank = x->rank;
        break;
    }
    case OP_RESHAPE: {
        int64_t axes[SNN_ONNX_MAX_RANK];
        int na = 0;
        if (sub == 0) { /* Reshape */
            const int64_t *sh = n->nin == 2 ? const_i64(g, n->in[1]) : NULL;
            if (!sh)
                return NERR(SNN_ENOTSUP, "shape input must be an int64 initializer");
            const oval *s = &g->v[n->in[1]];
            if (s->n > SNN_ONNX_MAX_RANK)
                return NERR(SNN_ENOTSUP, "rank %lld", (long long)s->n);
            o->rank = (int)s->n;
            int infer = -1;
            int64_t known = 1;
            for (int i = 0; i < o->rank; i++) {
                int64_t dv = sh[i];
                if (dv == 0 && !attr_i(nd, "allowzero", 0)) {
                    if (i >= x->rank)
                        return NERR(SNN_ESHAPE, "shape copies dim %d of a rank-%d input", i,
                                    x->rank);
                    dv = x->d[i];
                }
                if (dv == -1) {
                    if (infer >= 0)
                        return NERR(SNN_ESHAPE, "two -1 in shape");
                    infer = i;
                    dv = 1;
                } else if (dv < 0 || dv > MAX_NUMEL) {
                    return NERR(SNN_ESHAPE, "shape entry %lld", (long long)dv);
                }
                o->d[i] = dv;
                known *= dv; /* both <= MAX_NUMEL: no overflow */
                if (known > MAX_NUMEL)
                    return NERR(SNN_ESHAPE, "shape has more than %lld elements", (long long)MAX_NUMEL);
            }
            if (infer >= 0) {
                if (known == 0 || x->n % known)
                    return NERR(SNN_ESHAPE, "cannot infer -1 for %lld elements", (long long)x->n);
                o->d[infer] = x->n / known;
            }
        } else if (sub == 1) { /* Flatten */
            int ax = (int)attr_i(nd, "axis", 1);
            if (ax < 0)
                ax += x->rank;
            if (ax < 0 || ax > x->rank)
                return NERR(SNN_ESHAPE, "axis %d out of range", ax);
            o->rank = 2;
            o->d[0] = numel(x->d, ax);
            o->d[1] = x->n / (o->d[0] ? o->d[0] : 1);
        } else if (sub == 2 || sub == 3) { /* Unsqueeze / Squeeze */
            na = attr_ints(nd, "axes", axes, SNN_ONNX_MAX_RANK);
            if (na < 0)
                return NERR(SNN_ENOTSUP, "too many axes");
            if (na == 0 && n->nin == 2) { /* opset 13: axes is an input */
                const int64_t *ai = const_i64(g, n->in[1]);
                if (!ai || g->v[n->in[1]].n > SNN_ONNX_MAX_RANK)
                    return NERR(SNN_ENOTSUP, "axes input must be an int64 initializer");
                na = (int)g->v[n->in[1]].n;
                memcpy(axes, ai, (size_t)na * 8);
            }
            if (sub == 2) {
                int r = x->rank + na, used[SNN_ONNX_MAX_RANK] = {0};
                if (r > SNN_ONNX_MAX_RANK || na == 0)
                    return NERR(SNN_ESHAPE, "bad Unsqueeze axes");
                for (int i = 0; i < na; i++) {
                    int a = norm_axis(axes[i], r);
                    if (a < 0 || used[a]++)
                        return NERR(SNN_ESHAPE, "bad Unsqueeze axis %lld", (long long)axes[i]);
                }
                for (int i = 0, j = 0; i < r; i++)
                    o->d[i] = used[i] ? 1 : x->d[j++];
                o->rank = r;
            } else {
                int drop[SNN_ONNX_MAX_RANK] = {0};
                for (int i = 0; i < na; i++) {
                    int a = norm_axis(axes[i], x->rank);
                    if (a < 0 || x->d[a] != 1)
                        return NERR(SNN_ESHAPE, "cannot squeeze axis %lld", (long long)axes[i]);
                    drop[a] = 1;
                }
                o->rank = 0;
                for (int i = 0; i < x->rank; i++)
                    if (!(na ? drop[i] : x->d[i] == 1))
                        o->d[o->rank++] = x->d[i];
            }
        } else { /* Identity */
            o->rank = x->rank;
            memcpy(o->d, x->d, sizeof o->d);
        }
        if (numel(o->d, o->rank) != x->n)
            return NERR(SNN_ESHAPE, "reshape changes the element count");
        break;
    }
    case OP_SLICE: {
        if (n->nin < 3)
            return NERR(SNN_ENOTSUP, "Slice needs starts and ends inputs (opset >= 10)");
        const int64_t *st = const_i64(g, n->in[1]), *en = const_i64(g, n->in[2]);
        const int64_t *ax = n->nin > 3 && n->in[3] >= 0 ? const_i64(g, n->in[3]) : NULL;
        const int64_t *sp = n->nin > 4 && n->in[4] >= 0 ? const_i64(g, n->in[4]) : NULL;
        int64_t k = st ? g->v[n->in[1]].n : 0;
        if (!st || !en || g->v[n->in[2]].n != k || (n->nin > 3 && n->in[3] >= 0 && !ax) ||
            (n->nin > 4 && n->in[4] >= 0 && !sp))
            return NERR(SNN_ENOTSUP, "Slice parameters must be int64 initializers of one length");
        if ((ax && g->v[n->in[3]].n != k) || (sp && g->v[n->in[4]].n != k))
            return NERR(SNN_ESHAPE, "Slice parameters differ in length");
        o->rank = x->rank;
        for (int i = 0; i < x->rank; i++) {
            o->d[i] = x->d[i];
            n->start[i] = 0;
            n->step[i] = 1;
        }
        for (int64_t i = 0; i < k; i++) {
            int a = norm_axis(ax ? ax[i] : i, x->rank);
            int64_t s = sp ? sp[i] : 1, dim = x->d[a >= 0 ? a : 0];
            if (a < 0 || s == 0)
                return NERR(SNN_ESHAPE, "bad Slice axis or step");
            int64_t b = st[i], e = en[i];
            if (b < 0)
                b += dim;
            if (e < 0)
                e += dim;
            if (s > 0) {
                b = b < 0 ? 0 : b > dim ? dim : b;
                e = e < 0 ? 0 : e > dim ? dim : e;
                o->d[a] = e > b ? (e - b + s - 1) / s : 0;
            } else {
                b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
                e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
                o->d[a] = b > e ? (b - e - s - 1) / -s : 0;
            }
            n->start[a] = b;
            n->step[a] = s;
        }
        break;
    }
    case OP_CONCAT: {
        int ax = norm_axis(attr_i(nd, "axis", 0), x->rank);
        if (ax < 0)
            return NERR(SNN_ESHAPE, "Concat axis out of range");
        n->axis = ax;
        o->rank = x->rank;
        memcpy(o->d, x->d, sizeof o->d);
        o->d[ax] = 0;
        for (int i = 0; i < n->nin; i++) {
            const oval *y = &g->v[n->in[i]];
            if (y->rank != x->rank)
                return NERR(SNN_ESHAPE, "Concat inputs differ in rank");
            for (int j = 0; j < x->rank; j++)
                if (j != ax && y->d[j] != x->d[j])
                    return NERR(SNN_ESHAPE, "Concat inputs differ off the axis");
            o->d[ax] += y->d[ax];
        }
        break;
    }
    }
    o->n = numel(o->d, o->rank);
    if (o->n < 0)
        return NERR(SNN_ESHAPE, "output has a dimension or more than %lld elements", (long long)MAX_NUMEL);
    if (n->op == OP_BINARY || n->op == OP_UNARY)
        g->flops += (uint64_t)o->n;
    return 0;
}

/* ---- Conv + Relu fusion ------------------------------------------------- */

/* A Relu whose input is a Conv output read by nothing else becomes part of
 * that Conv (applied while the output block is in cache); the Relu node turns
 * into an Identity that shares the Conv's output. */
static void fuse_relu(snn_onnx_graph *g)
{
    for (size_t k = 0; k < g->nn; k++) {
        onode *r = &g->nodes[k];
        if (r->op != OP_UNARY || r->uop != SNN_UN_RELU)
            continue;
        int src = r->in[0];
        onode *cv = NULL;
        int uses = 0;
        for (size_t j = 0; j < g->nn; j++) {
            if (g->nodes[j].out == src && g->nodes[j].op == OP_CONV)
                cv = &g->nodes[j];
            for (int i = 0; i < g->nodes[j].nin; i++)
                uses += g->nodes[j].in[i] == src;
        }
        if (!cv || uses != 1 || src == g->output)
            continue;
        cv->relu = 1;
        r->op = OP_RESHAPE; /* identity */
    }
}

/* The root value whose storage v shares (itself when it has none). */
static int root_of(const snn_onnx_graph *g, int v);

/* A 1-channel 3x3 "same" Conv (direct kernel, no Winograd) whose output, through fused-Relu
 * identities only, is read by exactly one node, a 3x3 "same" Winograd Conv: marks the pair. Run
 * together in strips, the wide map between them (DNSMOS: 128 x 900 x 161 floats, 74 MB) never
 * leaves the cache as a whole. */
static void fuse_stem(snn_onnx_graph *g)
{
    for (size_t k = 0; k < g->nn; k++) {
        onode *a = &g->nodes[k];
        const snn_conv2d *ca = &a->conv;
        if (a->op != OP_CONV || a->wino || ca->C != 1 || ca->KH != 3 || ca->KW != 3 || ca->sh != 1 ||
            ca->sw != 1 || ca->dh != 1 || ca->dw != 1 || ca->pt != 1 || ca->pb != 1 || ca->OH != ca->H ||
            g->v[a->in[0]].d[0] != 1)
            continue;
        int root = root_of(g, a->out), reader = -1, readers = 0;
        for (size_t j = 0; j < g->nn; j++)
            for (int i = 0; i < g->nodes[j].nin; i++) {
                int v = g->nodes[j].in[i];
                if (v < 0 || root_of(g, v) != root)
                    continue;
                if (g->nodes[j].op == OP_RESHAPE && g->nodes[j].nin == 1 && g->v[g->nodes[j].out].alias >= 0)
                    continue; /* an identity (fused Relu): its output is the same storage */
                readers++;
                reader = (int)j;
            }
        if (readers != 1 || root_of(g, g->output) == root)
            continue;
        onode *b = &g->nodes[reader];
        const snn_conv2d *cb = &b->conv;
        if (b->op != OP_CONV || !b->wino || root_of(g, b->in[0]) != root || cb->pt != 1 || cb->pb != 1 ||
            cb->OH != cb->H || cb->H != ca->OH || cb->W != ca->OW || cb->C != ca->Co)
            continue;
        a->fuse_with = reader;
    }
}

/* ---- memory planning --------------------------------------------------- */

typedef struct block {
    size_t off, size;
    int used;
} block;

typedef struct planner {
    const snn_allocator *a;
    block *b;
    size_t n, cap, top;
} planner;

static int plan_alloc(planner *p, size_t size, size_t *off)
{
    size = (size + ALIGN - 1) / ALIGN * ALIGN;
    size_t best = (size_t)-1;
    for (size_t i = 0; i < p->n; i++)
        if (!p->b[i].used && p->b[i].size >= size &&
            (best == (size_t)-1 || p->b[i].size < p->b[best].size))
            best = i;
    if (best == (size_t)-1) {
        /* grow the last block if it is free, else append */
        if (p->n && !p->b[p->n - 1].used) {
            block *l = &p->b[p->n - 1];
            p->top += size - l->size;
            l->size = size;
            best = p->n - 1;
        } else {
            if (p->n + 2 > p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 32;
                block *nb = p->a->realloc(p->b, cap * sizeof *nb);
                if (!nb)
                    return -1;
                p->b = nb;
                p->cap = cap;
            }
            p->b[p->n] = (block){p->top, size, 0};
            p->top += size;
            best = p->n++;
        }
    }
    block *bl = &p->b[best];
    if (bl->size > size) { /* split */
        if (p->n + 1 > p->cap) {
            size_t cap = 2 * p->cap;
            block *nb = p->a->realloc(p->b, cap * sizeof *nb);
            if (!nb)
                return -1;
            p->b = nb;
            p->cap = cap;
            bl = &p->b[best];
        }
        memmove(&p->b[best + 2], &p->b[best + 1], (p->n - best - 1) * sizeof *p->b);
        p->b[best + 1] = (block){bl->off + size, bl->size - size, 0};
        bl->size = size;
        p->n++;
    }
    bl->used = 1;
    *off = bl->off;
    return 0;
}

static void plan_free(planner *p, size_t off)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->b[i].off != off || !p->b[i].used)
            continue;
        p->b[i].used = 0;
        if (i + 1 < p->n && !p->b[i + 1].used) { /* merge with next */
            p->b[i].size += p->b[i + 1].size;
            memmove(&p->b[i + 1], &p->b[i + 2], (p->n - i - 2) * sizeof *p->b);
            p->n--;
        }
        if (i > 0 && !p->b[i - 1].used) { /* merge with previous */
            p->b[i - 1].size += p->b[i].size;
            memmove(&p->b[i], &p->b[i + 1], (p->n - i - 1) * sizeof *p->b);
            p->n--;
        }
        return;
    }
}

static int root_of(const snn_onnx_graph *g, int v)
{
    while (g->v[v].alias >= 0)
        v = g->v[v].alias;
    return v;
}

static int plan_memory(snn_onnx_graph *g)
{
    int *glast = g->a->calloc(g->nv, sizeof *glast);
    if (!glast)
        return -1;
    for (size_t k = 0; k < g->nn; k++)
        for (int i = 0; i < g->nodes[k].nin; i++)
            if (g->nodes[k].in[i] >= 0)
                g->v[g->nodes[k].in[i]].last = (int)k;
    g->v[g->output].last = NEVER;
    for (size_t i = 0; i < g->nv; i++)
        glast[i] = g->v[i].last;

    /* aliases: reshape-like nodes always; elementwise nodes in place when the
     * input's storage is dead afterwards */
    for (size_t k = 0; k < g->nn; k++) {
        onode *n = &g->nodes[k];
        oval *o = &g->v[n->out];
        int cand = -1;
        if (n->op == OP_RESHAPE) {
            cand = n->in[0];
        } else if (n->op == OP_UNARY || n->op == OP_BINARY) {
            for (int i = 0; i < (n->op == OP_BINARY ? 2 : 1) && cand < 0; i++) {
                int r = root_of(g, n->in[i]);
                if (g->v[r].kind == V_TEMP && g->v[n->in[i]].n == o->n &&
                    glast[r] == (int)k && n->out != g->output)
                    cand = n->in[i];
            }
        }
        if (cand >= 0 && (n->op != OP_RESHAPE || g->v[root_of(g, cand)].kind != V_CONST)) {
            int r = root_of(g, cand);
            if (n->op == OP_RESHAPE && g->v[r].kind == V_INPUT && n->out == g->output)
                continue; /* the output needs its own storage */
            o->alias = r;
            if (glast[r] < glast[n->out])
                glast[r] = glast[n->out];
        }
    }

    planner p = {g->a, NULL, 0, 0, 0};
    int rc = 0;
    for (size_t k = 0; k < g->nn && rc == 0; k++) {
        oval *o = &g->v[g->nodes[k].out];
        if (o->alias < 0)
            rc = plan_alloc(&p, (size_t)o->n * esize(o->dtype) + 1, &o->off);
        for (int i = 0; i < g->nodes[k].nin; i++) {
            int vi = g->nodes[k].in[i];
            if (vi < 0)
                continue;
            int r = root_of(g, vi);
            if (g->v[r].kind == V_TEMP && glast[r] == (int)k) {
                plan_free(&p, g->v[r].off);
                glast[r] = -2; /* freed */
            }
        }
    }
    g->arena = p.top;
    g->a->free(p.b);
    g->a->free(glast);
    return rc;
}

/* ---- loading ----------------------------------------------------------- */

static int build(snn_onnx_graph *g, const Onnx__ModelProto *m, const char *label, snn_err *err)
{
    const Onnx__GraphProto *gp = m->graph;
    if (!gp)
        return snn_err_set(err, SNN_EFORMAT, "%s: model has no graph", label);
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = m->opset_import[i];
        /* opsets 14..21 change none of the supported operators on float tensors but for
         * ReduceMax's axes becoming an input (18) */
        if ((!os->domain || !*os->domain || strcmp(os->domain, "ai.onnx") == 0) && os->has_version &&
            (os->version < 7 || os->version > 21))
            return snn_err_set(err, SNN_ENOTSUP, "%s: opset_import: opset %lld (supported 7..21)",
                               label, (long long)os->version);
    }
    for (size_t i = 0; i < gp->n_initializer; i++) {
        int rc = load_initializer(g, gp->initializer[i], label, err);
        if (rc)
            return rc;
    }
    /* the one real input: a graph input that is not an initializer */
    g->input = -1;
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || find_value(g, vi->name) >= 0)
            continue;
        if (g->input >= 0)
            return snn_err_set(err, SNN_ENOTSUP, "%s: graph.input: more than one input ('%s')",
                               label, vi->name);
        const Onnx__TypeProto *t = vi->type;
        if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type->shape)
            return snn_err_set(err, SNN_ENOTSUP, "%s: graph.input '%s': not a tensor of known rank",
                               label, vi->name);
        if (t->tensor_type->elem_type != DT_F32)
            return snn_err_set(err, SNN_ENOTSUP, "%s: graph.input '%s': element type %d (need float)",
                               label, vi->name, t->tensor_type->elem_type);
        const Onnx__TensorShapeProto *sh = t->tensor_type->shape;
        if (sh->n_dim > SNN_ONNX_MAX_RANK)
            return snn_err_set(err, SNN_ENOTSUP, "%s: graph.input '%s': rank %zu", label, vi->name,
                               sh->n_dim);
        int v = add_value(g, vi->name);
        if (v < 0)
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
        g->v[v].kind = V_INPUT;
        g->v[v].dtype = DT_F32;
        g->v[v].rank = (int)sh->n_dim;
        for (size_t d = 0; d < sh->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = sh->dim[d];
            int64_t dv = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                             ? dm->dim_value : 1; /* dynamic (batch) -> 1 */
            if (d > 0 && dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                return snn_err_set(err, SNN_ENOTSUP,
                                   "%s: graph.input '%s': dim %zu is dynamic ('%s'); only dim 0 "
                                   "(the batch) may be, and it is fixed to 1",
                                   label, vi->name, d,
                                   dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                       ? dm->dim_param : "?");
            if (dv <= 0)
                return snn_err_set(err, SNN_ESHAPE, "%s: graph.input '%s': dim %zu is %lld", label,
                                   vi->name, d, (long long)dv);
            g->v[v].d[d] = dv;
        }
        g->v[v].n = numel(g->v[v].d, g->v[v].rank);
        if (g->v[v].n < 0)
            return snn_err_set(err, SNN_ESHAPE, "%s: graph.input '%s': more than %lld elements", label,
                               vi->name, (long long)MAX_NUMEL);
        g->input = v;
    }
    if (g->input < 0)
        return snn_err_set(err, SNN_EFORMAT, "%s: graph.input: no non-initializer input", label);
    if (gp->n_output != 1)
        return snn_err_set(err, SNN_ENOTSUP, "%s: graph.output: %zu outputs (need 1)", label,
                           gp->n_output);
    g->nodes = g->a->calloc(gp->n_node ? gp->n_node : 1, sizeof *g->nodes);
    if (!g->nodes)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
    /* Constant nodes become constant values and leave no node: the graph's nodes are the
     * file's other nodes, in file order (errors still give the file's node index) */
    g->nn = 0;
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *nd = gp->node[i];
        if (nd->op_type && strcmp(nd->op_type, "Constant") == 0 &&
            (!nd->domain || !*nd->domain || strcmp(nd->domain, "ai.onnx") == 0)) {
            int rc = load_constant(g, i, nd, label, err);
            if (rc)
                return rc;
            continue;
        }
        uint64_t f0 = g->flops;
        int rc = check_node(g, g->nn, i, nd, label, err);
        if (rc)
            return rc;
        g->nodes[g->nn++].flops = g->flops - f0;
    }
    g->output = find_value(g, gp->output[0]->name ? gp->output[0]->name : "");
    if (g->output < 0 || g->v[g->output].kind != V_TEMP)
        return snn_err_set(err, SNN_EFORMAT, "%s: graph.output '%s' is not computed by any node",
                           label, gp->output[0]->name ? gp->output[0]->name : "");
    fuse_relu(g);
    g->fast_conv = 1;
    if (plan_memory(g) != 0)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
    fuse_stem(g); /* after planning: it reads the aliases */
    return 0;
}

int snn_onnx_load_buffer(const uint8_t *buf, size_t len, const char *label,
                         const snn_allocator *a, snn_onnx_graph **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    if (!m)
        return snn_err_set(err, SNN_EFORMAT, "%s: not an ONNX ModelProto (protobuf decoding failed)",
                           label);
    snn_onnx_graph *g = a->calloc(1, sizeof *g);
    if (!g) {
        onnx__model_proto__free_unpacked(m, NULL);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", label);
    }
    g->a = a;
    int rc = build(g, m, label, err);
    onnx__model_proto__free_unpacked(m, NULL);
    if (rc) {
        snn_onnx_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int snn_onnx_load(const char *path, const snn_allocator *a, snn_onnx_graph **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    const char *label = base_name(path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return snn_err_set(err, errno == ENOENT ? SNN_ENOENT : SNN_EIO, "%s: cannot open: %s", path,
                           strerror(errno));
    uint8_t *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return snn_err_set(err, SNN_EIO, "%s: cannot determine file size", path);
    }
    buf = a->malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for %ld bytes", path, n);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        a->free(buf);
        return snn_err_set(err, SNN_EIO, "%s: short read (%zu of %ld bytes)", path, got, n);
    }
    int rc = snn_onnx_load_buffer(buf, (size_t)n, label, a, out, err);
    a->free(buf);
    return rc;
}

void snn_onnx_free(snn_onnx_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nv; i++) {
        g->a->free(g->v[i].name);
        g->a->free(g->v[i].cdata);
    }
    g->a->free(g->v);
    for (size_t k = 0; g->nodes && k < g->nn; k++)
        g->a->free(g->nodes[k].wino);
    g->a->free(g->nodes);
    g->a->free(g);
}

/* ---- accessors ---------------------------------------------------------- */

int snn_onnx_input_rank(const snn_onnx_graph *g) { return g->v[g->input].rank; }
const int64_t *snn_onnx_input_dims(const snn_onnx_graph *g) { return g->v[g->input].d; }
size_t snn_onnx_input_numel(const snn_onnx_graph *g) { return (size_t)g->v[g->input].n; }
int snn_onnx_output_rank(const snn_onnx_graph *g) { return g->v[g->output].rank; }
const int64_t *snn_onnx_output_dims(const snn_onnx_graph *g) { return g->v[g->output].d; }
size_t snn_onnx_output_numel(const snn_onnx_graph *g) { return (size_t)g->v[g->output].n; }
uint64_t snn_onnx_flops(const snn_onnx_graph *g) { return g->flops; }
uint64_t snn_onnx_n_params(const snn_onnx_graph *g) { return g->n_params; }
uint64_t snn_onnx_footprint(const snn_onnx_graph *g) { return g->footprint; }
size_t snn_onnx_n_nodes(const snn_onnx_graph *g) { return g->nn; }
void snn_onnx_set_fast_conv(snn_onnx_graph *g, int on) { g->fast_conv = on; }

size_t snn_onnx_n_fused(const snn_onnx_graph *g)
{
    size_t n = 0;
    for (size_t k = 0; k < g->nn; k++)
        n += g->nodes[k].fuse_with > 0;
    return n;
}

size_t snn_onnx_work_size(const snn_onnx_graph *g)
{
    return ALIGN + g->arena + g->scratch * sizeof(float);
}

/* ---- running ------------------------------------------------------------ */

static void *vptr(const snn_onnx_graph *g, char *arena, const float *in, int v)
{
    v = root_of(g, v);
    const oval *o = &g->v[v];
    if (o->kind == V_CONST)
        return o->cdata;
    if (o->kind == V_INPUT)
        return (void *)in;
    return arena + o->off;
}

static char *arena_of(void *work) { return (char *)(((uintptr_t)work + ALIGN - 1) / ALIGN * ALIGN); }

/* Runs nodes first .. nn-1 and copies the graph output to out. */
/* Output rows of the second convolution per strip of run_stem_pair (a multiple of the Winograd
 * tile, 4, so the strips' tiles are the whole map's). */
#define STEM_STRIP 8

/* Direct Conv a and Winograd Conv b of a fuse_stem() pair on one image x -> y, STEM_STRIP
 * output rows of b at a time: the rows of a's output they need (two more, recomputed at strip
 * seams) go to strip (room for all of a's output is there), then b reads them. Each output is
 * computed by the same operations as unfused (same tiles), up to the sgemm's blocking. */
static void run_stem_pair(const onode *a, const onode *b, const float *x, const float *wa,
                          const float *ba, const float *bb, float *strip, float *y, float *scratch)
{
    const snn_conv2d *ca = &a->conv, *cb = &b->conv;
    const int64_t H = cb->H, W = cb->W;
    for (int64_t r0 = 0; r0 < cb->OH; r0 += STEM_STRIP) {
        int64_t r1 = r0 + STEM_STRIP < cb->OH ? r0 + STEM_STRIP : cb->OH;
        int64_t i0 = r0 > 0 ? r0 - 1 : 0, i1 = r1 + 1 < H ? r1 + 1 : H; /* b's input rows */
        int64_t j0 = i0 > 0 ? i0 - 1 : 0, j1 = i1 + 1 < ca->H ? i1 + 1 : ca->H; /* a's input rows */
        snn_conv2d sa = *ca, sb = *cb;
        sa.H = j1 - j0;
        sa.pt = i0 == 0 ? ca->pt : 0;
        sa.pb = i1 == H ? ca->pb : 0;
        sa.xcs = 0;
        sa.ycs = (i1 - i0) * W;
        sb.H = i1 - i0;
        sb.pt = r0 == 0 ? cb->pt : 0;
        sb.pb = r1 == cb->OH ? cb->pb : 0;
        sb.xcs = (i1 - i0) * W;
        sb.ycs = cb->OH * cb->OW;
        if (snn_conv2d_init(&sa) != 0 || snn_conv2d_init(&sb) != 0)
            return; /* not reached: fuse_stem() checked the geometry */
        snn_conv2d_run(&sa, x + j0 * ca->W, wa, ba, a->relu, strip, scratch);
        snn_conv2d_winograd(&sb, strip, b->wino, bb, b->relu, y + r0 * cb->OW, scratch);
    }
}

static void run_nodes(const snn_onnx_graph *g, size_t first, const float *in, float *out, void *work)
{
    char *arena = arena_of(work);
    float *scratch = (float *)(arena + g->arena);
    size_t done = 0; /* > 0: a node already computed with its fused partner */
    for (size_t k = first; k < g->nn; k++) {
        const onode *n = &g->nodes[k];
        if (done && k == done)
            continue;
        const oval *x = &g->v[n->in[0]], *o = &g->v[n->out];
        const float *xp = vptr(g, arena, in, n->in[0]);
        float *op = vptr(g, arena, in, n->out);
        switch (n->op) {
        case OP_CONV: {
            const float *w = vptr(g, arena, in, n->in[1]);
            const float *b = n->has_bias ? vptr(g, arena, in, n->in[2]) : NULL;
            int64_t xs = x->n / x->d[0], ys = o->n / o->d[0];
            if (n->fuse_with && g->fast_conv) {
                const onode *nb = &g->nodes[n->fuse_with];
                run_stem_pair(n, nb, xp, w, b, nb->has_bias ? vptr(g, arena, in, nb->in[2]) : NULL, op,
                              vptr(g, arena, in, nb->out), scratch);
                done = (size_t)n->fuse_with;
                break;
            }
            for (int64_t i = 0; i < x->d[0]; i++) {
                if (n->wino && g->fast_conv)
                    snn_conv2d_winograd(&n->conv, xp + i * xs, n->wino, b, n->relu, op + i * ys,
                                        scratch);
                else
                    snn_conv2d_run(&n->conv, xp + i * xs, w, b, n->relu, op + i * ys, scratch);
            }
            break;
        }
        case OP_MAXPOOL:
            snn_maxpool2d(xp, x->d[0] * x->d[1], x->d[2], x->d[3], n->pool[0], n->pool[1],
                          n->pool[2], n->pool[3], op);
            break;
        case OP_REDUCEMAX:
            snn_reduce_max(xp, x->d, x->rank, n->reduce, op);
            break;
        case OP_MATMUL: {
            const oval *b = &g->v[n->in[1]];
            snn_matmul(xp, vptr(g, arena, in, n->in[1]), op, x->n / b->d[0], b->d[0], b->d[1]);
            break;
        }
        case OP_BINARY: {
            const oval *b = &g->v[n->in[1]];
            snn_binary(n->bop, xp, x->d, x->rank, vptr(g, arena, in, n->in[1]), b->d, b->rank, op,
                       o->d, o->rank);
            break;
        }
        case OP_UNARY:
            snn_unary(n->uop, xp, op, (size_t)o->n);
            break;
        case OP_TRANSPOSE:
            snn_transpose(xp, x->d, x->rank, n->perm, op, esize(x->dtype));
            break;
        case OP_RESHAPE:
            if ((const void *)xp != (void *)op)
                memcpy(op, xp, (size_t)o->n * esize(x->dtype));
            break;
        case OP_SLICE:
            snn_slice(xp, x->d, x->rank, n->start, n->step, op, o->d, esize(x->dtype));
            break;
        case OP_CONCAT: {
            const void *xs[MAX_IN];
            const int64_t *ds[MAX_IN];
            for (int i = 0; i < n->nin; i++) {
                xs[i] = vptr(g, arena, in, n->in[i]);
                ds[i] = g->v[n->in[i]].d;
            }
            snn_concat(xs, ds, n->nin, o->rank, n->axis, op, esize(x->dtype));
            break;
        }
        }
    }
    memcpy(out, vptr(g, arena, in, g->output), (size_t)g->v[g->output].n * sizeof(float));
}

void snn_onnx_run(const snn_onnx_graph *g, const float *in, float *out, void *work)
{
    run_nodes(g, 0, in, out, work);
}

/* ---- parts of a graph ---------------------------------------------------- */

const char *snn_onnx_node_op(const snn_onnx_graph *g, size_t k)
{
    return k < g->nn ? g->nodes[k].opname : NULL;
}

uint64_t snn_onnx_flops_from(const snn_onnx_graph *g, size_t k)
{
    uint64_t f = 0;
    for (; k < g->nn; k++)
        f += g->nodes[k].flops;
    return f;
}

int snn_onnx_node_conv(const snn_onnx_graph *g, size_t k, snn_onnx_conv_view *cv)
{
    if (k >= g->nn || g->nodes[k].op != OP_CONV)
        return -1;
    const onode *n = &g->nodes[k];
    cv->geom = n->conv;
    cv->w = g->v[n->in[1]].cdata;
    cv->b = n->has_bias ? g->v[n->in[2]].cdata : NULL;
    cv->wino = g->fast_conv ? n->wino : NULL;
    cv->relu = n->relu;
    return 0;
}

const float *snn_onnx_node_const(const snn_onnx_graph *g, size_t k, int i, size_t *n)
{
    if (k >= g->nn || i < 0 || i >= g->nodes[k].nin || g->nodes[k].in[i] < 0)
        return NULL;
    const oval *v = &g->v[g->nodes[k].in[i]];
    if (v->kind != V_CONST || v->dtype != DT_F32)
        return NULL;
    *n = (size_t)v->n;
    return v->cdata;
}

float *snn_onnx_node_input(const snn_onnx_graph *g, size_t k, void *work, const int64_t **dims,
                           int *rank)
{
    if (k >= g->nn)
        return NULL;
    int v = root_of(g, g->nodes[k].in[0]);
    if (g->v[v].kind != V_TEMP || g->v[v].dtype != DT_F32)
        return NULL;
    *dims = g->v[g->nodes[k].in[0]].d;
    *rank = g->v[g->nodes[k].in[0]].rank;
    return (float *)(arena_of(work) + g->v[v].off);
}

void snn_onnx_run_from(const snn_onnx_graph *g, size_t k, float *out, void *work)
{
    run_nodes(g, k, NULL, out, work);
}
