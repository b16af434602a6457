/*
 * rsnn_eprop.c -- e-prop on RSNN model files; the mapping is in rsnn_eprop.h.
 */
#include "rsnn_eprop.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

/* What a trainable file holds, read once. */
typedef struct bridge {
    snn_st st;
    json_t *cfg;
    uint32_t n_in, n_rec, n_out;
    int recurrent, binary, classification;
    float *w_in, *w_rec, *w_out; /* malloc'd */
} bridge;

static void bridge_close(bridge *b)
{
    free(b->w_in);
    free(b->w_rec);
    free(b->w_out);
    json_decref(b->cfg);
    snn_st_close(&b->st);
    memset(b, 0, sizeof *b);
}

static float *read_tensor(bridge *b, const char *name, uint64_t r, uint64_t c, uint32_t ndim,
                          uint64_t bcast, snn_err *err)
{
    uint64_t shape[2] = {r, c};
    uint64_t n = ndim == 2 ? r * c : (bcast ? bcast : r);
    float *d = malloc((size_t)n * sizeof(float));
    if (!d) {
        snn_err_set(err, SNN_ENOMEM, "%s: out of memory", b->st.path);
        return NULL;
    }
    if (snn_st_read(&b->st, name, shape, ndim, bcast, d, err) < 0) {
        free(d);
        return NULL;
    }
    return d;
}

/* 1 if all n values equal v[0] to within tol. */
static int uniform(const float *v, uint32_t n, double tol)
{
    for (uint32_t i = 1; i < n; i++)
        if (fabs((double)v[i] - (double)v[0]) > tol)
            return 0;
    return 1;
}

/* Reads the decay tensors of prefix pfx (n units) and checks alpha = 0, one beta,
 * gamma 1 or 1 - beta. *beta, *regular get the values. */
static int read_decay(bridge *b, json_t *obj, const char *pfx, uint32_t n, double *beta, int *regular,
                      snn_err *err)
{
    const char *path = b->st.path;
    const char *tau = json_string_value(json_object_get(obj, "tau"));
    if (tau && strcmp(tau, "decay"))
        return snn_err_set(err, SNN_ENOTSUP, "%s: config %s.tau: \"%s\" cannot be trained (e-prop needs \"decay\")",
                           path, pfx, tau);
    char nm[64];
    int rc = 0;
    float *al = NULL, *be = NULL, *ga = NULL;
    snprintf(nm, sizeof nm, "%s.alpha", pfx);
    if (!(al = read_tensor(b, nm, n, 0, 1, n, err))) {
        rc = -SNN_EFORMAT;
        goto out;
    }
    snprintf(nm, sizeof nm, "%s.beta", pfx);
    if (!(be = read_tensor(b, nm, n, 0, 1, n, err))) {
        rc = -SNN_EFORMAT;
        goto out;
    }
    for (uint32_t i = 0; i < n; i++)
        if (al[i] != 0.0f) {
            rc = snn_err_set(err, SNN_ENOTSUP, "%s: tensor %s.alpha[%u] = %g: e-prop needs alpha = 0 (no synaptic current)",
                             path, pfx, i, (double)al[i]);
            goto out;
        }
    if (!uniform(be, n, 0.0) || !(be[0] > 0.0f && be[0] < 1.0f)) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: tensor %s.beta: e-prop needs one decay in (0,1) for all units", path, pfx);
        goto out;
    }
    *beta = be[0];
    snprintf(nm, sizeof nm, "%s.gamma", pfx);
    int reg = 0;
    if (snn_st_find(&b->st, nm)) {
        if (!(ga = read_tensor(b, nm, n, 0, 1, n, err))) {
            rc = -SNN_EFORMAT;
            goto out;
        }
        if (uniform(ga, n, 0.0) && fabs((double)ga[0] - 1.0) < 1e-6)
            reg = 1;
        else if (!(uniform(ga, n, 0.0) && fabs((double)ga[0] - (1.0 - *beta)) < 1e-6)) {
            rc = snn_err_set(err, SNN_ENOTSUP, "%s: tensor %s.gamma: e-prop needs gamma = 1 or 1 - beta for all units",
                             path, pfx);
            goto out;
        }
    }
    *regular = reg;
