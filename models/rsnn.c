/*
 * rsnn.c -- the recurrent spiking network engine. Equations: rsnn.h.
 */
#include "rsnn.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "session.h"

enum { TIMING_STORK = 0, TIMING_DIRECT = 1 };

/* One connection, stored presynaptic-major (row j = weights out of input j). */
typedef struct conn {
    uint32_t n_pre, n_post;
    float *dense;      /* [n_pre][n_post], or NULL when sparse */
    uint32_t *rowptr;  /* CSR [n_pre + 1] when sparse */
    uint32_t *col;
    float *val;
    uint32_t *row_nnz; /* non-zeros per presynaptic row (for op counts) */
    uint64_t nnz;
} conn;

typedef struct layer {
    uint32_t n;
    int alif, recurrent, reset_sub;
    float theta;
    conn in, rec;
    float *bias, *alpha, *beta, *gamma, *rho, *adapt; /* [n]; bias/rho/adapt may be NULL */
} layer;

typedef struct rsnn_model {
    snn_model base;
    int timing;
    uint32_t L;
    layer *layers;
    conn out;
    uint32_t groups;    /* readout groups averaged into each output ("groups", default 1) */
    uint32_t n_ro;      /* readout units: groups * n_out, unit g * n_out + k feeds output k */
    float *obias, *oalpha, *obeta, *ogamma, *oscale, *ooffset;
    int softmax;
    float y0;           /* readout initial state ("initial_state", default 0) */
    int binary_input;   /* input "binary": any non-zero count counts as one spike */
    json_t *config;
    uint64_t dense_ops;
} rsnn_model;

typedef struct lstate {
    float *cur, *mem, *pend, *adp, *thp; /* I, V, U, A, theta_{t-1} */
    uint8_t *s;
    uint32_t *idx; /* indices of neurons with s = 1 */
    uint32_t nspk;
} lstate;

typedef struct rsnn_state {
    void *mem; /* single allocation holding everything below */
    lstate *ls;
    float *J, *Y, *Uo;
    uint32_t *in_idx;
} rsnn_state;

/* ---- loading --------------------------------------------------------- */

static void conn_free(const snn_allocator *a, conn *c)
{
    a->free(c->dense);
    a->free(c->rowptr);
    a->free(c->col);
    a->free(c->val);
    a->free(c->row_nnz);
}

static void rsnn_free(snn_model *bm)
{
    if (!bm)
        return;
    rsnn_model *m = (rsnn_model *)bm;
    const snn_allocator *a = bm->alloc;
    for (uint32_t l = 0; m->layers && l < m->L; l++) {
        layer *y = &m->layers[l];
        conn_free(a, &y->in);
        conn_free(a, &y->rec);
        a->free(y->bias);
        a->free(y->alpha);
        a->free(y->beta);
        a->free(y->gamma);
        a->free(y->rho);
        a->free(y->adapt);
    }
    a->free(m->layers);
    conn_free(a, &m->out);
    a->free(m->obias);
    a->free(m->oalpha);
    a->free(m->obeta);
    a->free(m->ogamma);
    a->free(m->oscale);
    a->free(m->ooffset);
    if (m->config)
        json_decref(m->config);
    snn_model_free_common(bm);
    a->free(m);
}

static float *falloc(const snn_allocator *a, uint64_t n)
{
    return a->calloc(n ? n : 1, sizeof(float));
}

/* Reads W [n_post, n_pre] from the file and stores it presynaptic-major,
 * sparse when fewer than a third of the weights are non-zero. */
static int conn_load(snn_st *st, const snn_allocator *a, const char *name, uint32_t n_post,
                     uint32_t n_pre, conn *c, snn_err *err)
{
    c->n_pre = n_pre;
    c->n_post = n_post;
    uint64_t shape[2] = {n_post, n_pre};
    float *w = falloc(a, (uint64_t)n_post * n_pre);
    c->row_nnz = a->calloc(n_pre ? n_pre : 1, sizeof(uint32_t));
    if (!w || !c->row_nnz) {
        a->free(w);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for tensor %s", st->path, name);
    }
    int rc = snn_st_read(st, name, shape, 2, 0, w, err);
    if (rc < 0) {
        a->free(w);
        return rc;
    }
    c->nnz = 0;
    for (uint32_t i = 0; i < n_post; i++)
        for (uint32_t j = 0; j < n_pre; j++)
            if (w[(uint64_t)i * n_pre + j] != 0.0f) {
                c->nnz++;
                c->row_nnz[j]++;
            }
    uint64_t total = (uint64_t)n_post * n_pre;
    if (c->nnz * 3 < total) {
        c->rowptr = a->calloc((size_t)n_pre + 1, sizeof(uint32_t));
        c->col = a->calloc(c->nnz ? c->nnz : 1, sizeof(uint32_t));
        c->val = falloc(a, c->nnz);
        if (!c->rowptr || !c->col || !c->val) {
            a->free(w);
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for tensor %s", st->path, name);
        }
        uint32_t k = 0;
        for (uint32_t j = 0; j < n_pre; j++) {
            c->rowptr[j] = k;
            for (uint32_t i = 0; i < n_post; i++) {
                float v = w[(uint64_t)i * n_pre + j];
                if (v != 0.0f) {
                    c->col[k] = i;
                    c->val[k++] = v;
                }
            }
        }
        c->rowptr[n_pre] = k;
    } else {
        c->dense = falloc(a, total);
        if (!c->dense) {
            a->free(w);
            return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for tensor %s", st->path, name);
        }
        for (uint32_t i = 0; i < n_post; i++)
            for (uint32_t j = 0; j < n_pre; j++)
                c->dense[(uint64_t)j * n_post + i] = w[(uint64_t)i * n_pre + j];
    }
    a->free(w);
    return 0;
}

