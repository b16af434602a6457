/*
 * eprop.c -- e-prop online learning; the equations are in eprop.h.
 *
 * All arrays live in one block allocated at init and carved up by a bump
 * pointer, so a step touches no allocator and a failed init frees one block.
 */
#include "eprop.h"

#include <math.h>
#include <string.h>

/* Steps of interval timing folded into the LIF rows' traces at once (fewer = less
 * memory, more = fewer passes over ebar). */
#ifndef SNN_EPROP_CHUNK
#define SNN_EPROP_CHUNK 128u
#endif

/* flush_row's loops are element-wise (no reductions): an AVX2 clone, picked at load
 * time on x86-64, gives bit-identical results twice as wide. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SNN_EPROP_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef SNN_EPROP_CLONES
#define SNN_EPROP_CLONES
#endif

struct snn_eprop {
    snn_eprop_params p;
    const snn_allocator *a;
    void *block;
    double alpha, kappa, rho, c_in, c_out;
    uint32_t n_lif; /* neurons [0, n_lif) are LIF, [n_lif, n_rec) adaptive */
    /* weights and feedback */
    double *w_in, *w_rec, *w_out, *b_fb;
    /* neuron and readout state */
    double *v, *adapt, *psi, *y, *outv, *err, *L;
    uint32_t *ref, *nspk, *active;
    uint8_t *z, *z_prev;
    /* presynaptic traces */
    double *zbar_in, *zbar_rec, *zout;
    /* per-synapse state; NULL where the rule does not need it */
    double *ebar_in, *g_in, *s_in, *eps_in;
    double *ebar_rec, *g_rec, *s_rec, *eps_rec;
    double *g_out;
    /* interval timing, LIF rows: the steps since the last flush are kept (presynaptic
     * traces, psi, L) and folded into ebar, G, S by one pass per chunk (see flush_lif) */
    double *hz_in, *hz_rec, *h_psi, *h_L, *h_a, *h_b;
    uint32_t *h_t;
    uint32_t h_cap, h_n;
    int h_gdone; /* the recorded steps are already in G and S */
    double *m_in, *q_in, *m_rec, *q_rec, *m_out, *q_out; /* Adam moments */
    /* continuous timing: the previous step's neuron values (its synapses are
     * evaluated one step late), rate estimates, per-presynaptic bookkeeping */
    double *f_av, *freg, *psi_prev, *L_prev, *freg_prev, *err_prev;
    uint8_t *x_prev, *z_prev2, *proc;
    double *ebreg_in, *ebreg_rec;
    int64_t *last_in, *last_rec, *last_out;    /* latest presynaptic arrival (-1 none) */
    int64_t *alast_in, *alast_rec, *alast_out; /* last step evaluated, for Adam (-1 none) */
    int64_t *iters;        /* scratch: Adam iterations per presynaptic neuron */
    double *b1p_in, *b2p_in, *b1p_rec, *b2p_rec, *b1p_out, *b2p_out; /* Adam beta powers */
    int64_t n;             /* steps since init/reset */
    uint32_t k;            /* step inside the interval */
    uint32_t batch_count;  /* intervals accumulated toward the next update */
    uint64_t intervals;
    uint64_t adam_step;
    double loss_run, loss_last;
    int learning;
};

snn_eprop_params snn_eprop_params_default(void)
{
    snn_eprop_params p;
    memset(&p, 0, sizeof p);
    p.dt = 1.0;
    p.tau_m = 30.0;
    p.tau_out = 30.0;
    p.v_th = 0.03;
    p.adapt_tau = 2000.0;
    p.adapt_beta = 0.0174;
    p.t_ref_steps = 0;
    p.psi_height = 10.0;
    p.psi_width = 0.03;
    p.regular_spike_arrival = 0;
    p.c_reg = 300.0;
    p.f_target_hz = 10.0;
    p.loss = SNN_EPROP_MSE;
    p.feedback = SNN_EPROP_FEEDBACK_RANDOM;
    p.optimizer = SNN_EPROP_SGD;
    p.eta = 1e-4;
    p.adam_beta1 = 0.9;
    p.adam_beta2 = 0.999;
    p.adam_epsilon = 1e-7;
    p.w_min = -100.0;
    p.w_max = 100.0;
    p.learn_in = p.learn_rec = p.learn_out = 1;
    p.no_autapses = 1;
    p.update_interval = 1000;
    p.learning_window = 1000;
    p.batch_size = 1;
    p.reset_on_update = 1;
    p.average_gradient = 0;
    p.timing = SNN_EPROP_INTERVAL;
    p.reset = SNN_EPROP_RESET_SUBTRACT;
    p.v_reset = 0.0;
    p.kappa = 0.97;
    p.kappa_reg = 0.97;
    p.isi_trace_cutoff = 0;
    p.adam_t0 = 0;
    return p;
}

