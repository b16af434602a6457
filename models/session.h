/*
 * session.h -- one model run over one input stream, in event time.
 *
 * A session owns a model state and turns timestamped input into steps:
 *
 *   events / counts / frames --> bins of bin_us --> model step --> output
 *
 * Time is data: a bin [t0 + k*bin_us, t0 + (k+1)*bin_us) is computed when an
 * event at or after its end arrives, or when flush() passes its end; the wall
 * clock is never read. The daemon (server/stream.c) and the offline CLI
 * (`snn model run`) both drive a session, so replaying a recording through
 * snnd gives bit-identical outputs to running it offline.
 *
 * Input kinds:
 *   SPIKES   (channel, t_us) events; a bin's input is the per-channel count.
 *   BINNED   one dense vector per bin, consecutive.
 *   TACTILE  frames of taxel values (t_us, values[n_taxels]) through the
 *            model's sigma-delta encoder (config "encoder"), whose ON/OFF
 *            events are binned as SPIKES.
 *   ANALOG   frames whose values are fed as input current: a bin's input is
 *            the last frame value seen in or before it (sample and hold).
 *
 * Outputs are delivered through a callback, in step order, from within the
 * call that closed the step. Decisions (classifiers: the label; scorers: the
 * mean) are accumulated over the steps of a segment and delivered through the
 * same callback when the stream finishes or, if segment_silence_us > 0, when
 * no input event has arrived for that long (a robot finger lifted between
 * letters), or when a bin with no events follows segment_silence_us of silence.
 *
 * Errors: every input call validates the whole batch before applying any of it
 * (a bad channel, a wrong vector length, a timestamp before the open bin), so a
 * rejected message changes nothing; err names the field and value.
 */
#ifndef SNN_SESSION_H
#define SNN_SESSION_H

#include <stdint.h>

#include "model.h"

typedef enum snn_input_kind {
    SNN_INPUT_DEFAULT = 0,
    SNN_INPUT_SPIKES = 1,
    SNN_INPUT_BINNED = 2,
    SNN_INPUT_TACTILE = 3,
    SNN_INPUT_AUDIO = 4,
    SNN_INPUT_ANALOG = 5,
} snn_input_kind;

/* Parses "spikes", "binned", "tactile", "audio", "analog"; -1 if unknown. */
int snn_input_kind_parse(const char *s);
const char *snn_input_kind_name(snn_input_kind k);

/* Online learning (e-prop, models/eprop.h through models/rsnn_eprop.h): the
 * session trains its own copy of the weights; the shared model is untouched. */
typedef struct snn_learn_cfg {
    int enabled;
    double lr;                  /* learning rate (eta); default 1e-3 */
    int sgd;                    /* 1: plain gradient descent; 0: Adam (default) */
    int learn_in, learn_rec, learn_out; /* which weights learn (default all) */
    int random_feedback;        /* 1: fixed random feedback; 0: symmetric (W_out^T) */
    uint32_t update_interval;   /* steps per weight update (default 250) */
    double reg_rate_hz;         /* firing-rate regularisation target (0: off) */
    double reg_strength;        /* its strength c_reg */
} snn_learn_cfg;

typedef struct snn_session_cfg {
    snn_input_kind input;       /* DEFAULT: the model's input_kind */
    uint32_t bin_us;            /* 0: the model's dt */
    int64_t segment_silence_us; /* > 0: a decision after this much silence */
    int64_t tactile_hold_us;    /* > 0: the encoder's hold_us (sigmadelta.h "Hold"), in
                                 * place of the model's encoder "hold_us" (default 0) */
    snn_learn_cfg learn;
} snn_session_cfg;

/* Parses one learning option (key=value, as OpenStream options carry them):
 * learn=eprop, lr, optimizer=adam|sgd, learn_weights=in,rec,out (any subset),
 * feedback=symmetric|random, update_interval, reg_rate_hz, reg_strength.
 * Returns 1 if key is a learning option and value is valid, 0 if key is not a
 * learning option, or a negative code with err naming the problem. */
int snn_learn_option(snn_learn_cfg *c, const char *key, const char *value, snn_err *err);

/* What a session delivers. */
typedef enum snn_out_type { SNN_OUT_PREDICTION = 1, SNN_OUT_DECISION = 2 } snn_out_type;

typedef struct snn_output {
    snn_out_type type;
    uint64_t step;           /* index of the step (decisions: the last step) */
    int64_t t_us;            /* event time at the end of the step's bin */
    const float *values;     /* n values: model outputs, or decision values */
    uint32_t n;
    snn_step_info info;      /* predictions: what the step did */
    int32_t index;           /* decisions: the winning class (-1 for scorers) */
    const char *label;       /* decisions: its label (NULL for scorers) */
    int final;               /* decisions: 1 at the end of the stream */
    int learning;            /* predictions of a learning stream: loss is set */
    float loss;              /* running loss of the current update interval */
} snn_output;

typedef void (*snn_emit_fn)(void *ctx, const snn_output *o);

typedef struct snn_session snn_session;