static double softplus(double p) { return p > 30 ? p : log1p(exp(p)); }

/* The softplus base time constant KEY of unit i of n in G groups: a number, or an array of G
 * numbers (one per readout group, unit i in group i / (n / G)). Returns <= 0 when absent or
 * malformed. */
static double tau0_of(json_t *cfg, const char *key, uint32_t i, uint32_t n, uint32_t G)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_array(v))
        return json_array_size(v) == G ? json_number_value(json_array_get(v, i / (n / G))) : -1;
    return json_is_number(v) ? json_number_value(v) : -1;
}

/* Fills alpha, beta, gamma [n] of a layer or the readout (G groups of n / G units; 1 for a
 * layer) from its tensors. */
static int load_tau(snn_st *st, const snn_allocator *a, json_t *cfg, const char *pfx, uint32_t n, uint32_t G,
                    double dt, float **alpha, float **beta, float **gamma, snn_err *err)
{
    const char *tau = json_string_value(json_object_get(cfg, "tau"));
    char nm[128];
    uint64_t shape[1] = {n};
    int rc;
    *alpha = falloc(a, n);
    *beta = falloc(a, n);
    *gamma = falloc(a, n);
    if (!*alpha || !*beta || !*gamma)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", st->path);
    if (!tau || !strcmp(tau, "decay")) {
        snprintf(nm, sizeof nm, "%s.alpha", pfx);
        if ((rc = snn_st_read(st, nm, shape, 1, n, *alpha, err)) < 0)
            return rc;
        snprintf(nm, sizeof nm, "%s.beta", pfx);
        if ((rc = snn_st_read(st, nm, shape, 1, n, *beta, err)) < 0)
            return rc;
        snprintf(nm, sizeof nm, "%s.gamma", pfx);
        if (snn_st_find(st, nm)) {
            if ((rc = snn_st_read(st, nm, shape, 1, n, *gamma, err)) < 0)
                return rc;
        } else {
            for (uint32_t i = 0; i < n; i++)
                (*gamma)[i] = 1.0f - (*beta)[i];
        }
    } else if (!strcmp(tau, "softplus")) {
        for (uint32_t g = 0; g < G; g++)
            if (!(tau0_of(cfg, "tau_mem", g * (n / G), n, G) > 0) || !(tau0_of(cfg, "tau_syn", g * (n / G), n, G) > 0))
                return snn_err_set(err, SNN_EFORMAT,
                                   "%s: config %s: tau \"softplus\" needs tau_mem > 0 and tau_syn > 0%s", st->path,
                                   pfx, G > 1 ? " (numbers, or arrays of one per group)" : "");
        snprintf(nm, sizeof nm, "%s.syn_param", pfx);
        if ((rc = snn_st_read(st, nm, shape, 1, n, *alpha, err)) < 0)
            return rc;
        snprintf(nm, sizeof nm, "%s.mem_param", pfx);
        if ((rc = snn_st_read(st, nm, shape, 1, n, *beta, err)) < 0)
            return rc;
        for (uint32_t i = 0; i < n; i++) {
            double ts = tau0_of(cfg, "tau_syn", i, n, G), tm = tau0_of(cfg, "tau_mem", i, n, G);
            (*alpha)[i] = (float)exp(-dt / (ts * softplus((*alpha)[i])));
            (*beta)[i] = (float)exp(-dt / (tm * softplus((*beta)[i])));
            (*gamma)[i] = 1.0f - (*beta)[i];
        }
    } else {
        return snn_err_set(err, SNN_ENOTSUP, "%s: config %s: tau \"%s\" not supported (decay, softplus)", st->path,
                           pfx, tau);
    }
    for (uint32_t i = 0; i < n; i++)
        if (!((*alpha)[i] >= 0 && (*alpha)[i] <= 1 && (*beta)[i] >= 0 && (*beta)[i] <= 1))
            return snn_err_set(err, SNN_EFORMAT, "%s: %s neuron %u: decay factors must lie in [0,1] (alpha %g, beta %g)",
                               st->path, pfx, i, (*alpha)[i], (*beta)[i]);
    return 0;
}