/* Returns 0 if p is usable, else -SNN_EINVAL with the field named in err. */
static int check_params(const snn_eprop_params *p, snn_err *err)
{
#define BAD(cond, ...) \
    do { \
        if (cond) \
            return snn_err_set(err, SNN_EINVAL, "eprop params: " __VA_ARGS__); \
    } while (0)
    BAD(p->n_in == 0 || p->n_rec == 0 || p->n_out == 0,
        "n_in, n_rec, n_out must be > 0 (got %u, %u, %u)", p->n_in, p->n_rec, p->n_out);
    BAD(p->n_adaptive > p->n_rec, "n_adaptive %u > n_rec %u", p->n_adaptive, p->n_rec);
    BAD(!(p->dt > 0), "dt must be > 0 (got %g)", p->dt);
    BAD(!(p->tau_m > 0), "tau_m must be > 0 (got %g)", p->tau_m);
    BAD(!(p->tau_out > 0), "tau_out must be > 0 (got %g)", p->tau_out);
    BAD(p->n_adaptive && !(p->adapt_tau > 0), "adapt_tau must be > 0 (got %g)", p->adapt_tau);
    BAD(!(p->adapt_beta >= 0), "adapt_beta must be >= 0 (got %g)", p->adapt_beta);
    BAD(!(p->psi_width > 0), "psi_width must be > 0 (got %g)", p->psi_width);
    BAD(!(p->psi_height >= 0), "psi_height must be >= 0 (got %g)", p->psi_height);
    BAD(p->psi_shape != SNN_EPROP_PIECEWISE_LINEAR && p->psi_shape != SNN_EPROP_EXPONENTIAL &&
            p->psi_shape != SNN_EPROP_FAST_SIGMOID_DERIV && p->psi_shape != SNN_EPROP_ARCTAN_DERIV,
        "unknown psi_shape %d", (int)p->psi_shape);
    BAD(!(p->c_reg >= 0), "c_reg must be >= 0 (got %g)", p->c_reg);
    BAD(!(p->f_target_hz >= 0), "f_target_hz must be >= 0 (got %g)", p->f_target_hz);
    BAD(p->readout_spike_arrival < 0 || p->readout_spike_arrival > 2,
        "readout_spike_arrival must be 0, 1 or 2 (got %d)", p->readout_spike_arrival);
    BAD(p->loss != SNN_EPROP_MSE && p->loss != SNN_EPROP_CROSS_ENTROPY, "unknown loss %d",
        (int)p->loss);
    BAD(p->feedback != SNN_EPROP_FEEDBACK_SYMMETRIC && p->feedback != SNN_EPROP_FEEDBACK_RANDOM,
        "unknown feedback %d", (int)p->feedback);
    BAD(p->optimizer != SNN_EPROP_SGD && p->optimizer != SNN_EPROP_ADAM, "unknown optimizer %d",
        (int)p->optimizer);
    BAD(!(p->eta >= 0), "eta must be >= 0 (got %g)", p->eta);
    BAD(p->optimizer == SNN_EPROP_ADAM &&
            !(p->adam_beta1 >= 0 && p->adam_beta1 < 1 && p->adam_beta2 >= 0 && p->adam_beta2 < 1 &&
              p->adam_epsilon > 0),
        "adam_beta1/adam_beta2 must be in [0,1) and adam_epsilon > 0 (got %g, %g, %g)",
        p->adam_beta1, p->adam_beta2, p->adam_epsilon);
    BAD(!(p->w_min <= p->w_max), "w_min %g > w_max %g", p->w_min, p->w_max);
    BAD(p->update_interval == 0, "update_interval must be > 0");
    BAD(p->learning_window == 0 || p->learning_window > p->update_interval,
        "learning_window %u must be in 1..update_interval (%u)", p->learning_window,
        p->update_interval);
    BAD(p->batch_size == 0, "batch_size must be > 0");
    BAD(p->timing != SNN_EPROP_INTERVAL && p->timing != SNN_EPROP_CONTINUOUS, "unknown timing %d",
        (int)p->timing);
    BAD(p->reset != SNN_EPROP_RESET_SUBTRACT &&
            (p->reset != SNN_EPROP_RESET_TO_VALUE || p->timing != SNN_EPROP_CONTINUOUS),
        "reset %d needs continuous timing (or use subtract)", (int)p->reset);
    BAD(p->timing == SNN_EPROP_CONTINUOUS && !(p->kappa >= 0 && p->kappa < 1),
        "kappa must be in [0,1) (got %g)", p->kappa);
    BAD(p->timing == SNN_EPROP_CONTINUOUS && !(p->kappa_reg >= 0 && p->kappa_reg < 1),
        "kappa_reg must be in [0,1) (got %g)", p->kappa_reg);
#undef BAD
    return 0;
}

/* Bump allocation inside the one block: returns the next n elements of size sz
 * (8-byte aligned), or only counts when base is NULL. */
static void *carve(char *base, size_t *off, size_t n, size_t sz)
{
    size_t o = (*off + 7) & ~(size_t)7;
    *off = o + n * sz;
    return base ? base + o : NULL;
}

/* Lays out every array of e in base (or only sizes the block when base is NULL);
 * returns the block size. */
static size_t layout(snn_eprop *e, char *base)
{
    const snn_eprop_params *p = &e->p;
    size_t ni = p->n_in, nr = p->n_rec, no = p->n_out, na = p->n_adaptive, off = 0;
    size_t d = sizeof(double);
    int reg = p->c_reg > 0, adam = p->optimizer == SNN_EPROP_ADAM;
    int cont = p->timing == SNN_EPROP_CONTINUOUS;
    e->w_in = carve(base, &off, nr * ni, d);
    e->w_rec = carve(base, &off, nr * nr, d);
    e->w_out = carve(base, &off, no * nr, d);
    e->b_fb = p->feedback == SNN_EPROP_FEEDBACK_RANDOM ? carve(base, &off, nr * no, d) : NULL;
    e->v = carve(base, &off, nr, d);
    e->adapt = carve(base, &off, nr, d);
    e->psi = carve(base, &off, nr, d);
    e->y = carve(base, &off, no, d);
    e->outv = carve(base, &off, no, d);
    e->err = carve(base, &off, no, d);
    e->L = carve(base, &off, nr, d);
    e->zbar_in = carve(base, &off, ni, d);
    e->zbar_rec = carve(base, &off, nr, d);
    e->zout = carve(base, &off, nr, d);
    e->ebar_in = e->g_in = e->s_in = e->eps_in = NULL;
    e->ebar_rec = e->g_rec = e->s_rec = e->eps_rec = NULL;
    e->m_in = e->q_in = e->m_rec = e->q_rec = e->m_out = e->q_out = NULL;
    if (p->learn_in) {
        e->ebar_in = carve(base, &off, nr * ni, d);
        e->g_in = cont ? NULL : carve(base, &off, nr * ni, d);
        e->s_in = reg && !cont ? carve(base, &off, nr * ni, d) : NULL;
        e->eps_in = na ? carve(base, &off, na * ni, d) : NULL;
        if (adam) {
            e->m_in = carve(base, &off, nr * ni, d);
            e->q_in = carve(base, &off, nr * ni, d);
        }
    }
    if (p->learn_rec) {
        e->ebar_rec = carve(base, &off, nr * nr, d);
        e->g_rec = cont ? NULL : carve(base, &off, nr * nr, d);
        e->s_rec = reg && !cont ? carve(base, &off, nr * nr, d) : NULL;
        e->eps_rec = na ? carve(base, &off, na * nr, d) : NULL;
        if (adam) {
            e->m_rec = carve(base, &off, nr * nr, d);
            e->q_rec = carve(base, &off, nr * nr, d);
        }
    }
    if (cont) {
        /* continuous timing applies each step's gradient at once: no G, S */
        e->ebreg_in = p->learn_in && reg ? carve(base, &off, nr * ni, d) : NULL;
        e->ebreg_rec = p->learn_rec && reg ? carve(base, &off, nr * nr, d) : NULL;
        e->f_av = carve(base, &off, nr, d);
        e->freg = carve(base, &off, nr, d);
        e->psi_prev = carve(base, &off, nr, d);
        e->L_prev = carve(base, &off, nr, d);
        e->freg_prev = carve(base, &off, nr, d);
        e->err_prev = carve(base, &off, no, d);
        size_t i8 = sizeof(int64_t);
        e->last_in = carve(base, &off, ni, i8);
        e->last_rec = carve(base, &off, nr, i8);
        e->last_out = carve(base, &off, nr, i8);
        e->alast_in = carve(base, &off, ni, i8);
        e->alast_rec = carve(base, &off, nr, i8);
        e->alast_out = carve(base, &off, nr, i8);
        e->b1p_in = adam ? carve(base, &off, ni, d) : NULL;
        e->b2p_in = adam ? carve(base, &off, ni, d) : NULL;
        e->b1p_rec = adam ? carve(base, &off, nr, d) : NULL;
        e->b2p_rec = adam ? carve(base, &off, nr, d) : NULL;
        e->b1p_out = adam ? carve(base, &off, nr, d) : NULL;
        e->b2p_out = adam ? carve(base, &off, nr, d) : NULL;
        e->x_prev = carve(base, &off, ni, 1);
        e->z_prev2 = carve(base, &off, nr, 1);
        e->proc = carve(base, &off, ni > nr ? ni : nr, 1);
        e->iters = carve(base, &off, ni > nr ? ni : nr, sizeof(int64_t));
    } else {
        e->ebreg_in = e->ebreg_rec = NULL;
    }
    e->hz_in = e->hz_rec = e->h_psi = e->h_L = e->h_a = e->h_b = NULL;
    e->h_t = NULL;
    e->h_cap = 0;
    size_t nl = nr - na;
    if (!cont && (p->learn_in || p->learn_rec) && nl > 0) {
        e->h_cap = p->update_interval < SNN_EPROP_CHUNK ? p->update_interval : SNN_EPROP_CHUNK;
        size_t h = e->h_cap;
        e->hz_in = p->learn_in ? carve(base, &off, h * ni, d) : NULL;
        e->hz_rec = p->learn_rec ? carve(base, &off, h * nr, d) : NULL;
        e->h_psi = carve(base, &off, h * nl, d);
        e->h_L = carve(base, &off, h * nl, d);
        e->h_a = carve(base, &off, h, d);
        e->h_b = carve(base, &off, h, d);
        e->h_t = carve(base, &off, h, sizeof(uint32_t));
    }
    e->g_out = p->learn_out && !cont ? carve(base, &off, no * nr, d) : NULL;
    if (p->learn_out && adam) {
        e->m_out = carve(base, &off, no * nr, d);
        e->q_out = carve(base, &off, no * nr, d);
    }
    e->ref = carve(base, &off, nr, sizeof(uint32_t));
    e->nspk = carve(base, &off, nr, sizeof(uint32_t));
    e->active = carve(base, &off, ni > nr ? ni : nr, sizeof(uint32_t));
    e->z = carve(base, &off, nr, 1);
    e->z_prev = carve(base, &off, nr, 1);
    return off;
}