out:
    free(al);
    free(be);
    free(ga);
    return rc;
}

/* Opens and checks a trainable file; fills p's network fields and b's weights. */
static int bridge_open(bridge *b, const char *path, snn_eprop_params *p, snn_err *err)
{
    memset(b, 0, sizeof *b);
    int rc = snn_st_open(&b->st, path, NULL, err);
    if (rc < 0)
        return rc;
    const char *fmt = snn_st_meta(&b->st, "format"), *cs = snn_st_meta(&b->st, "config");
    if (!fmt || strcmp(fmt, "snnd-rsnn") || !cs) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: not an snnd-rsnn model file", path);
        goto fail;
    }
    b->cfg = json_loads(cs, 0, NULL);
    if (!json_is_object(b->cfg)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: metadata config: not a JSON object", path);
        goto fail;
    }
    json_t *cfg = b->cfg;
    double dt = json_number_value(json_object_get(cfg, "dt"));
    if (!(dt > 0)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config dt: expected seconds per step > 0", path);
        goto fail;
    }
    const char *timing = json_string_value(json_object_get(cfg, "timing"));
    if (timing && strcmp(timing, "direct")) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config timing: \"%s\" cannot be trained (e-prop needs \"direct\")",
                         path, timing);
        goto fail;
    }
    json_t *in = json_object_get(cfg, "input"), *layers = json_object_get(cfg, "layers");
    json_t *ro = json_object_get(cfg, "readout");
    json_int_t ni = json_integer_value(json_object_get(in, "size"));
    if (ni < 1 || ni > (1 << 24) || !json_is_object(ro)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config: input.size or readout missing", path);
        goto fail;
    }
    if (!json_is_array(layers) || json_array_size(layers) != 1) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config layers: e-prop trains exactly one hidden layer (found %zu)",
                         path, json_is_array(layers) ? json_array_size(layers) : 0);
        goto fail;
    }
    json_t *lc = json_array_get(layers, 0);
    json_int_t nr = json_integer_value(json_object_get(lc, "size"));
    json_int_t no = json_integer_value(json_object_get(ro, "size"));
    if (nr < 1 || nr > (1 << 24) || no < 1 || no > (1 << 24)) {
        rc = snn_err_set(err, SNN_EFORMAT, "%s: config: layers[0].size or readout.size missing", path);
        goto fail;
    }
    b->n_in = (uint32_t)ni;
    b->n_rec = (uint32_t)nr;
    b->n_out = (uint32_t)no;
    b->binary = json_is_true(json_object_get(in, "binary"));
    const char *neuron = json_string_value(json_object_get(lc, "neuron"));
    const char *reset = json_string_value(json_object_get(lc, "reset"));
    if (!neuron || (strcmp(neuron, "lif") && strcmp(neuron, "alif"))) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config layers[0].neuron: e-prop needs \"lif\" or \"alif\"", path);
        goto fail;
    }
    if (!reset || strcmp(reset, "subtract")) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config layers[0].reset: e-prop needs \"subtract\"", path);
        goto fail;
    }
    if (json_is_true(json_object_get(lc, "bias")) || json_is_true(json_object_get(ro, "bias"))) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config: biases cannot be trained by e-prop (bias must be false)", path);
        goto fail;
    }
    json_t *groups = json_object_get(ro, "groups");
    if (groups && json_integer_value(groups) != 1) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config readout.groups: e-prop trains one readout group", path);
        goto fail;
    }
    json_t *y0 = json_object_get(ro, "initial_state");
    if (y0 && json_number_value(y0) != 0.0) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config readout.initial_state: e-prop needs 0", path);
        goto fail;
    }
    if (snn_st_find(&b->st, "readout.out_scale") || snn_st_find(&b->st, "readout.out_offset")) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: tensor readout.out_scale/out_offset: not supported by e-prop", path);
        goto fail;
    }
    json_t *th = json_object_get(lc, "threshold");
    double theta = th ? json_number_value(th) : 1.0;
    if (!(theta > 0)) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: config layers[0].threshold: e-prop needs a threshold > 0", path);
        goto fail;
    }
    b->recurrent = json_is_true(json_object_get(lc, "recurrent"));
    const char *task = json_string_value(json_object_get(ro, "task"));
    b->classification = task && !strcmp(task, "classification");

    double beta, kappa;
    int reg, reg_o;
    if ((rc = read_decay(b, lc, "layers.0", b->n_rec, &beta, &reg, err)) < 0 ||
        (rc = read_decay(b, ro, "readout", b->n_out, &kappa, &reg_o, err)) < 0)
        goto fail;
    if (reg != reg_o) {
        rc = snn_err_set(err, SNN_ENOTSUP, "%s: tensor readout.gamma: e-prop needs the layer's gain convention (%s)",
                         path, reg ? "gamma = 1" : "gamma = 1 - beta");
        goto fail;
    }
    double dt_ms = dt * 1000.0;
    uint32_t n_adapt = 0;
    double adapt_beta = 0.0, adapt_tau = 2000.0;
    if (!strcmp(neuron, "alif")) {
        float *ad = read_tensor(b, "layers.0.adapt", b->n_rec, 0, 1, 0, err);
        float *rh = ad ? read_tensor(b, "layers.0.rho", b->n_rec, 0, 1, 0, err) : NULL;
        if (!ad || !rh) {
            free(ad);
            rc = -SNN_EFORMAT;
            goto fail;
        }
        uint32_t first = b->n_rec;
        for (uint32_t i = 0; i < b->n_rec; i++)
            if (ad[i] != 0.0f && first == b->n_rec)
                first = i;
        rc = 0;
        for (uint32_t i = first; i < b->n_rec && !rc; i++)
            if (ad[i] != ad[first] || rh[i] != rh[first] || !(rh[i] > 0.0f && rh[i] < 1.0f))
                rc = snn_err_set(err, SNN_ENOTSUP,
                                 "%s: tensor layers.0.adapt/rho[%u]: e-prop needs the LIF neurons (adapt 0) first "
                                 "and one adapt > 0, one rho in (0,1) for the rest", path, i);
        if (!rc && first < b->n_rec) {
            n_adapt = b->n_rec - first;
            adapt_beta = (double)ad[first] * (1.0 - (double)rh[first]);
            adapt_tau = -dt_ms / log((double)rh[first]);
        }
        free(ad);
        free(rh);
        if (rc < 0)
            goto fail;
    }
    if (!(b->w_in = read_tensor(b, "layers.0.w_in", b->n_rec, b->n_in, 2, 0, err)) ||
        (b->recurrent && !(b->w_rec = read_tensor(b, "layers.0.w_rec", b->n_rec, b->n_rec, 2, 0, err))) ||
        !(b->w_out = read_tensor(b, "readout.w", b->n_out, b->n_rec, 2, 0, err))) {
        rc = -SNN_EFORMAT;
        goto fail;
    }
    p->n_in = b->n_in;
    p->n_rec = b->n_rec;
    p->n_out = b->n_out;
    p->n_adaptive = n_adapt;
    p->dt = dt_ms;
    p->tau_m = -dt_ms / log(beta);
    p->tau_out = -dt_ms / log(kappa);
    p->v_th = theta;
    p->adapt_tau = adapt_tau;
    p->adapt_beta = adapt_beta;
    p->regular_spike_arrival = reg;
    p->loss = b->classification ? SNN_EPROP_CROSS_ENTROPY : SNN_EPROP_MSE;
    p->t_ref_steps = 0;
    p->timing = SNN_EPROP_INTERVAL;
    p->reset = SNN_EPROP_RESET_SUBTRACT;
    p->reset_adapted = 1;
    if (!b->recurrent)
        p->learn_rec = 0;
    return 0;