static int load_vec(snn_st *st, const snn_allocator *a, const char *name, uint32_t n, int bcast,
                    float **dst, snn_err *err)
{
    uint64_t shape[1] = {n};
    *dst = falloc(a, n);
    if (!*dst)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", st->path);
    return snn_st_read(st, name, shape, 1, bcast ? n : 0, *dst, err);
}

static int get_u32(json_t *o, const char *key, uint32_t *v, const char *path, const char *where, snn_err *err)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_integer(j) || json_integer_value(j) < 1 || json_integer_value(j) > (1 << 24))
        return snn_err_set(err, SNN_EFORMAT, "%s: config %s.%s: expected a positive integer", path, where, key);
    *v = (uint32_t)json_integer_value(j);
    return 0;
}

static int names_from(json_t *arr, uint32_t n, snn_model *m, char ***dst, const char *path,
                      const char *where, snn_err *err)
{
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) != n)
        return snn_err_set(err, SNN_ESHAPE, "%s: config %s: expected %u names, found %zu", path, where, n,
                           json_is_array(arr) ? json_array_size(arr) : 0);
    const char *tmp[n ? n : 1];
    for (uint32_t i = 0; i < n; i++) {
        tmp[i] = json_string_value(json_array_get(arr, i));
        if (!tmp[i])
            return snn_err_set(err, SNN_EFORMAT, "%s: config %s[%u]: expected a string", path, where, i);
    }
    if (snn_model_set_names(m, dst, tmp, n) < 0)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    return 0;
}

static const snn_model_ops rsnn_ops;

static int load_layer(snn_st *st, const snn_allocator *a, json_t *lc, uint32_t l, uint32_t n_pre,
                      double dt, layer *y, snn_err *err)
{
    const char *p = st->path;
    char where[32], nm[96];
    snprintf(where, sizeof where, "layers[%u]", l);
    if (!json_is_object(lc))
        return snn_err_set(err, SNN_EFORMAT, "%s: config %s: expected an object", p, where);
    int rc = get_u32(lc, "size", &y->n, p, where, err);
    if (rc < 0)
        return rc;
    const char *neuron = json_string_value(json_object_get(lc, "neuron"));
    if (!neuron || (strcmp(neuron, "lif") && strcmp(neuron, "alif")))
        return snn_err_set(err, SNN_ENOTSUP, "%s: config %s.neuron: \"%s\" not supported (lif, alif)", p, where,
                           neuron ? neuron : "(missing)");
    y->alif = !strcmp(neuron, "alif");
    y->recurrent = json_is_true(json_object_get(lc, "recurrent"));
    const char *reset = json_string_value(json_object_get(lc, "reset"));
    if (reset && strcmp(reset, "zero") && strcmp(reset, "subtract"))
        return snn_err_set(err, SNN_ENOTSUP, "%s: config %s.reset: \"%s\" not supported (zero, subtract)", p, where,
                           reset);
    y->reset_sub = reset && !strcmp(reset, "subtract");
    json_t *th = json_object_get(lc, "threshold");
    y->theta = th ? (float)json_number_value(th) : 1.0f;
    if (th && !json_is_number(th))
        return snn_err_set(err, SNN_EFORMAT, "%s: config %s.threshold: expected a number", p, where);
    snprintf(nm, sizeof nm, "layers.%u.w_in", l);
    if ((rc = conn_load(st, a, nm, y->n, n_pre, &y->in, err)) < 0)
        return rc;
    if (y->recurrent) {
        snprintf(nm, sizeof nm, "layers.%u.w_rec", l);
        if ((rc = conn_load(st, a, nm, y->n, y->n, &y->rec, err)) < 0)
            return rc;
    }
    if (json_is_true(json_object_get(lc, "bias"))) {
        snprintf(nm, sizeof nm, "layers.%u.bias", l);
        if ((rc = load_vec(st, a, nm, y->n, 0, &y->bias, err)) < 0)
            return rc;
    }
    snprintf(nm, sizeof nm, "layers.%u", l);
    if ((rc = load_tau(st, a, lc, nm, y->n, 1, dt, &y->alpha, &y->beta, &y->gamma, err)) < 0)
        return rc;
    if (y->alif) {
        snprintf(nm, sizeof nm, "layers.%u.rho", l);
        if ((rc = load_vec(st, a, nm, y->n, 1, &y->rho, err)) < 0)
            return rc;
        snprintf(nm, sizeof nm, "layers.%u.adapt", l);
        if ((rc = load_vec(st, a, nm, y->n, 1, &y->adapt, err)) < 0)
            return rc;
    }
    return 0;
}