/* Zeroes the per-interval traces and accumulators that restart at k = 0. */
static void clear_traces(snn_eprop *e)
{
    const snn_eprop_params *p = &e->p;
    size_t ni = p->n_in, nr = p->n_rec, na = p->n_adaptive;
    memset(e->zbar_in, 0, ni * sizeof(double));
    memset(e->zbar_rec, 0, nr * sizeof(double));
    memset(e->zout, 0, nr * sizeof(double));
    if (e->ebar_in)
        memset(e->ebar_in, 0, nr * ni * sizeof(double));
    if (e->eps_in)
        memset(e->eps_in, 0, na * ni * sizeof(double));
    if (e->ebar_rec)
        memset(e->ebar_rec, 0, nr * nr * sizeof(double));
    if (e->eps_rec)
        memset(e->eps_rec, 0, na * nr * sizeof(double));
    e->h_n = 0;
    e->h_gdone = 0;
}

/* Zeroes the gradient accumulators (G, S) of every group. */
static void clear_gradients(snn_eprop *e)
{
    size_t ni = e->p.n_in, nr = e->p.n_rec, no = e->p.n_out;
    if (e->g_in)
        memset(e->g_in, 0, nr * ni * sizeof(double));
    if (e->s_in)
        memset(e->s_in, 0, nr * ni * sizeof(double));
    if (e->g_rec)
        memset(e->g_rec, 0, nr * nr * sizeof(double));
    if (e->s_rec)
        memset(e->s_rec, 0, nr * nr * sizeof(double));
    if (e->g_out)
        memset(e->g_out, 0, no * nr * sizeof(double));
}

/* Zeroes neuron and readout state (the reset at an interval start). */
static void clear_neurons(snn_eprop *e)
{
    size_t nr = e->p.n_rec, no = e->p.n_out;
    memset(e->v, 0, nr * sizeof(double));
    memset(e->adapt, 0, nr * sizeof(double));
    memset(e->ref, 0, nr * sizeof(uint32_t));
    memset(e->z_prev, 0, nr);
    memset(e->y, 0, no * sizeof(double));
}

int snn_eprop_init(snn_eprop **out, const snn_eprop_params *p, const double *w_in,
                   const double *w_rec, const double *w_out, const double *b_fb,
                   const snn_allocator *a, snn_err *err)
{
    if (!out || !p)
        return snn_err_set(err, SNN_EINVAL, "eprop: NULL %s", out ? "params" : "out");
    *out = NULL;
    int rc = check_params(p, err);
    if (rc)
        return rc;
    if (p->feedback == SNN_EPROP_FEEDBACK_RANDOM && !b_fb)
        return snn_err_set(err, SNN_EINVAL, "eprop: feedback random needs b_fb (n_rec x n_out)");
    a = snn_alloc_or_default(a);
    snn_eprop *e = a->calloc(1, sizeof *e);
    if (!e)
        return snn_err_set(err, SNN_ENOMEM, "eprop: out of memory for the network");
    e->p = *p;
    e->a = a;
    size_t bytes = layout(e, NULL);
    e->block = a->calloc(1, bytes);
    if (!e->block) {
        a->free(e);
        return snn_err_set(err, SNN_ENOMEM, "eprop: out of memory for %zu bytes of state", bytes);
    }
    layout(e, e->block);

    size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    if (w_in)
        memcpy(e->w_in, w_in, nr * ni * sizeof(double));
    if (w_rec)
        memcpy(e->w_rec, w_rec, nr * nr * sizeof(double));
    if (w_out)
        memcpy(e->w_out, w_out, no * nr * sizeof(double));
    if (e->b_fb)
        memcpy(e->b_fb, b_fb, nr * no * sizeof(double));
    if (p->no_autapses)
        for (size_t j = 0; j < nr; j++)
            e->w_rec[j * nr + j] = 0.0;

    e->alpha = exp(-p->dt / p->tau_m);
    e->kappa = exp(-p->dt / p->tau_out);
    e->rho = p->n_adaptive ? exp(-p->dt / p->adapt_tau) : 0.0;
    e->c_in = p->regular_spike_arrival ? 1.0 : 1.0 - e->alpha;
    int regular_out = p->readout_spike_arrival ? p->readout_spike_arrival == 1
                                               : p->regular_spike_arrival;
    e->c_out = regular_out ? 1.0 : 1.0 - e->kappa;
    e->n_lif = p->n_rec - p->n_adaptive;
    e->learning = 1;
    snn_eprop_reset(e);
    *out = e;
    return 0;
}