fail:
    bridge_close(b);
    return rc;
}

int snn_rsnn_eprop_params(const char *model_path, snn_eprop_params *p, int *binary_input, snn_err *err)
{
    if (!model_path || !p)
        return snn_err_set(err, SNN_EINVAL, "rsnn_eprop: NULL argument");
    bridge b;
    int rc = bridge_open(&b, model_path, p, err);
    if (rc < 0)
        return rc;
    if (binary_input)
        *binary_input = b.binary;
    bridge_close(&b);
    return 0;
}

/* splitmix64 and Box-Muller: the fixed random feedback matrix and random initial weights. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double normal(uint64_t *s)
{
    double u1 = (double)((mix(s) >> 11) + 1) * (1.0 / 9007199254740993.0);
    double u2 = (double)(mix(s) >> 11) * (1.0 / 9007199254740992.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void snn_rsnn_eprop_random_weights(const snn_eprop_params *p, uint64_t seed, double w_in_std, double *w_in,
                                   double *w_rec, double *w_out)
{
    size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    for (size_t i = 0; i < nr * ni; i++)
        w_in[i] = normal(&seed) * w_in_std;
    for (size_t i = 0; i < nr * nr; i++)
        w_rec[i] = i % (nr + 1) ? normal(&seed) * 0.5 / sqrt((double)nr) : 0.0;
    memset(w_out, 0, no * nr * sizeof *w_out);
}

int snn_rsnn_eprop_new(const char *model_path, const snn_eprop_params *p, const snn_allocator *a,
                       snn_eprop **out, snn_err *err)
{
    if (out)
        *out = NULL;
    if (!model_path || !out)
        return snn_err_set(err, SNN_EINVAL, "rsnn_eprop: NULL argument");
    snn_eprop_params q = p ? *p : snn_eprop_params_default();
    bridge b;
    int rc = bridge_open(&b, model_path, &q, err);
    if (rc < 0)
        return rc;
    size_t ni = b.n_in, nr = b.n_rec, no = b.n_out;
    double *w_in = malloc(nr * ni * sizeof(double)), *w_rec = calloc(nr * nr, sizeof(double));
    double *w_out = malloc(no * nr * sizeof(double)), *fb = NULL;
    if (q.feedback == SNN_EPROP_FEEDBACK_RANDOM)
        fb = malloc(nr * no * sizeof(double));
    if (!w_in || !w_rec || !w_out || (q.feedback == SNN_EPROP_FEEDBACK_RANDOM && !fb)) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", model_path);
        goto out;
    }
    for (size_t i = 0; i < nr * ni; i++)
        w_in[i] = b.w_in[i];
    if (b.w_rec)
        for (size_t i = 0; i < nr * nr; i++)
            w_rec[i] = b.w_rec[i];
    for (size_t i = 0; i < no * nr; i++)
        w_out[i] = b.w_out[i];
    if (fb) {
        uint64_t seed = 0x5eed0e9a0b1ull;
        for (size_t i = 0; i < nr * no; i++)
            fb[i] = normal(&seed);
    }
    rc = snn_eprop_init(out, &q, w_in, w_rec, w_out, fb, a, err);
out:
    free(w_in);
    free(w_rec);
    free(w_out);
    free(fb);
    bridge_close(&b);
    return rc;
}

static float *to_float(const double *d, size_t n)
{
    float *f = malloc((n ? n : 1) * sizeof(float));
    if (f)
        for (size_t i = 0; i < n; i++)
            f[i] = (float)d[i];
    return f;
}

int snn_rsnn_eprop_save(const snn_eprop *e, const char *src_model_path, const char *dst_path,
                        snn_err *err)
{
    if (!e || !src_model_path || !dst_path)
        return snn_err_set(err, SNN_EINVAL, "rsnn_eprop: NULL argument");
    snn_eprop_params scratch = snn_eprop_params_default();
    bridge b;
    int rc = bridge_open(&b, src_model_path, &scratch, err);
    if (rc < 0)
        return rc;
    size_t r_in, c_in, r_rec, c_rec, r_out, c_out;
    const double *w_in = snn_eprop_weights(e, SNN_EPROP_IN, &r_in, &c_in);
    const double *w_rec = snn_eprop_weights(e, SNN_EPROP_REC, &r_rec, &c_rec);
    const double *w_out = snn_eprop_weights(e, SNN_EPROP_OUT, &r_out, &c_out);
    size_t nt = b.st.n_tensors;
    snn_st_out *t = calloc(nt ? nt : 1, sizeof *t);
    float **bufs = calloc(nt ? nt : 1, sizeof *bufs);
    json_t *meta = NULL;
    if (!t || !bufs) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", dst_path);
        goto out;
    }
    if (r_in != b.n_rec || c_in != b.n_in || r_out != b.n_out || c_out != b.n_rec) {
        rc = snn_err_set(err, SNN_ESHAPE, "%s: network %zux%zu -> %zu does not match the file's %ux%u -> %u",
                         src_model_path, c_in, r_in, r_out, b.n_in, b.n_rec, b.n_out);
        goto out;
    }
    for (size_t i = 0; i < nt; i++) {
        snn_st_tensor *s = &b.st.tensors[i];
        t[i].name = s->name;
        t[i].ndim = s->ndim;
        memcpy(t[i].shape, s->shape, sizeof t[i].shape);
        t[i].dtype = s->dtype;
        if (!strcmp(s->name, "layers.0.w_in")) {
            bufs[i] = to_float(w_in, r_in * c_in);
            t[i].dtype = SNN_DT_F32;
        } else if (!strcmp(s->name, "layers.0.w_rec") && b.recurrent) {
            bufs[i] = to_float(w_rec, r_rec * c_rec);
            t[i].dtype = SNN_DT_F32;
        } else if (!strcmp(s->name, "readout.w")) {
            bufs[i] = to_float(w_out, r_out * c_out);
            t[i].dtype = SNN_DT_F32;
        } else {
            bufs[i] = malloc((size_t)(s->numel ? s->numel : 1) * sizeof(float));
            if (bufs[i] && (rc = snn_st_read(&b.st, s->name, s->shape, s->ndim, 0, bufs[i], err)) < 0)
                goto out;
        }
        if (!bufs[i]) {
            rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", dst_path);
            goto out;
        }
        t[i].data = bufs[i];
    }
    meta = b.st.metadata ? json_deep_copy(b.st.metadata) : json_object();
    const char *slash = strrchr(src_model_path, '/');
    json_t *tr = json_pack("{s:s, s:s, s:I}", "rule", "e-prop (models/eprop.c, interval timing)", "source",
                           slash ? slash + 1 : src_model_path, "intervals", (json_int_t)snn_eprop_intervals(e));
    if (!meta || !tr) {
        json_decref(tr);
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", dst_path);
        goto out;
    }
    json_object_set_new(b.cfg, "training", tr);
    char *cs = json_dumps(b.cfg, JSON_COMPACT);
    if (!cs || json_object_set_new(meta, "config", json_string(cs)) < 0) {
        free(cs);
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", dst_path);
        goto out;
    }
    free(cs);
    rc = snn_st_write(dst_path, meta, t, nt, err);
out:
    json_decref(meta);
    if (bufs)
        for (size_t i = 0; i < nt; i++)
            free(bufs[i]);
    free(bufs);
    free(t);
    bridge_close(&b);
    return rc;
}

int snn_rsnn_eprop_create(const char *dst_path, const char *name, const snn_eprop_params *p,
                          const double *w_in, const double *w_rec, const double *w_out, snn_err *err)
{
    if (!dst_path || !p || !w_in || !w_rec || !w_out)
        return snn_err_set(err, SNN_EINVAL, "rsnn_eprop: NULL argument");
    if (!p->n_in || !p->n_rec || !p->n_out || p->n_adaptive > p->n_rec || !(p->dt > 0) || !(p->tau_m > 0) ||
        !(p->tau_out > 0) || !(p->v_th > 0) || (p->n_adaptive && !(p->adapt_tau > 0)))
        return snn_err_set(err, SNN_EINVAL, "%s: eprop params: sizes, dt, tau_m, tau_out, v_th, adapt_tau must be > 0",
                           dst_path);
    const size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    const int alif = p->n_adaptive > 0, cls = p->loss == SNN_EPROP_CROSS_ENTROPY;
    float alpha = (float)exp(-p->dt / p->tau_m), kappa = (float)exp(-p->dt / p->tau_out);
    float zero = 0.0f, gam = p->regular_spike_arrival ? 1.0f : 1.0f - alpha;
    float gam_o = p->regular_spike_arrival ? 1.0f : 1.0f - kappa;
    float *fi = to_float(w_in, nr * ni), *fr = to_float(w_rec, nr * nr), *fo = to_float(w_out, no * nr);
    float *ad = calloc(nr, sizeof(float)), *rh = calloc(nr, sizeof(float));
    json_t *cfg = NULL, *meta = NULL;
    int rc = 0;
    if (!fi || !fr || !fo || !ad || !rh) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", dst_path);
        goto out;
    }
    double rho = exp(-p->dt / p->adapt_tau);
    for (size_t j = 0; j < nr; j++) {
        rh[j] = (float)rho;
        ad[j] = j >= nr - p->n_adaptive ? (float)(p->adapt_beta / (1.0 - rho)) : 0.0f;
    }
    cfg = json_pack("{s:s, s:s, s:f, s:s, s:{s:I, s:s}, s:[{s:I, s:s, s:b, s:b, s:s, s:f, s:s}],"
                    " s:{s:I, s:b, s:s, s:s, s:s}}",
                    "name", name ? name : "eprop", "description", "trainable by e-prop (models/rsnn_eprop.h)",
                    "dt", p->dt / 1000.0, "timing", "direct",
                    "input", "size", (json_int_t)ni, "kind", "spikes",
                    "layers", "size", (json_int_t)nr, "neuron", alif ? "alif" : "lif", "recurrent", 1, "bias", 0,
                    "reset", "subtract", "threshold", p->v_th, "tau", "decay",
                    "readout", "size", (json_int_t)no, "bias", 0, "task", cls ? "classification" : "regression",
                    "tau", "decay", "activation", cls ? "softmax" : "none");
    char *cs = cfg ? json_dumps(cfg, JSON_COMPACT) : NULL;
    meta = cs ? json_pack("{s:s, s:s, s:s}", "format", "snnd-rsnn", "version", "1", "config", cs) : NULL;
    free(cs);
    if (!meta) {
        rc = snn_err_set(err, SNN_ENOMEM, "%s: out of memory", dst_path);
        goto out;
    }
    snn_st_out t[11] = {
        {.name = "layers.0.w_in", .dtype = SNN_DT_F32, .ndim = 2, .shape = {nr, ni}, .data = fi},
        {.name = "layers.0.w_rec", .dtype = SNN_DT_F32, .ndim = 2, .shape = {nr, nr}, .data = fr},
        {.name = "layers.0.alpha", .dtype = SNN_DT_F32, .ndim = 1, .shape = {1}, .data = &zero},
        {.name = "layers.0.beta", .dtype = SNN_DT_F32, .ndim = 1, .shape = {1}, .data = &alpha},
        {.name = "layers.0.gamma", .dtype = SNN_DT_F32, .ndim = 1, .shape = {1}, .data = &gam},
        {.name = "readout.w", .dtype = SNN_DT_F32, .ndim = 2, .shape = {no, nr}, .data = fo},
        {.name = "readout.alpha", .dtype = SNN_DT_F32, .ndim = 1, .shape = {1}, .data = &zero},
        {.name = "readout.beta", .dtype = SNN_DT_F32, .ndim = 1, .shape = {1}, .data = &kappa},
        {.name = "readout.gamma", .dtype = SNN_DT_F32, .ndim = 1, .shape = {1}, .data = &gam_o},
        {.name = "layers.0.adapt", .dtype = SNN_DT_F32, .ndim = 1, .shape = {nr}, .data = ad},
        {.name = "layers.0.rho", .dtype = SNN_DT_F32, .ndim = 1, .shape = {nr}, .data = rh},
    };
    rc = snn_st_write(dst_path, meta, t, alif ? 11 : 9, err);
out:
    json_decref(cfg);
    json_decref(meta);
    free(fi);
    free(fr);
    free(fo);
    free(ad);
    free(rh);
    return rc;
}

void snn_rsnn_eprop_input(const float *in, uint32_t n, int binary, uint8_t *x)
{
    for (uint32_t i = 0; i < n; i++) {
        float v = in[i];
        if (binary)
            x[i] = v != 0.0f;
        else
            x[i] = !(v > 0.0f) ? 0 : v >= 255.0f ? 255 : (uint8_t)lrintf(v);
    }
}