int snn_rsnn_load(snn_st *st, const char *path, const snn_allocator *a, snn_model **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    const char *fmt = snn_st_meta(st, "format"), *ver = snn_st_meta(st, "version");
    const char *cfgs = snn_st_meta(st, "config");
    if (!fmt || strcmp(fmt, "snnd-rsnn"))
        return snn_err_set(err, SNN_EFORMAT, "%s: __metadata__.format: expected \"snnd-rsnn\", found %s%s%s", path,
                           fmt ? "\"" : "", fmt ? fmt : "nothing", fmt ? "\"" : "");
    if (!ver || strcmp(ver, "1"))
        return snn_err_set(err, SNN_ENOTSUP, "%s: __metadata__.version: expected \"1\", found %s", path,
                           ver ? ver : "nothing");
    if (!cfgs)
        return snn_err_set(err, SNN_EFORMAT, "%s: __metadata__.config: missing", path);
    json_error_t je;
    json_t *cfg = json_loads(cfgs, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(cfg)) {
        if (cfg)
            json_decref(cfg);
        return snn_err_set(err, SNN_EFORMAT, "%s: __metadata__.config: not a JSON object (%s)", path, je.text);
    }
    rsnn_model *m = a->calloc(1, sizeof *m);
    if (!m) {
        json_decref(cfg);
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
    }
    snn_model *b = &m->base;
    b->ops = &rsnn_ops;
    b->alloc = a;
    m->config = cfg;
    int rc;
    if ((rc = snn_model_set_path(b, path)) < 0) {
        snn_err_set(err, SNN_EINVAL, "%s: path too long", path);
        goto fail;
    }
    json_t *dtj = json_object_get(cfg, "dt");
    b->dt = json_number_value(dtj);
    if (!json_is_number(dtj) || !(b->dt > 0) || b->dt > 10) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config dt: expected seconds per step in (0, 10]", path);
        goto fail;
    }
    const char *timing = json_string_value(json_object_get(cfg, "timing"));
    if (!timing || !strcmp(timing, "direct"))
        m->timing = TIMING_DIRECT;
    else if (!strcmp(timing, "stork"))
        m->timing = TIMING_STORK;
    else {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config timing: \"%s\" not supported (direct, stork)", path, timing);
        goto fail;
    }
    json_t *in = json_object_get(cfg, "input");
    if ((rc = get_u32(in, "size", &b->n_in, path, "input", err)) < 0)
        goto fail;
    json_t *jkind = json_object_get(in, "kind");
    const char *kind = jkind ? json_string_value(jkind) : "spikes";
    if (!kind || snn_input_kind_parse(kind) <= 0) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config input.kind: expected spikes, binned, tactile, analog or audio",
                         path);
        goto fail;
    }
    m->binary_input = json_is_true(json_object_get(in, "binary"));
    snprintf(b->input_kind, sizeof b->input_kind, "%s", kind);
    json_t *layers = json_object_get(cfg, "layers");
    if (!json_is_array(layers) || json_array_size(layers) < 1 || json_array_size(layers) > 16) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config layers: expected an array of 1 to 16 layers", path);
        goto fail;
    }
    m->L = (uint32_t)json_array_size(layers);
    m->layers = a->calloc(m->L, sizeof *m->layers);
    if (!m->layers) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    uint32_t n_pre = b->n_in;
    for (uint32_t l = 0; l < m->L; l++) {
        if ((rc = load_layer(st, a, json_array_get(layers, l), l, n_pre, b->dt, &m->layers[l], err)) < 0)
            goto fail;
        layer *y = &m->layers[l];
        if (y->alif && m->timing == TIMING_STORK) {
            rc = snn_err_set(err, SNN_ENOTSUP, "%s: config layers[%u]: neuron \"alif\" needs timing \"direct\"", path, l);
            goto fail;
        }
        m->dense_ops += (uint64_t)y->n * n_pre + (y->recurrent ? (uint64_t)y->n * y->n : 0);
        b->n_params += (uint64_t)y->n * n_pre + (y->recurrent ? (uint64_t)y->n * y->n : 0);
        n_pre = y->n;
    }
    json_t *ro = json_object_get(cfg, "readout");
    if (!json_is_object(ro)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config readout: missing", path);
        goto fail;
    }
    if ((rc = get_u32(ro, "size", &b->n_out, path, "readout", err)) < 0)
        goto fail;
    m->groups = 1;
    if (json_object_get(ro, "groups")) {
        json_t *g = json_object_get(ro, "groups");
        if (!json_is_integer(g) || json_integer_value(g) < 1 || json_integer_value(g) > 1024) {
            rc = snn_err_set(err, SNN_EFORMAT, "%s: config readout.groups: expected an integer in 1..1024", path);
            goto fail;
        }
        m->groups = (uint32_t)json_integer_value(g);
    }
    m->n_ro = m->groups * b->n_out;
    if ((rc = conn_load(st, a, "readout.w", m->n_ro, n_pre, &m->out, err)) < 0)
        goto fail;
    m->dense_ops += (uint64_t)m->n_ro * n_pre;
    b->n_params += (uint64_t)m->n_ro * n_pre;
    if (json_is_true(json_object_get(ro, "bias")) &&
        (rc = load_vec(st, a, "readout.bias", m->n_ro, 0, &m->obias, err)) < 0)
        goto fail;
    if ((rc = load_tau(st, a, ro, "readout", m->n_ro, m->groups, b->dt, &m->oalpha, &m->obeta, &m->ogamma, err)) <
        0)
        goto fail;
    if (snn_st_find(st, "readout.out_scale") &&
        (rc = load_vec(st, a, "readout.out_scale", b->n_out, 1, &m->oscale, err)) < 0)
        goto fail;
    if (snn_st_find(st, "readout.out_offset") &&
        (rc = load_vec(st, a, "readout.out_offset", b->n_out, 1, &m->ooffset, err)) < 0)
        goto fail;
    const char *act = json_string_value(json_object_get(ro, "activation"));
    if (act && strcmp(act, "softmax") && strcmp(act, "none")) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config readout.activation: \"%s\" not supported (none, softmax)",
                         path, act);
        goto fail;
    }
    m->softmax = act && !strcmp(act, "softmax");
    json_t *y0 = json_object_get(ro, "initial_state");
    if (y0 && !json_is_number(y0)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config readout.initial_state: expected a number", path);
        goto fail;
    }
    m->y0 = y0 ? (float)json_number_value(y0) : 0.0f;
    if ((rc = names_from(json_object_get(ro, "names"), b->n_out, b, &b->out_names, path, "readout.names", err)) < 0 ||
        (rc = names_from(json_object_get(ro, "labels"), b->n_out, b, &b->labels, path, "readout.labels", err)) < 0)
        goto fail;
    if (!b->out_names) {
        if (b->labels) {
            if (snn_model_set_names(b, &b->out_names, (const char *const *)b->labels, b->n_out) < 0) {
                rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
                goto fail;
            }
        } else {
            const char *tmp[b->n_out];
            char bufs[b->n_out][16];
            for (uint32_t k = 0; k < b->n_out; k++) {
                snprintf(bufs[k], sizeof bufs[k], "y%u", k);
                tmp[k] = bufs[k];
            }
            if (snn_model_set_names(b, &b->out_names, tmp, b->n_out) < 0) {
                rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", path);
                goto fail;
            }
        }
    }
    const char *task = json_string_value(json_object_get(ro, "task"));
    const char *dec = json_string_value(json_object_get(ro, "decision"));
    if (task && !strcmp(task, "classification")) {
        if (!dec || !strcmp(dec, "argmax_sum") || !strcmp(dec, "sum"))
            b->decision = SNN_DECISION_ARGMAX_SUM;
        else if (!strcmp(dec, "argmax_last") || !strcmp(dec, "last"))
            b->decision = SNN_DECISION_ARGMAX_LAST;
        else if (!strcmp(dec, "argmax_max") || !strcmp(dec, "max"))
            b->decision = SNN_DECISION_ARGMAX_MAX;
        else {
            rc = snn_err_set(err, SNN_ENOTSUP, "%s: config readout.decision: \"%s\" not supported", path, dec);
            goto fail;
        }
    }
    if ((rc = snn_st_check_all_used(st, err)) < 0)
        goto fail;
    b->footprint = 0;
    b->n_params = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        b->footprint += st->tensors[i].nbytes;
        b->n_params += st->tensors[i].numel;
    }
    *out = b;
    return 0;