void snn_eprop_free(snn_eprop *e)
{
    if (!e)
        return;
    const snn_allocator *a = e->a;
    a->free(e->block);
    a->free(e);
}

void snn_eprop_reset(snn_eprop *e)
{
    clear_neurons(e);
    clear_traces(e);
    clear_gradients(e);
    memset(e->z, 0, e->p.n_rec);
    memset(e->nspk, 0, e->p.n_rec * sizeof(uint32_t));
    memset(e->psi, 0, e->p.n_rec * sizeof(double));
    memset(e->L, 0, e->p.n_rec * sizeof(double));
    memset(e->err, 0, e->p.n_out * sizeof(double));
    memset(e->outv, 0, e->p.n_out * sizeof(double));
    if (e->p.timing == SNN_EPROP_CONTINUOUS) {
        size_t ni = e->p.n_in, nr = e->p.n_rec, no = e->p.n_out;
        if (e->ebreg_in)
            memset(e->ebreg_in, 0, nr * ni * sizeof(double));
        if (e->ebreg_rec)
            memset(e->ebreg_rec, 0, nr * nr * sizeof(double));
        memset(e->f_av, 0, nr * sizeof(double));
        memset(e->freg, 0, nr * sizeof(double));
        memset(e->psi_prev, 0, nr * sizeof(double));
        memset(e->L_prev, 0, nr * sizeof(double));
        memset(e->freg_prev, 0, nr * sizeof(double));
        memset(e->err_prev, 0, no * sizeof(double));
        memset(e->x_prev, 0, ni);
        memset(e->z_prev2, 0, nr);
        for (size_t i = 0; i < ni; i++)
            e->last_in[i] = e->alast_in[i] = -1;
        for (size_t i = 0; i < nr; i++)
            e->last_rec[i] = e->last_out[i] = e->alast_rec[i] = e->alast_out[i] = -1;
        if (e->b1p_in) {
            for (size_t i = 0; i < ni; i++)
                e->b1p_in[i] = e->b2p_in[i] = 1.0;
            for (size_t i = 0; i < nr; i++)
                e->b1p_rec[i] = e->b2p_rec[i] = e->b1p_out[i] = e->b2p_out[i] = 1.0;
        }
    }
    e->n = 0;
    e->k = 0;
    e->batch_count = 0;
    e->intervals = 0;
    e->loss_run = e->loss_last = 0.0;
}

void snn_eprop_set_learning(snn_eprop *e, int on)
{
    e->learning = on ? 1 : 0;
}

const double *snn_eprop_weights(const snn_eprop *e, snn_eprop_group g, size_t *rows, size_t *cols)
{
    size_t r = e->p.n_rec, c = e->p.n_in;
    const double *w = e->w_in;
    if (g == SNN_EPROP_REC) {
        c = e->p.n_rec;
        w = e->w_rec;
    } else if (g == SNN_EPROP_OUT) {
        r = e->p.n_out;
        c = e->p.n_rec;
        w = e->w_out;
    }
    if (rows)
        *rows = r;
    if (cols)
        *cols = c;
    return w;
}

double snn_eprop_last_loss(const snn_eprop *e) { return e->loss_last; }
uint64_t snn_eprop_intervals(const snn_eprop *e) { return e->intervals; }
const uint8_t *snn_eprop_spikes(const snn_eprop *e) { return e->z; }
const double *snn_eprop_psi(const snn_eprop *e) { return e->psi; }

/* Eligibility and gradient accumulation for one input or recurrent group, rows
 * j0..n_rec-1, one step: e_ji = psi_j (zbar_i - beta eps_ji), eps, ebar, G += L ebar,
 * S += e. */
static void accumulate_group(snn_eprop *e, size_t j0, size_t npre, const double *zbar,
                             double *ebar, double *g, double *s, double *eps)
{
    const double kappa = e->kappa, one_k = 1.0 - e->kappa, rho = e->rho,
                 beta = e->p.adapt_beta;
    for (size_t j = j0; j < e->p.n_rec; j++) {
        const double psi = e->psi[j], L = e->L[j];
        double *eb = ebar + j * npre, *gr = g + j * npre;
        double *sr = s ? s + j * npre : NULL;
        if (j >= e->n_lif && eps) {
            double *ep = eps + (j - e->n_lif) * npre;
            for (size_t i = 0; i < npre; i++) {
                double el = psi * (zbar[i] - beta * ep[i]);
                ep[i] = rho * ep[i] + el;
                eb[i] = kappa * eb[i] + one_k * el;
                gr[i] += L * eb[i];
                if (sr)
                    sr[i] += el;
            }
        } else if (psi != 0.0) {
            for (size_t i = 0; i < npre; i++) {
                double el = psi * zbar[i];
                eb[i] = kappa * eb[i] + one_k * el;
                gr[i] += L * eb[i];
                if (sr)
                    sr[i] += el;
            }
        } else {
            /* psi = 0: e = 0, ebar only decays */
            for (size_t i = 0; i < npre; i++) {
                eb[i] *= kappa;
                gr[i] += L * eb[i];
            }
        }
    }
}

/* Folds one chunk of n recorded steps t = 0..n-1 (presynaptic traces z(t), psi_j(t),
 * L_j(t)) into one LIF row of a group: with the backward-filtered signal
 * Lb(t) = sum_{u>=t} kappa^(u-t) L(u), unrolling ebar(t) = kappa ebar(t-1) +
 * (1-kappa) psi(t) z(t) from ebar0 (the row at the chunk start) gives
 *   sum_t L(t) ebar(t) = kappa Lb(0) ebar0 + sum_t (1-kappa) psi(t) Lb(t) z(t)   (-> G)
 *   ebar(n-1) = kappa^n ebar0 + sum_t (1-kappa) kappa^(n-1-t) psi(t) z(t)
 *   sum_t e(t) = sum_t psi(t) z(t)                                              (-> S)
 * the same sums as the per-step recursion, in another order. a(t), b(t) hold the
 * two coefficients (0 where psi = 0: those steps are skipped). */
