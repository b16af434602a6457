/*
 * sigmadelta.c -- sigma-delta (level-crossing) event encoder; the definition
 * and equations are in sigmadelta.h.
 *
 * A push runs in two phases so that an error leaves the state untouched:
 *   1. per channel, work out the crossings of this interval (count n,
 *      direction, output channel) into scratch cursors;
 *   2. merge the channels' crossing sequences in (time, channel) order (each
 *      channel's sequence is already increasing in time), applying the
 *      refractory period per channel while merging; write while there is
 *      room, keep counting when there is not.
 * Only if everything fit are the reference levels, last samples and last
 * event times committed.
 */
#include "sigmadelta.h"

#include <math.h>
#include <string.h>

/* Per-channel scratch of one push: the crossings not yet merged. */
typedef struct sd_cursor {
    uint32_t k;       /* next crossing index, 1..n */
    uint32_t n;       /* crossings in this interval */
    double sign;      /* +1 UP, -1 DOWN */
    uint32_t out_ch;  /* output channel of these crossings */
    int64_t next_t;   /* time of crossing k (valid when k <= n) */
    int64_t last_ev;  /* last emitted event time (working copy) */
    int has_last;     /* working copy of has_ev */
} sd_cursor;

struct snn_sigmadelta {
    snn_sigmadelta_config cfg;
    const snn_allocator *alloc;
    int started;       /* a first frame has been seen */
    int64_t t_prev;    /* time of the previous frame */
    double *v_prev;    /* [n] previous frame's values */
    double *ref;       /* [n] reference levels r_c */
    int64_t *last_ev;  /* [n] time of the last emitted event */
    uint8_t *has_ev;   /* [n] 1 once channel c has emitted */
    sd_cursor *cur;    /* [n] scratch for push */
};

/* Validates a configuration; returns 0 or -SNN_EINVAL with a message. */
static int sd_check_config(const snn_sigmadelta_config *c, snn_err *err)
{
    if (c->n_channels == 0 || c->n_channels > (1u << 20))
        return snn_err_set(err, SNN_EINVAL, "sigmadelta: n_channels %u out of range 1..%u",
                           c->n_channels, 1u << 20);
    if (!(c->threshold > 0.0) || !isfinite(c->threshold))
        return snn_err_set(err, SNN_EINVAL, "sigmadelta: threshold %g must be finite and > 0",
                           c->threshold);
    if (c->hold_us < 0)
        return snn_err_set(err, SNN_EINVAL, "sigmadelta: hold_us %lld must be >= 0", (long long)c->hold_us);
    if (c->refractory_us < 0)
        return snn_err_set(err, SNN_EINVAL, "sigmadelta: refractory_us %lld must be >= 0",
                           (long long)c->refractory_us);
    return 0;
}

/* Allocates the encoder and its per-channel arrays in one block each; see
 * sigmadelta.h for the contract. */
int snn_sigmadelta_new(const snn_sigmadelta_config *cfg, const snn_allocator *a,
                       snn_sigmadelta **out, snn_err *err)
{
    int rc;
    snn_sigmadelta *e;
    uint32_t n;

    if (!cfg || !out)
        return snn_err_set(err, SNN_EINVAL, "sigmadelta: NULL argument");
    *out = NULL;
    if ((rc = sd_check_config(cfg, err)) < 0)
        return rc;
    a = snn_alloc_or_default(a);
    n = cfg->n_channels;
    e = a->calloc(1, sizeof(*e));
    if (!e)
        return snn_err_set(err, SNN_ENOMEM, "sigmadelta: out of memory");
    e->cfg = *cfg;
    e->alloc = a;
    e->v_prev = a->calloc(n, sizeof(double));
    e->ref = a->calloc(n, sizeof(double));
    e->last_ev = a->calloc(n, sizeof(int64_t));
    e->has_ev = a->calloc(n, sizeof(uint8_t));
    e->cur = a->calloc(n, sizeof(sd_cursor));
    if (!e->v_prev || !e->ref || !e->last_ev || !e->has_ev || !e->cur) {
        snn_sigmadelta_free(e);
        return snn_err_set(err, SNN_ENOMEM, "sigmadelta: out of memory (%u channels)", n);
    }
    *out = e;
    return 0;
}