fail:
    rsnn_free(b);
    return rc;
}

/* ---- state ------------------------------------------------------------ */

static size_t state_size(const rsnn_model *m)
{
    size_t sz = sizeof(rsnn_state) + m->L * sizeof(lstate);
    for (uint32_t l = 0; l < m->L; l++)
        sz += m->layers[l].n * (5 * sizeof(float) + sizeof(uint8_t) + sizeof(uint32_t)) + 64;
    sz += 3 * m->n_ro * sizeof(float) + m->base.n_in * sizeof(uint32_t) + 64;
    return sz;
}

static void rsnn_state_reset(const snn_model *bm, snn_state *bs)
{
    const rsnn_model *m = (const rsnn_model *)bm;
    rsnn_state *s = (rsnn_state *)bs;
    for (uint32_t l = 0; l < m->L; l++) {
        uint32_t n = m->layers[l].n;
        lstate *q = &s->ls[l];
        memset(q->cur, 0, n * 5 * sizeof(float)); /* cur, mem, pend, adp, thp are contiguous */
        for (uint32_t i = 0; i < n; i++)
            q->thp[i] = m->layers[l].theta;
        memset(q->s, 0, n);
        q->nspk = 0;
    }
    memset(s->J, 0, 3 * m->n_ro * sizeof(float));
    for (uint32_t k = 0; k < m->n_ro; k++)
        s->Y[k] = m->y0;
}