SNN_EPROP_CLONES
static void flush_row(size_t npre, size_t nt, const uint32_t *restrict ts,
                      const double *restrict zh, const double *restrict psi, size_t pstride,
                      const double *restrict a, const double *restrict b, double g0,
                      double decay, double *restrict eb, double *restrict g, double *restrict s)
{
    if (g && g0 != 0.0)
        for (size_t i = 0; i < npre; i++)
            g[i] += g0 * eb[i];
    if (b)
        for (size_t i = 0; i < npre; i++)
            eb[i] *= decay;
    /* two steps per pass over the row: the accumulators are loaded and stored once */
    size_t q = 0;
    for (; q + 2 <= nt; q += 2) {
        const size_t t0 = ts[q], t1 = ts[q + 1];
        const double *restrict z0 = zh + t0 * npre, *restrict z1 = zh + t1 * npre;
        const double p0 = psi[t0 * pstride], p1 = psi[t1 * pstride];
        if (g) {
            const double a0 = a[t0], a1 = a[t1];
            for (size_t i = 0; i < npre; i++)
                g[i] = (g[i] + a0 * z0[i]) + a1 * z1[i];
        }
        if (s)
            for (size_t i = 0; i < npre; i++)
                s[i] = (s[i] + p0 * z0[i]) + p1 * z1[i];
        if (b) {
            const double b0 = b[t0], b1 = b[t1];
            for (size_t i = 0; i < npre; i++)
                eb[i] = (eb[i] + b0 * z0[i]) + b1 * z1[i];
        }
    }
    for (; q < nt; q++) {
        const size_t t = ts[q];
        const double *restrict z = zh + t * npre;
        const double ps = psi[t * pstride];
        if (g)
            for (size_t i = 0; i < npre; i++)
                g[i] += a[t] * z[i];
        if (s)
            for (size_t i = 0; i < npre; i++)
                s[i] += ps * z[i];
        if (b)
            for (size_t i = 0; i < npre; i++)
                eb[i] += b[t] * z[i];
    }
}

/* Interval timing: folds the recorded steps into the LIF rows' G and S (do_g) and
 * ebar (do_ebar), see flush_row; do_g = 0 leaves G and S alone (already folded). */
static void flush_lif(snn_eprop *e, int do_g, int do_ebar)
{
    const size_t ni = e->p.n_in, nr = e->p.n_rec, nl = e->n_lif, n = e->h_n;
    const double kp = e->kappa, ok = 1.0 - e->kappa;
    double *a = e->h_a, *b = e->h_b;
    double decay = 1.0;
    for (size_t t = 0; t < n; t++)
        decay *= kp;
    for (size_t j = 0; j < nl; j++) {
        const double *psi = e->h_psi + j, *L = e->h_L + j;
        double lb = 0.0, kpow = 1.0;
        for (size_t t = n; t-- > 0;) {
            lb = kp * lb + L[t * nl];
            a[t] = ok * psi[t * nl] * lb;
            b[t] = ok * kpow * psi[t * nl];
            kpow *= kp;
        }
        const double g0 = kp * lb;
        size_t nt = 0; /* the steps with psi != 0 (the others add nothing) */
        for (size_t t = 0; t < n; t++)
            if (psi[t * nl] != 0.0)
                e->h_t[nt++] = (uint32_t)t;
        if (e->hz_in)
            flush_row(ni, nt, e->h_t, e->hz_in, psi, nl, a, do_ebar ? b : NULL, g0, decay,
                      e->ebar_in + j * ni, do_g ? e->g_in + j * ni : NULL,
                      do_g && e->s_in ? e->s_in + j * ni : NULL);
        if (e->hz_rec)
            flush_row(nr, nt, e->h_t, e->hz_rec, psi, nl, a, do_ebar ? b : NULL, g0, decay,
                      e->ebar_rec + j * nr, do_g ? e->g_rec + j * nr : NULL,
                      do_g && e->s_rec ? e->s_rec + j * nr : NULL);
    }
}

/* Applies the optimiser to one group with gradient g (already scaled), keeping
 * W in [w_min, w_max]. m/q are Adam's moments (NULL for gradient descent). */
static void apply_update(snn_eprop *e, double *w, double *g, double *m, double *q, size_t n,
                         double scale)
{
    const snn_eprop_params *p = &e->p;
    if (p->optimizer == SNN_EPROP_ADAM) {
        double n1 = (double)e->adam_step;
        double b1 = p->adam_beta1, b2 = p->adam_beta2;
        double alpha = p->eta * sqrt(1.0 - pow(b2, n1)) / (1.0 - pow(b1, n1));
        for (size_t i = 0; i < n; i++) {
            double gi = g[i] * scale;
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            q[i] = b2 * q[i] + (1.0 - b2) * gi * gi;
            double wi = w[i] - alpha * m[i] / (sqrt(q[i]) + p->adam_epsilon);
            w[i] = wi < p->w_min ? p->w_min : (wi > p->w_max ? p->w_max : wi);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            double wi = w[i] - p->eta * g[i] * scale;
            w[i] = wi < p->w_min ? p->w_min : (wi > p->w_max ? p->w_max : wi);
        }
    }
}

/* End of an interval: regularisation, averaging, and (every batch_size
 * intervals) the weight update. */
static void finish_interval(snn_eprop *e)
{
    const snn_eprop_params *p = &e->p;
    size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    double T = (double)p->update_interval;
    if (e->h_n && !e->h_gdone) {
        /* G and S now; ebar only if the next interval starts with learning off */
        flush_lif(e, 1, 0);
        e->h_gdone = 1;
    }
    if (p->c_reg > 0) {
        double f_target = p->f_target_hz / 1000.0 * p->dt; /* spikes per step */
        for (size_t j = 0; j < nr; j++) {
            double reg = p->c_reg * ((double)e->nspk[j] / T - f_target) / T;
            if (e->s_in)
                for (size_t i = 0; i < ni; i++)
                    e->g_in[j * ni + i] += reg * e->s_in[j * ni + i];
            if (e->s_rec)
                for (size_t i = 0; i < nr; i++)
                    e->g_rec[j * nr + i] += reg * e->s_rec[j * nr + i];
        }
        if (e->s_in)
            memset(e->s_in, 0, nr * ni * sizeof(double));
        if (e->s_rec)
            memset(e->s_rec, 0, nr * nr * sizeof(double));
    }
    /* average_gradient divides each interval's gradient by learning_window (NEST's
     * compute_gradient). G sums the intervals of a batch, so it is divided once, when
     * the batch is full (dividing at every interval end would divide the earlier
     * intervals of a batch again: batch_size > 1 then missed NEST by 2-8 %). */
    int batch_full = e->batch_count + 1 >= p->batch_size;
    if (p->average_gradient && batch_full) {
        double w = 1.0 / (double)p->learning_window;
        if (e->g_in)
            for (size_t i = 0; i < nr * ni; i++)
                e->g_in[i] *= w;
        if (e->g_rec)
            for (size_t i = 0; i < nr * nr; i++)
                e->g_rec[i] *= w;
        if (e->g_out)
            for (size_t i = 0; i < no * nr; i++)
                e->g_out[i] *= w;
    }
    if (++e->batch_count < p->batch_size)
        return;
    e->batch_count = 0;
    e->adam_step++;
    double scale = 1.0 / (double)p->batch_size;
    if (e->g_in)
        apply_update(e, e->w_in, e->g_in, e->m_in, e->q_in, nr * ni, scale);
    if (e->g_rec) {
        apply_update(e, e->w_rec, e->g_rec, e->m_rec, e->q_rec, nr * nr, scale);
        if (p->no_autapses)
            for (size_t j = 0; j < nr; j++)
                e->w_rec[j * nr + j] = 0.0;
    }
    if (e->g_out)
        apply_update(e, e->w_out, e->g_out, e->m_out, e->q_out, no * nr, scale);
    clear_gradients(e);
}