/* Running totals over the session, for NeuroBench-style statistics. */
typedef struct snn_session_stats {
    uint64_t steps;
    uint64_t events;
    uint64_t outputs;
    double hidden_spikes;     /* sums over steps */
    double hidden_neurons;
    double dense_ops;
    double eff_macs;
    double eff_acs;
    int64_t last_t_us;
} snn_session_stats;

/* Creates a session for model m (borrowed: must outlive the session). All
 * memory the session will use is allocated here. */
int snn_session_new(const snn_model *m, const snn_session_cfg *cfg, const snn_allocator *a,
                    snn_session **out, snn_err *err);
void snn_session_free(snn_session *s);

/* Values per input frame or row for input kind k of model m: the encoder's
 * taxels for TACTILE (the model's inputs are its ON/OFF channels), else the
 * model's inputs. */
uint32_t snn_frame_values(const snn_model *m, snn_input_kind k);

/* The effective input kind and bin width. */
snn_input_kind snn_session_input(const snn_session *s);
uint32_t snn_session_bin_us(const snn_session *s);
const snn_session_stats *snn_session_stats_get(const snn_session *s);

/* SPIKES (or the encoder's events): n events, channel[i] at t_us[i];
 * timestamps must be non-decreasing and not before the open bin. */
int snn_session_spikes(snn_session *s, const uint32_t *channel, const uint64_t *t_us, size_t n,
                       snn_emit_fn emit, void *ctx, snn_err *err);

/* BINNED: n_bins vectors of n_ch values, row-major. t_us: start of the first
 * bin, or 0 for "right after the previous bin"; a later start first closes
 * the bins in between as empty. */
int snn_session_binned(snn_session *s, const float *counts, uint32_t n_ch, size_t n_bins, uint64_t t_us,
                       snn_emit_fn emit, void *ctx, snn_err *err);

/* TACTILE or ANALOG: one frame of n values at t_us (not before the previous
 * frame; equal is fine). Values are any finite floats: a tactile frame may
 * give up to 2^18 encoder events (the session's event array grows past the
 * model's 8-bit range once); more is -SNN_EINVAL and changes nothing. */
int snn_session_frame(snn_session *s, uint64_t t_us, const float *values, uint32_t n, snn_emit_fn emit,
                      void *ctx, snn_err *err);

/* AUDIO: n mono samples in [-1, 1] at rate hz, any integer rate from
 * SNN_AUDIO_MIN_HZ to SNN_AUDIO_MAX_HZ (the resampler's range; 8, 16, 44.1
 * and 48 kHz are the tested ones), resampled to the model's rate with soxr.
 * A stream keeps the rate of its first chunk. A model whose input kind is
 * audio opens audio sessions only (snn_session_new refuses other kinds). */
enum { SNN_AUDIO_MIN_HZ = 1000, SNN_AUDIO_MAX_HZ = 384000 };
int snn_session_audio(snn_session *s, const float *samples, size_t n, uint32_t hz, snn_emit_fn emit,
                      void *ctx, snn_err *err);

/* Learning streams: the target (regression: n values) or the class label
 * (index; -1: none) that applies from the bin containing t_us on, until the
 * next one. Bins before t_us are closed first, with the previous target. */
int snn_session_target(snn_session *s, uint64_t t_us, const float *values, uint32_t n, snn_emit_fn emit,
                       void *ctx, snn_err *err);
int snn_session_label(snn_session *s, uint64_t t_us, int32_t index, snn_emit_fn emit, void *ctx, snn_err *err);

/* Learning streams: writes the learned weights as a new model file at path
 * (atomic: temporary file, fsync, rename). */
int snn_session_save(const snn_session *s, const char *path, snn_err *err);

/* How many steps input at event time t_us would close: the bins from the open one to the one
 * that contains t_us (0 when t_us is before the open bin's end). UINT64_MAX before the first
 * input, whose time is still unknown, and on an audio stream, whose bins are hops of samples.
 * For a scheduler that bounds a message's work before running it; changes nothing. */
uint64_t snn_session_steps_to(const snn_session *s, uint64_t t_us);

/* 1 if the session learns. */
int snn_session_learning(const snn_session *s);

/* Closes the open bin if it holds input (analog: a frame arrived in it; a
 * tactile bin whose frames gave no event stays open, later frames may still
 * fall into it), then every bin that ends at or before t_us (analog: with the
 * held values). On an audio
 * stream, whose bins are hops of samples, it does nothing with t_us = 0 (a
 * partial hop waits for its samples) and refuses t_us > 0. */
int snn_session_flush(snn_session *s, uint64_t t_us, snn_emit_fn emit, void *ctx, snn_err *err);

/* End of stream: closes the open bin (tactile: also when it holds no event, as
 * long as the last frame's time lies in it, so frames t_first..t_last give
 * floor((t_last - t_first) / bin) + 1 steps), lets the model finish (e.g. tile
 * a short audio clip) and delivers the final decision (if the model decides). */
int snn_session_finish(snn_session *s, snn_emit_fn emit, void *ctx, snn_err *err);

#endif
