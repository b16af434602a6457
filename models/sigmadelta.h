/*
 * sigmadelta.h -- sigma-delta (level-crossing) event encoder for tactile
 * sensors, after Müller-Cleve et al. 2022 (iCub fingertip, Braille letters).
 *
 * Turns frames of n_channels analog values (e.g. 12 capacitive taxels) at
 * arbitrary, possibly irregular timestamps into ON/OFF events with
 * microsecond times.  One encoder = one stream's state; the hot path
 * (snn_sigmadelta_push) allocates nothing.
 *
 * Definition (the equations live here, once).  Per input channel c:
 *
 *   r_c        reference level; r_c := x_c(t_first) on the first frame (no events)
 *   θ          threshold (> 0; 1, 2, 5, 10 in the paper for 8-bit taxel values)
 *
 *   For each new frame (t1, v1) after (t0, v0), t1 >= t0:
 *     UP:   if v1 >= r + θ:  n = floor((v1 - r) / θ); levels L_k = r + k θ
 *     DOWN: if v1 <= r - θ:  n = floor((r - v1) / θ); levels L_k = r - k θ
 *     event k (k = 1..n) at  t_k = t0 + floor((L_k - v0) / (v1 - v0) * (t1 - t0))
 *         (linear interpolation between the samples, times in int64 µs,
 *          computed in IEEE double in exactly this order; t_k = t1 when
 *          t1 == t0); then r := r ± n θ.
 *     So |r - v| < θ always holds after a frame, and a jump of k thresholds
 *     between two samples gives k events at the interpolated crossing times.
 *
 *   Hold (hold_us > 0): when t1 - t0 > hold_us, the previous values are held
 *   until t1 - hold_us and the interpolation above runs from t0' = t1 -
 *   hold_us instead of t0 (v0 unchanged).  For senders that send frames only
 *   on change, or none while nothing touches the sensor: without it a change
 *   after a long pause is spread over the whole pause, which then never looks
 *   silent.  hold_us = 0 (the default, what the braille models were trained
 *   with on 40 Hz frames) interpolates across any gap.
 *
 *   Polarity: an UP crossing is an ON event and DOWN is OFF, unless `invert`
 *   is set, which swaps them.  The iCub skin reports 255 = no contact and
 *   lower = more pressure, so Braille models use invert = 1: ON = the raw
 *   value falls = pressure rises, OFF = pressure is released.  (The
 *   authors' scripts label polarity on the raw value, i.e. invert = 0; the
 *   information is the same, only the channel halves swap.)
 *
 *   Refractory period (refractory_us >= 0, 0 = none): an event whose time is
 *   less than refractory_us after the last *emitted* event of the same input
 *   channel (ON and OFF share it, like a DVS pixel) is DROPPED, not delayed.
 *   The reference level still moves, so the encoder keeps tracking the
 *   signal and never builds a backlog; the cost is lost events in fast
 *   ramps.  (Delaying would push events past the next frame and break
 *   per-frame time order.)
 *
 *   Output channel: ON -> c, OFF -> n_channels + c; with merge_on_off, both
 *   -> c (the NIR paper's 12-input variant).  Events of one push are sorted by
 *   (t_us, channel); their times lie in [t0, t1], so the events of successive
 *   pushes are in non-decreasing time order.
 *
 * models/train/sigmadelta.py is a Python port with the same arithmetic
 * (used to train the zoo's braille models).
 */
#ifndef SNN_SIGMADELTA_H
#define SNN_SIGMADELTA_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "model.h"

#ifndef SNN_EVENT_DEFINED
#define SNN_EVENT_DEFINED
/* One address event: time in microseconds, output channel. */
typedef struct snn_event {
    int64_t t_us;
    uint32_t channel;
} snn_event;
#endif

typedef struct snn_sigmadelta_config {
    uint32_t n_channels;   /* input channels per frame (12 taxels), >= 1 */
    double threshold;      /* θ, > 0, finite */
    int64_t refractory_us; /* >= 0; 0 = no refractory period */
    int merge_on_off;      /* 1: ON and OFF share channel c */
    int invert;            /* 1: DOWN crossings are ON (iCub: lower = more pressure) */
    int64_t hold_us;       /* >= 0; 0 = interpolate across any gap (see "Hold") */
} snn_sigmadelta_config;

typedef struct snn_sigmadelta snn_sigmadelta;

/* Validates cfg and allocates an encoder in its initial state (waiting for a
 * first frame).  Returns 0, or -SNN_EINVAL (message names the field and value)
 * / -SNN_ENOMEM.  a may be NULL (C library allocator). */
int snn_sigmadelta_new(const snn_sigmadelta_config *cfg, const snn_allocator *a,
                       snn_sigmadelta **out, snn_err *err);

/* Frees an encoder (NULL is fine). */
void snn_sigmadelta_free(snn_sigmadelta *e);

/* Forgets the stream: the next frame is a first frame again. */
void snn_sigmadelta_reset(snn_sigmadelta *e);

/* Number of output channels: 2 n_channels, or n_channels if merged. */
uint32_t snn_sigmadelta_n_outputs(const snn_sigmadelta *e);

/* Upper bound on the events one push can produce when every value lies in
 * [lo, hi] (for sizing the caller's array): n_channels * (floor((hi-lo)/θ)+1). */
size_t snn_sigmadelta_max_events(const snn_sigmadelta *e, double lo, double hi);

/* Feeds one frame: values[n_channels] sampled at t_us.  Writes the events it
 * causes, sorted by (t_us, channel), to events[0..cap) and their number to
 * *n_events.  The first frame after new/reset only sets the reference levels.
 * Errors (the encoder state is left unchanged):
 *   -SNN_EINVAL  t_us earlier than the previous frame, a non-finite value, or
 *                a value more than 2^20 thresholds from its channel's level;
 *   -SNN_ESHAPE  more than cap events: *n_events gets the number needed, so
 *                the caller can retry the same frame with a bigger array.
 * Never allocates. */
int snn_sigmadelta_push(snn_sigmadelta *e, int64_t t_us, const float *values,
                        snn_event *events, size_t cap, size_t *n_events,
                        snn_err *err);

#endif