/* Interval timing, recurrent neurons of one step (reset applied one step late,
 * as NEST's bsshslm_2020 models do). Leaves z, psi, nspk updated. */
static void forward_interval(snn_eprop *e, const uint8_t *x);

/* Sums the input current of every recurrent neuron into cur (n_rec):
 * W_in x + W_rec z_prev, touching only active inputs and spikes. */
static void input_currents(snn_eprop *e, const uint8_t *x, double *cur)
{
    const size_t ni = e->p.n_in, nr = e->p.n_rec;
    uint32_t n_act = 0;
    for (size_t i = 0; i < ni; i++)
        if (x[i])
            e->active[n_act++] = (uint32_t)i;
    for (size_t j = 0; j < nr; j++) {
        const double *wi = e->w_in + j * ni;
        double I = 0.0;
        for (uint32_t q = 0; q < n_act; q++)
            I += wi[e->active[q]] * (double)x[e->active[q]];
        cur[j] = I;
    }
    n_act = 0;
    for (size_t l = 0; l < nr; l++)
        if (e->z_prev[l])
            e->active[n_act++] = (uint32_t)l;
    for (size_t j = 0; j < nr; j++) {
        const double *wr = e->w_rec + j * nr;
        double I = 0.0;
        for (uint32_t q = 0; q < n_act; q++)
            I += wr[e->active[q]];
        cur[j] += I;
    }
}

/* psi for neuron j at potential v and threshold thr (0 while refractory). */
static double pseudo_derivative(const snn_eprop *e, size_t j, double v, double thr)
{
    if (e->ref[j] > 0)
        return 0.0;
    const double d = fabs(v - thr) / e->p.psi_width, h = e->p.psi_height;
    switch (e->p.psi_shape) {
    case SNN_EPROP_EXPONENTIAL:
        return h * exp(-d);
    case SNN_EPROP_FAST_SIGMOID_DERIV:
        return h / ((1.0 + d) * (1.0 + d));
    case SNN_EPROP_ARCTAN_DERIV:
        return h / (1.0 + d * d);
    default:
        return d < 1.0 ? h * (1.0 - d) : 0.0;
    }
}

static void forward_interval(snn_eprop *e, const uint8_t *x)
{
    const snn_eprop_params *p = &e->p;
    double *cur = e->L; /* L is free until the learning signals are computed */
    input_currents(e, x, cur);
    for (size_t j = 0; j < p->n_rec; j++) {
        double reset_by = p->v_th;
        if (p->reset_adapted && j >= e->n_lif)
            reset_by += p->adapt_beta * e->adapt[j]; /* the threshold of the previous step */
        double v = e->alpha * e->v[j] + e->c_in * cur[j] - reset_by * (double)e->z_prev[j];
        double thr = p->v_th;
        if (j >= e->n_lif) {
            e->adapt[j] = e->rho * e->adapt[j] + (double)e->z_prev[j];
            thr += p->adapt_beta * e->adapt[j];
        }
        e->v[j] = v;
        if (e->ref[j] > 0)
            e->ref[j]--;
        e->psi[j] = pseudo_derivative(e, j, v, thr);
        e->z[j] = (v >= thr && e->ref[j] == 0) ? 1 : 0;
        if (e->z[j]) {
            e->ref[j] = p->t_ref_steps;
            e->nspk[j]++;
        }
    }
}

/* Continuous timing, recurrent neurons of one step: the reset follows the spike
 * in the same step; the rate estimate and its regulariser are updated. */
static void forward_continuous(snn_eprop *e, const uint8_t *x)
{
    const snn_eprop_params *p = &e->p;
    double *cur = e->L;
    input_currents(e, x, cur);
    const double f_target = p->f_target_hz / 1000.0 * p->dt, kr = p->kappa_reg;
    for (size_t j = 0; j < p->n_rec; j++) {
        double thr = p->v_th;
        if (j >= e->n_lif) {
            e->adapt[j] = e->rho * e->adapt[j] + (double)e->z_prev[j];
            thr += p->adapt_beta * e->adapt[j];
        }
        double v = e->alpha * e->v[j] + e->c_in * cur[j];
        if (e->ref[j] > 0)
            e->ref[j]--;
        e->psi[j] = pseudo_derivative(e, j, v, thr);
        e->z[j] = (v >= thr && e->ref[j] == 0) ? 1 : 0;
        if (e->z[j]) {
            v = p->reset == SNN_EPROP_RESET_TO_VALUE ? p->v_reset : v - p->v_th;
            e->ref[j] = p->t_ref_steps;
            e->nspk[j]++;
        }
        e->v[j] = v;
        e->f_av[j] = kr * e->f_av[j] + (1.0 - kr) * (double)e->z[j] / p->dt;
        e->freg[j] = p->c_reg * (e->f_av[j] - f_target);
    }
}