static int rsnn_state_new(const snn_model *bm, snn_state **out, snn_err *err)
{
    const rsnn_model *m = (const rsnn_model *)bm;
    size_t sz = state_size(m);
    uint8_t *mem = bm->alloc->calloc(1, sz);
    if (!mem)
        return snn_err_set(err, SNN_ENOMEM, "%s: out of memory for a %zu-byte stream state", bm->name, sz);
    rsnn_state *s = (rsnn_state *)mem;
    uint8_t *p = mem + sizeof *s;
    s->mem = mem;
    s->ls = (lstate *)p;
    p += m->L * sizeof(lstate);
#define TAKE(ptr, type, count)                                    \
    do {                                                          \
        p = (uint8_t *)(((uintptr_t)p + 7) & ~(uintptr_t)7);      \
        (ptr) = (type *)p;                                        \
        p += (size_t)(count) * sizeof(type);                      \
    } while (0)
    for (uint32_t l = 0; l < m->L; l++) {
        uint32_t n = m->layers[l].n;
        lstate *q = &s->ls[l];
        TAKE(q->cur, float, 5 * n);
        q->mem = q->cur + n;
        q->pend = q->mem + n;
        q->adp = q->pend + n;
        q->thp = q->adp + n;
        TAKE(q->s, uint8_t, n);
        TAKE(q->idx, uint32_t, n);
    }
    TAKE(s->J, float, 3 * m->n_ro);
    s->Y = s->J + m->n_ro;
    s->Uo = s->Y + m->n_ro;
    TAKE(s->in_idx, uint32_t, bm->n_in);
#undef TAKE
    rsnn_state_reset(bm, (snn_state *)s);
    *out = (snn_state *)s;
    return 0;
}

static void rsnn_state_free(const snn_model *bm, snn_state *s)
{
    if (s)
        bm->alloc->free(s);
}

/* ---- step ------------------------------------------------------------- */

/* dst[post] += v * W[post][pre] for every pre in idx (values vals or 1). */
static void conn_add(const conn *c, const uint32_t *idx, uint32_t nidx, const float *vals, float *dst,
                     snn_step_info *info)
{
    uint64_t ops = 0, macs = 0;
    for (uint32_t k = 0; k < nidx; k++) {
        uint32_t j = idx[k];
        float v = vals ? vals[j] : 1.0f;
        uint32_t nnz = c->row_nnz[j];
        if (v == 1.0f)
            ops += nnz;
        else
            macs += nnz;
        if (c->dense) {
            const float *restrict w = c->dense + (uint64_t)j * c->n_post;
            float *restrict d = dst;
            uint32_t n = c->n_post;
            if (v == 1.0f)
                for (uint32_t i = 0; i < n; i++)
                    d[i] += w[i];
            else
                for (uint32_t i = 0; i < n; i++)
                    d[i] += v * w[i];
        } else {
            for (uint32_t q = c->rowptr[j]; q < c->rowptr[j + 1]; q++)
                dst[c->col[q]] += v * c->val[q];
        }
    }
    info->eff_acs += ops;
    info->eff_macs += macs;
}

/* Adds W x for the input vector x (layer 0's feed-forward connection). */
static void input_add(const conn *c, const float *x, int binary, uint32_t *idx, float *dst, snn_step_info *info)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < c->n_pre; j++)
        if (x[j] != 0.0f)
            idx[n++] = j;
    if (binary) { /* every active channel is one spike */
        conn_add(c, idx, n, NULL, dst, info);
        return;
    }
    if (c->dense && n * 2 > c->n_pre) {
        /* Dense input: one sgemv over the presynaptic-major matrix. */
        cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)c->n_pre, (blasint)c->n_post, 1.0f, c->dense,
                    (blasint)c->n_post, x, 1, 1.0f, dst, 1);
        for (uint32_t k = 0; k < n; k++) {
            if (x[idx[k]] == 1.0f)
                info->eff_acs += c->row_nnz[idx[k]];
            else
                info->eff_macs += c->row_nnz[idx[k]];
        }
        return;
    }
    conn_add(c, idx, n, x, dst, info);
}

static void spikes_update(lstate *q, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (q->s[i])
            q->idx[k++] = i;
    q->nspk = k;
}