/* Frees e and its arrays (NULL is fine). */
void snn_sigmadelta_free(snn_sigmadelta *e)
{
    const snn_allocator *a;

    if (!e)
        return;
    a = e->alloc;
    a->free(e->v_prev);
    a->free(e->ref);
    a->free(e->last_ev);
    a->free(e->has_ev);
    a->free(e->cur);
    a->free(e);
}

/* Back to "waiting for a first frame"; forgets levels and refractory times. */
void snn_sigmadelta_reset(snn_sigmadelta *e)
{
    uint32_t n = e->cfg.n_channels;

    e->started = 0;
    e->t_prev = 0;
    memset(e->v_prev, 0, n * sizeof(double));
    memset(e->ref, 0, n * sizeof(double));
    memset(e->last_ev, 0, n * sizeof(int64_t));
    memset(e->has_ev, 0, n * sizeof(uint8_t));
}

/* 2 n_channels, or n_channels when ON and OFF are merged. */
uint32_t snn_sigmadelta_n_outputs(const snn_sigmadelta *e)
{
    return e->cfg.merge_on_off ? e->cfg.n_channels : 2 * e->cfg.n_channels;
}

/* Worst case of one push for values in [lo, hi]: every channel jumps the full
 * range, floor((hi - lo) / θ) crossings, plus one for rounding slack. */
size_t snn_sigmadelta_max_events(const snn_sigmadelta *e, double lo, double hi)
{
    double span = hi > lo ? (hi - lo) / e->cfg.threshold : 0.0;

    return (size_t)e->cfg.n_channels * ((size_t)floor(span) + 1);
}

/* Time of crossing k of channel c in the interval (t0, v0) -> (t1, v1): the
 * interpolation of sigmadelta.h, in this exact order of double operations
 * (models/train/sigmadelta.py repeats it). */
static int64_t sd_cross_time(double r, double sign, uint32_t k, double th, double v0,
                             double v1, int64_t t0, int64_t t1)
{
    double level = r + sign * ((double)k * th);
    double frac = (level - v0) / (v1 - v0);

    return t0 + (int64_t)floor(frac * (double)(t1 - t0));
}

/* Moves cursor c to its next crossing that survives the refractory period
 * (crossings dropped here still count as passed).  Returns 1 if one is
 * pending in cur->next_t, 0 if the channel is exhausted.  t0: the start of
 * the interpolation (the previous frame, or t1 - hold_us after a longer gap). */
static int sd_advance(const snn_sigmadelta *e, uint32_t c, double v1, int64_t t0, int64_t t1)
{
    sd_cursor *cur = &e->cur[c];
    double th = e->cfg.threshold;

    while (cur->k <= cur->n) {
        int64_t t = sd_cross_time(e->ref[c], cur->sign, cur->k, th, e->v_prev[c], v1,
                                  t0, t1);
        if (e->cfg.refractory_us > 0 && cur->has_last &&
            t - cur->last_ev < e->cfg.refractory_us) {
            cur->k++;
            continue;
        }
        cur->next_t = t;
        return 1;
    }
    return 0;
}

/* Most levels one channel may cross in one frame (8-bit taxels with θ = 1
 * cross at most 255): a larger jump is a bad value, refused before the work
 * (and the float-to-integer conversion) it would take. */
#define SD_MAX_CROSSINGS (1u << 20)

/* See sigmadelta.h.  Phase 1 sets up cursors, phase 2 merges, phase 3
 * commits; nothing is written to the state before phase 3. */