/* Readout, outputs, errors (window only) and this step's loss. */
static double readout_and_error(snn_eprop *e, const double *target, int label)
{
    const snn_eprop_params *p = &e->p;
    const size_t nr = p->n_rec, no = p->n_out;
    for (size_t o = 0; o < no; o++) {
        const double *wo = e->w_out + o * nr;
        double s = 0.0;
        for (size_t j = 0; j < nr; j++)
            if (e->z[j])
                s += wo[j];
        e->y[o] = e->kappa * e->y[o] + e->c_out * s;
    }
    if (p->loss == SNN_EPROP_CROSS_ENTROPY) {
        double mx = e->y[0], sum = 0.0;
        for (size_t o = 1; o < no; o++)
            if (e->y[o] > mx)
                mx = e->y[o];
        for (size_t o = 0; o < no; o++)
            sum += (e->outv[o] = exp(e->y[o] - mx));
        for (size_t o = 0; o < no; o++)
            e->outv[o] /= sum;
    } else {
        memcpy(e->outv, e->y, no * sizeof(double));
    }
    int in_window = e->k >= p->update_interval - p->learning_window && (target || label >= 0);
    double lstep = 0.0;
    for (size_t o = 0; o < no; o++) {
        double ys = target ? target[o] : ((int)o == label ? 1.0 : 0.0);
        double d = in_window ? e->outv[o] - ys : 0.0;
        e->err[o] = d;
        if (!in_window)
            continue;
        if (p->loss == SNN_EPROP_CROSS_ENTROPY)
            lstep -= ys > 0 ? ys * log(e->outv[o] > 1e-300 ? e->outv[o] : 1e-300) : 0.0;
        else
            lstep += 0.5 * d * d / (double)no;
    }
    return lstep;
}

/* L_j = sum_o B_jo err_o. */
static void learning_signals(snn_eprop *e)
{
    const size_t nr = e->p.n_rec, no = e->p.n_out;
    for (size_t j = 0; j < nr; j++) {
        double L = 0.0;
        for (size_t o = 0; o < no; o++)
            L += (e->b_fb ? e->b_fb[j * no + o] : e->w_out[o * nr + j]) * e->err[o];
        e->L[j] = L;
    }
}

/* Interval timing: traces and gradient accumulation of this step. */
static void learn_interval(snn_eprop *e, const uint8_t *x)
{
    const size_t ni = e->p.n_in, nr = e->p.n_rec, no = e->p.n_out;
    for (size_t i = 0; i < ni; i++)
        e->zbar_in[i] = e->alpha * e->zbar_in[i] + e->c_in * (double)x[i];
    for (size_t l = 0; l < nr; l++) {
        e->zbar_rec[l] = e->alpha * e->zbar_rec[l] + e->c_in * (double)e->z_prev[l];
        e->zout[l] = e->kappa * e->zout[l] + e->c_out * (double)e->z[l];
    }
    const size_t j0 = e->h_cap ? e->n_lif : 0; /* rows before j0 go through the history */
    if (e->h_cap) {
        const size_t t = e->h_n, nl = e->n_lif;
        if (e->hz_in)
            memcpy(e->hz_in + t * ni, e->zbar_in, ni * sizeof(double));
        if (e->hz_rec)
            memcpy(e->hz_rec + t * nr, e->zbar_rec, nr * sizeof(double));
        memcpy(e->h_psi + t * nl, e->psi, nl * sizeof(double));
        memcpy(e->h_L + t * nl, e->L, nl * sizeof(double));
        e->h_n++;
    }
    if (e->g_in)
        accumulate_group(e, j0, ni, e->zbar_in, e->ebar_in, e->g_in, e->s_in, e->eps_in);
    if (e->g_rec)
        accumulate_group(e, j0, nr, e->zbar_rec, e->ebar_rec, e->g_rec, e->s_rec, e->eps_rec);
    if (e->h_cap && e->h_n == e->h_cap && e->k + 1 < e->p.update_interval) {
        flush_lif(e, 1, 1); /* chunk full, the interval goes on: carry ebar */
        e->h_n = 0;
    }
    if (e->g_out)
        for (size_t o = 0; o < no; o++) {
            double d = e->err[o];
            if (d == 0.0)
                continue;
            double *g = e->g_out + o * nr;
            for (size_t j = 0; j < nr; j++)
                g[j] += d * e->zout[j];
        }
}

/* Continuous timing: which presynaptic neurons' synapses evaluate step m-1.
 * arrive[i] says a spike of i arrives at step m; last[i] is the latest
 * arrival. Step m-1 is evaluated from the step before the first arrival on and
 * for isi_trace_cutoff steps from the step before each arrival (NEST's
 * eprop_isi_trace_cutoff). Also counts Adam iterations (iters[i]: m + t0 for the
 * first evaluated step, as NEST's optimizer clock starts t0 steps before step 0,
 * else steps since the last one) and advances alast. */
static void mark_evaluated(snn_eprop *e, int64_t m, size_t n, const uint8_t *arrive, int64_t *last,
                           int64_t *alast, int64_t t0)
{
    const int64_t cutoff = e->p.isi_trace_cutoff;
    for (size_t i = 0; i < n; i++) {
        if (arrive[i])
            last[i] = m;
        e->proc[i] = last[i] >= 0 && (cutoff == 0 || m - 1 <= last[i] + cutoff - 2);
        if (e->proc[i]) {
            e->iters[i] = alast[i] < 0 ? m + t0 : (m - 1) - alast[i];
            alast[i] = m - 1;
        }
    }
}

/* One optimiser call of continuous timing: gradient g, then iters-1 Adam steps
 * with zero gradient (NEST's catch-up after skipped steps); b1p/b2p are the
 * presynaptic neuron's beta powers before this call. Returns the clamped weight. */
static double optimize_one(const snn_eprop *e, double w, double g, double *m, double *q,
                           double b1p, double b2p, int64_t iters)
{
    const snn_eprop_params *p = &e->p;
    if (p->optimizer == SNN_EPROP_ADAM) {
        const double b1 = p->adam_beta1, b2 = p->adam_beta2;
        for (int64_t it = 0; it < iters; it++) {
            b1p *= b1;
            b2p *= b2;
            double alpha = p->eta * sqrt(1.0 - b2p) / (1.0 - b1p);
            *m = b1 * *m + (1.0 - b1) * g;
            *q = b2 * *q + (1.0 - b2) * g * g;
            w -= alpha * *m / (sqrt(*q) + p->adam_epsilon);
            g = 0.0;
        }
    } else {
        w -= p->eta * g;
    }
    return w < p->w_min ? p->w_min : (w > p->w_max ? p->w_max : w);
}

/* Advances the Adam beta powers of the evaluated presynaptic neurons. */
static void advance_powers(const snn_eprop *e, size_t n, double *b1p, double *b2p)
{
    if (!b1p)
        return;
    for (size_t i = 0; i < n; i++)
        if (e->proc[i])
            for (int64_t it = 0; it < e->iters[i]; it++) {
                b1p[i] *= e->p.adam_beta1;
                b2p[i] *= e->p.adam_beta2;
            }
}

/* Continuous timing: eligibility and weight update of one input/recurrent group
 * for step m-1, using that step's psi, L and reg (the *_prev arrays). */