static void readout_output(const rsnn_model *m, const rsnn_state *s, float *out)
{
    uint32_t n = m->base.n_out;
    const float *Y = s->Y;
    if (m->groups > 1) { /* rsnn.h: Y_k = the mean over groups g of Y_{g n + k} */
        for (uint32_t k = 0; k < n; k++) {
            float sum = 0;
            for (uint32_t g = 0; g < m->groups; g++)
                sum += s->Y[g * n + k];
            out[k] = sum / (float)m->groups;
        }
        Y = out;
    }
    if (m->softmax) {
        float mx = Y[0];
        for (uint32_t k = 1; k < n; k++)
            mx = Y[k] > mx ? Y[k] : mx;
        double sum = 0;
        for (uint32_t k = 0; k < n; k++)
            sum += exp((double)(Y[k] - mx));
        for (uint32_t k = 0; k < n; k++)
            out[k] = (float)(exp((double)(Y[k] - mx)) / sum);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        float y = Y[k];
        if (m->oscale)
            y *= m->oscale[k];
        if (m->ooffset)
            y += m->ooffset[k];
        out[k] = y;
    }
}

/* U of layer l = b + W_in z + W_rec s, from the layer's current spikes and
 * those of the layer below (or the input x for layer 0). */
static void layer_input(const rsnn_model *m, rsnn_state *s, uint32_t l, const float *x, snn_step_info *info)
{
    const layer *y = &m->layers[l];
    lstate *q = &s->ls[l];
    if (y->bias)
        memcpy(q->pend, y->bias, y->n * sizeof(float));
    else
        memset(q->pend, 0, y->n * sizeof(float));
    if (l == 0)
        input_add(&y->in, x, m->binary_input, s->in_idx, q->pend, info);
    else
        conn_add(&y->in, s->ls[l - 1].idx, s->ls[l - 1].nspk, NULL, q->pend, info);
    if (y->recurrent)
        conn_add(&y->rec, q->idx, q->nspk, NULL, q->pend, info);
}

/* The readout's input b_o + W_out s^L from the top layer's current spikes. */
static void readout_input(const rsnn_model *m, rsnn_state *s, snn_step_info *info)
{
    if (m->obias)
        memcpy(s->Uo, m->obias, m->n_ro * sizeof(float));
    else
        memset(s->Uo, 0, m->n_ro * sizeof(float));
    const lstate *top = &s->ls[m->L - 1];
    conn_add(&m->out, top->idx, top->nspk, NULL, s->Uo, info);
}

static void step_stork(const rsnn_model *m, rsnn_state *s, const float *x, snn_step_info *info)
{
    /* Evolve every group with the input propagated at the previous step. */
    for (uint32_t l = 0; l < m->L; l++) {
        const layer *y = &m->layers[l];
        lstate *q = &s->ls[l];
        for (uint32_t i = 0; i < y->n; i++) {
            uint8_t sp = q->mem[i] > y->theta;
            float v = y->beta[i] * q->mem[i] + y->gamma[i] * q->cur[i];
            if (y->reset_sub)
                v -= sp ? y->theta : 0.0f;
            else if (sp)
                v = 0.0f;
            q->mem[i] = v;
            q->cur[i] = y->alpha[i] * q->cur[i] + q->pend[i];
            q->s[i] = sp;
        }
        spikes_update(q, y->n);
        info->hidden_spikes += q->nspk;
        info->hidden_neurons += y->n;
    }
    for (uint32_t k = 0; k < m->n_ro; k++) {
        float yk = m->obeta[k] * s->Y[k] + m->ogamma[k] * s->J[k];
        s->J[k] = m->oalpha[k] * s->J[k] + s->Uo[k];
        s->Y[k] = yk;
    }
    /* Propagate: the new outputs become next step's input. */
    for (uint32_t l = 0; l < m->L; l++)
        layer_input(m, s, l, x, info);
    readout_input(m, s, info);
}

static void step_direct(const rsnn_model *m, rsnn_state *s, const float *x, snn_step_info *info)
{
    for (uint32_t l = 0; l < m->L; l++) {
        const layer *y = &m->layers[l];
        lstate *q = &s->ls[l];
        /* I_t = alpha I + b + W_in z_t + W_rec s_{t-1}; U holds the new input. */
        layer_input(m, s, l, x, info);
        for (uint32_t i = 0; i < y->n; i++) {
            float sp = q->s[i];
            q->cur[i] = y->alpha[i] * q->cur[i] + q->pend[i];
            float thr = y->theta;
            if (y->alif) {
                q->adp[i] = y->rho[i] * q->adp[i] + (1.0f - y->rho[i]) * sp;
                thr += y->adapt[i] * q->adp[i];
            }
            float v;
            if (y->reset_sub)
                v = y->beta[i] * q->mem[i] + y->gamma[i] * q->cur[i] - q->thp[i] * sp;
            else
                v = y->beta[i] * q->mem[i] * (1.0f - sp) + y->gamma[i] * q->cur[i];
            q->mem[i] = v;
            q->s[i] = v > thr;
            q->thp[i] = thr;
        }
        spikes_update(q, y->n);
        info->hidden_spikes += q->nspk;
        info->hidden_neurons += y->n;
    }
    readout_input(m, s, info);
    for (uint32_t k = 0; k < m->n_ro; k++) {
        s->J[k] = m->oalpha[k] * s->J[k] + s->Uo[k];
        s->Y[k] = m->obeta[k] * s->Y[k] + m->ogamma[k] * s->J[k];
    }
}