int snn_sigmadelta_push(snn_sigmadelta *e, int64_t t_us, const float *values,
                        snn_event *events, size_t cap, size_t *n_events,
                        snn_err *err)
{
    uint32_t n = e->cfg.n_channels, c;
    double th = e->cfg.threshold;
    size_t count = 0, crossings = 0;

    *n_events = 0;
    for (c = 0; c < n; c++)
        if (!isfinite(values[c]))
            return snn_err_set(err, SNN_EINVAL, "sigmadelta: value of channel %u is not finite",
                               c);
    if (!e->started) {
        for (c = 0; c < n; c++)
            e->v_prev[c] = e->ref[c] = (double)values[c];
        e->t_prev = t_us;
        e->started = 1;
        return 0;
    }
    if (t_us < e->t_prev)
        return snn_err_set(err, SNN_EINVAL,
                           "sigmadelta: frame time %lld us is before the previous frame (%lld us)",
                           (long long)t_us, (long long)e->t_prev);
    /* sigmadelta.h "hold": a gap longer than hold_us holds the previous values until t1 - hold_us */
    const int64_t t0 = e->cfg.hold_us > 0 && t_us - e->t_prev > e->cfg.hold_us ? t_us - e->cfg.hold_us : e->t_prev;

    /* Phase 1: crossings per channel. */
    for (c = 0; c < n; c++) {
        sd_cursor *cur = &e->cur[c];
        double v1 = (double)values[c], r = e->ref[c];
        double dn = 0.0;
        int on;

        cur->k = 1;
        cur->n = 0;
        cur->sign = 0.0;
        if (v1 >= r + th) {
            cur->sign = 1.0;
            dn = floor((v1 - r) / th);
        } else if (v1 <= r - th) {
            cur->sign = -1.0;
            dn = floor((r - v1) / th);
        }
        if (dn > (double)SD_MAX_CROSSINGS)
            return snn_err_set(err, SNN_EINVAL,
                               "sigmadelta: channel %u moves %.3g thresholds in one frame (at most %u)", c, dn,
                               SD_MAX_CROSSINGS);
        cur->n = dn > 0.0 ? (uint32_t)dn : 0;
        crossings += cur->n;
        on = (cur->sign > 0.0) != (e->cfg.invert != 0);
        cur->out_ch = (on || e->cfg.merge_on_off) ? c : n + c;
        cur->last_ev = e->last_ev[c];
        cur->has_last = e->has_ev[c];
        if (cur->n > 0)
            sd_advance(e, c, v1, t0, t_us); /* k > n afterwards if all are dropped */
    }

    /* Without a refractory period every crossing is an event: too many for
     * the array is known without merging them. */
    if (e->cfg.refractory_us <= 0 && crossings > cap) {
        *n_events = crossings;
        return snn_err_set(err, SNN_ESHAPE, "sigmadelta: frame at %lld us gives %zu events, array holds %zu",
                           (long long)t_us, crossings, cap);
    }

    /* Phase 2: merge by (time, output channel). */
    for (;;) {
        uint32_t best = n;
        for (c = 0; c < n; c++) {
            const sd_cursor *cur = &e->cur[c];
            if (cur->k > cur->n)
                continue;
            if (best == n || cur->next_t < e->cur[best].next_t ||
                (cur->next_t == e->cur[best].next_t && cur->out_ch < e->cur[best].out_ch))
                best = c;
        }
        if (best == n)
            break;
        sd_cursor *b = &e->cur[best];
        if (count < cap) {
            events[count].t_us = b->next_t;
            events[count].channel = b->out_ch;
        }
        count++;
        b->last_ev = b->next_t;
        b->has_last = 1;
        b->k++;
        sd_advance(e, best, (double)values[best], t0, t_us);
    }
    if (count > cap) {
        *n_events = count;
        return snn_err_set(err, SNN_ESHAPE,
                           "sigmadelta: frame at %lld us gives %zu events, array holds %zu",
                           (long long)t_us, count, cap);
    }

    /* Phase 3: commit. */
    for (c = 0; c < n; c++) {
        sd_cursor *cur = &e->cur[c];
        if (cur->n > 0)
            e->ref[c] += cur->sign * ((double)cur->n * th);
        e->v_prev[c] = (double)values[c];
        e->last_ev[c] = cur->last_ev;
        e->has_ev[c] = (uint8_t)cur->has_last;
    }
    e->t_prev = t_us;
    *n_events = count;
    return 0;
}