static void learn_group_continuous(snn_eprop *e, size_t npre, const double *zbar, double *w,
                                   double *ebar, double *ebreg, double *eps, double *m, double *q,
                                   const double *b1p, const double *b2p, int autapse_free)
{
    const double kappa = e->p.kappa, kr = e->p.kappa_reg, rho = e->rho, beta = e->p.adapt_beta;
    const int sgd = e->p.optimizer == SNN_EPROP_SGD;
    const double eta = e->p.eta, wmin = e->p.w_min, wmax = e->p.w_max;
    for (size_t j = 0; j < e->p.n_rec; j++) {
        const double psi = e->psi_prev[j], L = e->L_prev[j], fr = e->freg_prev[j];
        const size_t r = j * npre;
        double *ep = (j >= e->n_lif && eps) ? eps + (j - e->n_lif) * npre : NULL;
        for (size_t i = 0; i < npre; i++) {
            if (autapse_free && i == j)
                continue;
            if (!e->proc[i]) {
                /* outside the evaluated window: e = 0, the traces only decay */
                if (ep)
                    ep[i] *= rho;
                ebar[r + i] *= kappa;
                if (ebreg)
                    ebreg[r + i] *= kr;
                continue;
            }
            double el = ep ? psi * (zbar[i] - beta * ep[i]) : psi * zbar[i];
            if (ep)
                ep[i] = rho * ep[i] + el;
            ebar[r + i] = kappa * ebar[r + i] + el;
            double g = L * ebar[r + i];
            if (ebreg) {
                ebreg[r + i] = kr * ebreg[r + i] + (1.0 - kr) * el;
                g += fr * ebreg[r + i];
            }
            if (sgd) {
                double wi = w[r + i] - eta * g;
                w[r + i] = wi < wmin ? wmin : (wi > wmax ? wmax : wi);
            } else {
                w[r + i] = optimize_one(e, w[r + i], g, m + r + i, q + r + i, b1p[i], b2p[i],
                                        e->iters[i]);
            }
        }
    }
}

/* Continuous timing, learning part of step m: evaluates step m-1 of every
 * learnable synapse (NEST's lazy evaluation, see eprop.h). */
static void learn_continuous(snn_eprop *e, const uint8_t *x)
{
    const snn_eprop_params *p = &e->p;
    const size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    const int64_t m = e->n;
    /* presynaptic traces at step m-1 (exact filters of the arrivals) */
    for (size_t i = 0; i < ni; i++)
        e->zbar_in[i] = e->alpha * e->zbar_in[i] + e->c_in * (double)e->x_prev[i];
    for (size_t l = 0; l < nr; l++) {
        e->zbar_rec[l] = e->alpha * e->zbar_rec[l] + e->c_in * (double)e->z_prev2[l];
        e->zout[l] = e->kappa * e->zout[l] + e->c_out * (double)e->z_prev[l];
    }
    /* at m = 0 the evaluated step -1 has psi = L = 0: it only starts Adam's count */
    if (p->learn_in) {
        mark_evaluated(e, m, ni, x, e->last_in, e->alast_in, p->adam_t0);
        learn_group_continuous(e, ni, e->zbar_in, e->w_in, e->ebar_in, e->ebreg_in, e->eps_in,
                               e->m_in, e->q_in, e->b1p_in, e->b2p_in, 0);
        advance_powers(e, ni, e->b1p_in, e->b2p_in);
    }
    if (p->learn_rec) {
        mark_evaluated(e, m, nr, e->z_prev, e->last_rec, e->alast_rec, p->adam_t0);
        learn_group_continuous(e, nr, e->zbar_rec, e->w_rec, e->ebar_rec, e->ebreg_rec,
                               e->eps_rec, e->m_rec, e->q_rec, e->b1p_rec, e->b2p_rec,
                               p->no_autapses);
        advance_powers(e, nr, e->b1p_rec, e->b2p_rec);
    }
    if (p->learn_out) {
        mark_evaluated(e, m, nr, e->z, e->last_out, e->alast_out, (int64_t)p->adam_t0 + 1);
        for (size_t o = 0; o < no; o++)
            for (size_t j = 0; j < nr; j++) {
                if (!e->proc[j])
                    continue;
                size_t r = o * nr + j;
                e->w_out[r] = optimize_one(e, e->w_out[r], e->err_prev[o] * e->zout[j],
                                           e->m_out ? e->m_out + r : NULL,
                                           e->q_out ? e->q_out + r : NULL,
                                           e->b1p_out ? e->b1p_out[j] : 1.0,
                                           e->b2p_out ? e->b2p_out[j] : 1.0, e->iters[j]);
            }
        advance_powers(e, nr, e->b1p_out, e->b2p_out);
    }
    memcpy(e->psi_prev, e->psi, nr * sizeof(double));
    memcpy(e->L_prev, e->L, nr * sizeof(double));
    memcpy(e->freg_prev, e->freg, nr * sizeof(double));
    memcpy(e->err_prev, e->err, no * sizeof(double));
}

int snn_eprop_step(snn_eprop *e, const uint8_t *x, const double *target, int label,
                   double *out, double *running_loss)
{
    if (!e || !x)
        return -SNN_EINVAL;
    const snn_eprop_params *p = &e->p;
    const size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    if (!target && label >= (int)no)
        return -SNN_EINVAL;
    const int learn = e->learning, cont = p->timing == SNN_EPROP_CONTINUOUS;

    if (e->k == 0) {
        if (!cont && p->reset_on_update)
            clear_neurons(e);
        if (!cont && e->h_n && !learn) {
            /* the last interval ended with learning off (its G is pending) or this one
             * starts with it off (ebar carries on, as the per-step rule leaves it) */
            flush_lif(e, !e->h_gdone, 1);
            e->h_n = 0;
            e->h_gdone = 0;
        } else if (!cont && e->h_n && !e->h_gdone) {
            flush_lif(e, 1, 0); /* the last interval ended with learning off */
        }
        if (!cont && learn)
            clear_traces(e);
        e->loss_run = 0.0;
        memset(e->nspk, 0, nr * sizeof(uint32_t));
    }

    if (cont)
        forward_continuous(e, x);
    else
        forward_interval(e, x);
    e->loss_run += readout_and_error(e, target, label);

    if (learn) {
        learning_signals(e);
        if (cont)
            learn_continuous(e, x);
        else
            learn_interval(e, x);
    }

    if (cont) {
        memcpy(e->x_prev, x, ni);
        memcpy(e->z_prev2, e->z_prev, nr);
    }
    memcpy(e->z_prev, e->z, nr);
    if (out)
        memcpy(out, e->outv, no * sizeof(double));
    if (running_loss)
        *running_loss = e->loss_run;

    e->n++;
    if (++e->k == p->update_interval) {
        if (learn && !cont)
            finish_interval(e);
        e->k = 0;
        e->loss_last = e->loss_run;
        e->intervals++;
    }
    return 0;
}