static int rsnn_step(const snn_model *bm, snn_state *bs, const float *in, float *out, snn_step_info *info)
{
    const rsnn_model *m = (const rsnn_model *)bm;
    rsnn_state *s = (rsnn_state *)bs;
    snn_step_info local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (m->timing == TIMING_STORK)
        step_stork(m, s, in, info);
    else
        step_direct(m, s, in, info);
    info->dense_ops = m->dense_ops;
    info->has_output = 1;
    readout_output(m, s, out);
    return 0;
}

/* ---- description ------------------------------------------------------ */

static json_t *conn_json(const conn *c)
{
    uint64_t total = (uint64_t)c->n_pre * c->n_post;
    return json_pack("{s:[I,I], s:I, s:f, s:s}", "shape", (json_int_t)c->n_post, (json_int_t)c->n_pre, "nonzero",
                     (json_int_t)c->nnz, "sparsity", total ? 1.0 - (double)c->nnz / (double)total : 0.0, "storage",
                     c->dense ? "dense" : "csr");
}

static int rsnn_describe(const snn_model *bm, json_t *o)
{
    const rsnn_model *m = (const rsnn_model *)bm;
    json_t *layers = json_array();
    uint64_t zero = 0, total = 0;
    const conn *all[64];
    size_t na = 0;
    for (uint32_t l = 0; l < m->L; l++) {
        const layer *y = &m->layers[l];
        json_t *lj = json_pack("{s:I, s:s, s:b, s:s, s:f, s:o}", "size", (json_int_t)y->n, "neuron",
                               y->alif ? "alif" : "lif", "recurrent", y->recurrent, "reset",
                               y->reset_sub ? "subtract" : "zero", "threshold", (double)y->theta, "w_in",
                               conn_json(&y->in));
        if (y->recurrent)
            json_object_set_new(lj, "w_rec", conn_json(&y->rec));
        json_array_append_new(layers, lj);
        all[na++] = &y->in;
        if (y->recurrent)
            all[na++] = &y->rec;
    }
    all[na++] = &m->out;
    for (size_t i = 0; i < na; i++) {
        total += (uint64_t)all[i]->n_pre * all[i]->n_post;
        zero += (uint64_t)all[i]->n_pre * all[i]->n_post - all[i]->nnz;
    }
    json_object_set_new(o, "timing", json_string(m->timing == TIMING_STORK ? "stork" : "direct"));
    json_object_set_new(o, "layers", layers);
    json_object_set_new(o, "readout", json_pack("{s:I, s:I, s:o, s:s}", "size", (json_int_t)bm->n_out, "groups",
                                                (json_int_t)m->groups, "w", conn_json(&m->out), "activation",
                                                m->softmax ? "softmax" : "none"));
    json_object_set_new(o, "connection_sparsity", json_real(total ? (double)zero / (double)total : 0.0));
    json_object_set_new(o, "dense_synops_per_step", json_integer((json_int_t)m->dense_ops));
    json_t *prov = json_object_get(m->config, "provenance");
    if (prov)
        json_object_set(o, "provenance", prov);
    json_t *enc = json_object_get(m->config, "encoder");
    if (enc)
        json_object_set(o, "encoder", enc);
    return 0;
}

static const snn_model_ops rsnn_ops = {
    .kind = "rsnn",
    .free = rsnn_free,
    .state_new = rsnn_state_new,
    .state_free = rsnn_state_free,
    .state_reset = rsnn_state_reset,
    .step = rsnn_step,
    .finish = NULL,
    .describe = rsnn_describe,
};

uint32_t snn_rsnn_layers(const snn_model *m) { return ((const rsnn_model *)m)->L; }

uint32_t snn_rsnn_layer_size(const snn_model *m, uint32_t l)
{
    const rsnn_model *r = (const rsnn_model *)m;
    return l < r->L ? r->layers[l].n : 0;
}

const uint8_t *snn_rsnn_spikes(const snn_state *s, uint32_t l) { return ((const rsnn_state *)s)->ls[l].s; }

const json_t *snn_rsnn_config(const snn_model *m) { return ((const rsnn_model *)m)->config; }
