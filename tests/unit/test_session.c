/*
 * test_session.c -- event time (models/session.h): bins close on later
 * events or Flush, spike events and pre-binned counts give identical steps, a
 * rejected batch changes nothing, steps_to bounds a message's steps, analog frames are sampled and held, audio
 * models take audio only, tactile frames beyond 8-bit values are encoded, a tactile recording
 * is stepped over every bin a frame reaches, and every allocation failure while opening a
 * session is an error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model.h"
#include "modelgen.h"
#include "session.h"
#include "testutil.h"

/* Writes a model file of config cfg and tensors t[n] (tag names the temporary
 * file), loads it and removes the file. */
static snn_model *load_model(const char *tag, const char *cfg, const snn_st_out *t, int n)
{
    const char *p = mg_tmp(tag);
    assert_int_equal(mg_write(p, cfg, t, n), 0);
    snn_model *m;
    snn_err e;
    assert_int_equal(snn_model_load(p, NULL, &m, &e), 0);
    unlink(p);
    return m;
}

/* 3 inputs -> 4 LIF -> 2, direct timing: outputs depend on every input count. */
static snn_model *small_model(const char *input_kind)
{
    static const float w_in[12] = {.9f, .1f, .4f, .3f, .8f, .2f, .5f, .5f, .7f, .2f, .6f, .9f};
    static const float a4[4] = {.5f, .6f, .7f, .8f}, b4[4] = {.9f, .8f, .85f, .95f};
    static const float wo[8] = {1, -1, .5f, .2f, -.3f, .6f, .4f, .9f}, oa[2] = {.3f, .2f}, ob[2] = {.8f, .7f};
    char cfg[400];
    snprintf(cfg, sizeof cfg,
             "{\"dt\":0.004,\"input\":{\"size\":3,\"kind\":\"%s\"},\"layers\":[{\"size\":4,\"neuron\":\"lif\","
             "\"reset\":\"subtract\",\"threshold\":0.5}],\"readout\":{\"size\":2,\"names\":[\"a\",\"b\"]}}",
             input_kind);
    snn_st_out t[] = {MG_T2("layers.0.w_in", 4, 3, w_in), MG_T1("layers.0.alpha", 4, a4), MG_T1("layers.0.beta", 4, b4),
                      MG_T2("readout.w", 2, 4, wo), MG_T1("readout.alpha", 2, oa), MG_T1("readout.beta", 2, ob)};
    return load_model(input_kind, cfg, t, 6);
}

typedef struct outs {
    float v[64][2];
    int64_t t[64];
    uint64_t step[64];
    int n;
} outs;

static void collect(void *ctx, const snn_output *o)
{
    outs *r = ctx;
    if (o->type == SNN_OUT_PREDICTION && r->n < 64) {
        memcpy(r->v[r->n], o->values, sizeof r->v[0]);
        r->t[r->n] = o->t_us;
        r->step[r->n++] = o->step;
    }
}

/* Spike events binned by the session equal the same counts sent pre-binned,
 * bit for bit; a bin is computed only when a later event or Flush closes it. */
static void spikes_and_binned_give_identical_steps(void **u)
{
    (void)u;
    snn_model *m = small_model("spikes");
    snn_err e;
    snn_session *a, *b;
    snn_session_cfg sc = {.input = SNN_INPUT_SPIKES}, bc = {.input = SNN_INPUT_BINNED};
    assert_int_equal(snn_session_new(m, &sc, NULL, &a, &e), 0);
    assert_int_equal(snn_session_new(m, &bc, NULL, &b, &e), 0);
    /* events over 5 bins of 4 ms starting at t = 1000 us (bin 0 starts at the first event) */
    const uint32_t ch[] = {0, 2, 2, 1, 0, 0, 2, 1};
    const uint64_t ts[] = {1000, 2000, 4999, 5000, 9500, 12999, 13000, 20999};
    const float counts[5 * 3] = {1, 0, 2, /**/ 0, 1, 0, /**/ 2, 0, 0, /**/ 0, 0, 1, /**/ 0, 1, 0};
    static outs oa, ob;
    assert_int_equal(snn_session_spikes(a, ch, ts, 8, collect, &oa, &e), 0);
    assert_int_equal(oa.n, 4); /* bins 0..3 closed by later events; bin 4 still open */
    assert_int_equal(snn_session_flush(a, 0, collect, &oa, &e), 0);
    assert_int_equal(oa.n, 5);
    assert_int_equal(snn_session_binned(b, counts, 3, 5, 1000, collect, &ob, &e), 0);
    assert_int_equal(ob.n, 5);
    assert_memory_equal(oa.v, ob.v, 5 * sizeof oa.v[0]);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(oa.t[k], 1000 + (k + 1) * 4000);
        assert_int_equal(ob.t[k], oa.t[k]);
        assert_int_equal(oa.step[k], k);
    }
    /* Flush with a later time closes the empty bins up to it. */
    assert_int_equal(snn_session_flush(a, 1000 + 8 * 4000, collect, &oa, &e), 0);
    assert_int_equal(oa.n, 8);
    snn_session_free(a);
    snn_session_free(b);
    snn_model_free(m);
}

/* snn_session_steps_to (the scheduler's bound on a message's work) is unknown before the first
 * event and then equals the steps that input at that time closes (a Flush closes the open bin
 * in any case): checked against Flush and spike events at bin edges, inside bins and across a
 * long gap. */
static void steps_to_predicts_the_steps_closed(void **u)
{
    (void)u;
    snn_model *m = small_model("spikes");
    snn_err e;
    snn_session *s;
    assert_int_equal(snn_session_new(m, NULL, NULL, &s, &e), 0);
    static outs o;
    assert_true(snn_session_steps_to(s, 5000) == UINT64_MAX);
    const uint32_t ch[] = {1};
    const uint64_t t0[] = {1000}; /* bin 0 is [1000, 5000) */
    assert_int_equal(snn_session_spikes(s, ch, t0, 1, collect, &o, &e), 0);
    assert_int_equal(o.n, 0);
    const uint64_t when[] = {4999, 5000, 9000, 12999, 13000, 1000 + 400 * 4000 + 17};
    for (size_t i = 0; i < sizeof when / sizeof when[0]; i++) {
        uint64_t k = snn_session_steps_to(s, when[i]);
        uint64_t steps0 = snn_session_stats_get(s)->steps;
        if (i % 2 == 0) {
            const uint64_t t[] = {when[i]};
            assert_int_equal(snn_session_spikes(s, ch, t, 1, collect, &o, &e), 0);
        } else {
            assert_int_equal(snn_session_flush(s, when[i], collect, &o, &e), 0);
        }
        if (i % 2 == 1 && k == 0)
            k = 1; /* Flush closes the open bin in any case */
        if (snn_session_stats_get(s)->steps - steps0 != k)
            fail_msg("t_us %llu: steps_to said %llu, %llu closed", (unsigned long long)when[i], (unsigned long long)k,
                     (unsigned long long)(snn_session_stats_get(s)->steps - steps0));
    }
    assert_int_equal(snn_session_steps_to(s, 0), 0); /* before the open bin */
    snn_session_free(s);
    snn_model_free(m);
}

/* A batch with one bad event is refused whole, naming it; nothing of it is applied. */
static void rejected_batch_changes_nothing(void **u)
{
    (void)u;
    snn_model *m = small_model("spikes");
    snn_err e;
    snn_session *s;
    assert_int_equal(snn_session_new(m, NULL, NULL, &s, &e), 0);
    static outs o;
    const uint32_t ch1[] = {0, 1};
    const uint64_t t1[] = {0, 9000};
    assert_int_equal(snn_session_spikes(s, ch1, t1, 2, collect, &o, &e), 0);
    assert_int_equal(o.n, 2);
    const uint32_t bad_ch[] = {0, 7};
    const uint64_t t2[] = {10000, 11000};
    assert_int_equal(snn_session_spikes(s, bad_ch, t2, 2, collect, &o, &e), -SNN_ESHAPE);
    assert_non_null(strstr(e.msg, "channel[1] = 7 out of range"));
    const uint64_t back[] = {12000, 11000};
    assert_true(snn_session_spikes(s, ch1, back, 2, collect, &o, &e) < 0);
    assert_non_null(strstr(e.msg, "goes backwards"));
    const uint64_t old[] = {3000};
    assert_true(snn_session_spikes(s, ch1, old, 1, collect, &o, &e) < 0);
    assert_non_null(strstr(e.msg, "before the open bin"));
    const float wrong[2] = {1, 1};
    assert_true(snn_session_frame(s, 10000, wrong, 2, collect, &o, &e) < 0); /* wrong kind */
    assert_int_equal(o.n, 2);
    assert_int_equal(snn_session_stats_get(s)->events, 2);
    snn_session_free(s);
    /* A new stream's first batch may not reach further than any later one: 10^10 us is
     * 10^7 bins of 1 ms past t_us[0] (it was stepped through, 10^7 steps for one message) */
    assert_int_equal(snn_session_new(m, NULL, NULL, &s, &e), 0);
    o.n = 0;
    const uint64_t far[] = {0, 10000000000ull};
    assert_int_equal(snn_session_spikes(s, ch1, far, 2, collect, &o, &e), -SNN_ETIME);
    assert_non_null(strstr(e.msg, "t_us[1]: t_us 10000000000 jumps more than 1048576 bins ahead of the open bin (starts at 0)"));
    assert_int_equal(o.n, 0);
    assert_int_equal(snn_session_spikes(s, ch1, t1, 2, collect, &o, &e), 0); /* the stream is still fresh */
    assert_int_equal(o.n, 2);
    snn_session_free(s);
    snn_model_free(m);
}

/* ANALOG: a bin's input is the last frame value at or before its end. */
static void analog_frames_are_sampled_and_held(void **u)
{
    (void)u;
    snn_model *m = small_model("analog");
    snn_err e;
    snn_session *a, *b;
    assert_int_equal(snn_session_new(m, NULL, NULL, &a, &e), 0);
    snn_session_cfg bc = {.input = SNN_INPUT_BINNED};
    assert_int_equal(snn_session_new(m, &bc, NULL, &b, &e), 0);
    assert_int_equal(snn_session_input(a), SNN_INPUT_ANALOG);
    static outs oa, ob;
    const float f1[3] = {0.5f, 0, 1}, f2[3] = {2, 1, 0};
    assert_int_equal(snn_session_frame(a, 0, f1, 3, collect, &oa, &e), 0);
    assert_int_equal(snn_session_frame(a, 10000, f2, 3, collect, &oa, &e), 0); /* closes bins 0, 1 with f1 */
    assert_int_equal(snn_session_flush(a, 0, collect, &oa, &e), 0);            /* bin 2 with f2 */
    const float bins[9] = {0.5f, 0, 1, 0.5f, 0, 1, 2, 1, 0};
    assert_int_equal(snn_session_binned(b, bins, 3, 3, 0, collect, &ob, &e), 0);
    assert_int_equal(oa.n, 3);
    assert_memory_equal(oa.v, ob.v, 3 * sizeof oa.v[0]);
    /* a flush or the end of the stream steps no bin without a frame in it: frames at bins 0
     * and 2 and a flush at the end of bin 2 are 3 steps, as 3 bins of counts are */
    assert_int_equal(snn_session_flush(a, 0, collect, &oa, &e), 0);
    assert_int_equal(snn_session_finish(a, collect, &oa, &e), 0);
    assert_int_equal(oa.n, 3);
    snn_session_free(a);
    snn_session_free(b);
    snn_model_free(m);
}

/* Segment mode: idle bins are skipped, a decision comes after the silence. */
static void segments_decide_after_silence(void **u)
{
    (void)u;
    static const float w[1] = {2}, a1[1] = {0}, b1[1] = {0}, wo[2] = {1, -1}, oa[2] = {0, 0}, ob[2] = {0, 0};
    const char *cfg = "{\"dt\":0.01,\"input\":{\"size\":1},\"layers\":[{\"size\":1,\"neuron\":\"lif\"}],"
                      "\"readout\":{\"size\":2,\"task\":\"classification\",\"labels\":[\"on\",\"off\"]}}";
    snn_st_out t[] = {MG_T2("layers.0.w_in", 1, 1, w), MG_T1("layers.0.alpha", 1, a1), MG_T1("layers.0.beta", 1, b1),
                      MG_T2("readout.w", 2, 1, wo), MG_T1("readout.alpha", 2, oa), MG_T1("readout.beta", 2, ob)};
    snn_model *m = load_model("seg", cfg, t, 6);
    snn_err e;
    snn_session_cfg sc = {.input = SNN_INPUT_SPIKES, .segment_silence_us = 30000};
    snn_session *s;
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), 0);
    typedef struct {
        int pred, dec, idx[4];
        int64_t t[4];
    } cnt;
    cnt c = {0};
    void on(void *ctx, const snn_output *o);
    const uint32_t ch[] = {0, 0, 0, 0};
    const uint64_t ts[] = {0, 5000, 500000, 505000}; /* two "letters" 0.5 s apart */
    assert_int_equal(snn_session_spikes(s, ch, ts, 4, on, &c, &e), 0);
    assert_int_equal(c.dec, 1); /* the first letter was decided when the silence passed */
    assert_int_equal(c.idx[0], 0);
    assert_int_equal(c.t[0], 40000); /* 30 ms after the last event's bin */
    assert_int_equal(snn_session_finish(s, on, &c, &e), 0);
    assert_int_equal(c.dec, 2);
    assert_true(c.pred < 20); /* the ~45 idle bins between the letters were skipped */
    snn_session_free(s);
    snn_model_free(m);
}

void on(void *ctx, const snn_output *o)
{
    struct {
        int pred, dec, idx[4];
        int64_t t[4];
    } *c = ctx;
    if (o->type == SNN_OUT_PREDICTION)
        c->pred++;
    else if (c->dec < 4) {
        c->idx[c->dec] = o->index;
        c->t[c->dec++] = o->t_us;
    }
}

/* 3 taxels through a sigma-delta encoder (threshold 1, inverted) -> 6 inputs -> 2 LIF -> 2,
 * dt 20 ms. */
static snn_model *tactile_model(void)
{
    static const float w[12] = {.5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f};
    static const float a2[2] = {.5f, .5f}, b2[2] = {.5f, .5f}, wo[4] = {1, -1, -1, 1}, oa[2] = {0, 0}, ob[2] = {0, 0};
    const char *cfg = "{\"dt\":0.02,\"input\":{\"size\":6,\"kind\":\"tactile\"},\"layers\":[{\"size\":2,"
                      "\"neuron\":\"lif\"}],\"readout\":{\"size\":2},\"encoder\":{\"type\":\"sigmadelta\","
                      "\"threshold\":1,\"n_taxels\":3,\"invert\":true}}";
    snn_st_out t[] = {MG_T2("layers.0.w_in", 2, 6, w), MG_T1("layers.0.alpha", 2, a2), MG_T1("layers.0.beta", 2, b2),
                      MG_T2("readout.w", 2, 2, wo), MG_T1("readout.alpha", 2, oa), MG_T1("readout.beta", 2, ob)};
    return load_model("tact", cfg, t, 6);
}

/* Tactile frames whose values move more levels than the model's 8-bit range
 * (a sensor with a wider range: 3 taxels x 1000 levels = 3000 events, the
 * array holds 1024) are encoded, not refused; a frame past the per-frame
 * limit is refused with EINVAL and changes nothing. */
static void tactile_frames_beyond_8_bits_are_encoded(void **u)
{
    (void)u;
    snn_model *m = tactile_model();
    snn_err e;
    snn_session_cfg sc = {.input = SNN_INPUT_TACTILE};
    snn_session *s;
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), 0);
    const float v0[3] = {0, 0, 0}, v1[3] = {1000, 1000, 1000}, far[3] = {1e5f, 1e5f, 1e5f},
                v2[3] = {1001, 1001, 1001};
    assert_int_equal(snn_session_frame(s, 0, v0, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_frame(s, 20000, v1, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_stats_get(s)->events, 3000);
    assert_int_equal(snn_session_frame(s, 40000, far, 3, NULL, NULL, &e), -SNN_EINVAL);
    assert_non_null(strstr(e.msg, "encoder events"));
    assert_int_equal(snn_session_stats_get(s)->events, 3000);
    assert_int_equal(snn_session_frame(s, 40000, v2, 3, NULL, NULL, &e), 0); /* levels were kept */
    assert_int_equal(snn_session_stats_get(s)->events, 3003);
    snn_session_free(s);
    snn_model_free(m);
}

/* A tactile recording of frames t_first..t_last is stepped over
 * floor((t_last - t_first) / dt) + 1 bins, as the braille models were trained:
 * the last, partial bin counts at the end of the stream even when its frames
 * gave no event; a Flush alone leaves such a bin open. */
static void tactile_stream_steps_every_bin_with_a_frame(void **u)
{
    (void)u;
    snn_model *m = tactile_model();
    snn_err e;
    snn_session *s;
    snn_session_cfg sc = {.input = SNN_INPUT_TACTILE};
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), 0);
    const float v0[3] = {255, 255, 255}, v1[3] = {250, 255, 255};
    /* 40 Hz: events only between the first two frames; floor(50000 / 20000) + 1 = 3 bins */
    assert_int_equal(snn_session_frame(s, 1000000, v0, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_frame(s, 1025000, v1, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_frame(s, 1050000, v1, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_stats_get(s)->steps, 2);
    assert_int_equal(snn_session_flush(s, 0, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_stats_get(s)->steps, 2); /* bin [1040, 1060) ms stays open */
    assert_int_equal(snn_session_frame(s, 1055000, v1, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_finish(s, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_stats_get(s)->steps, 3);
    assert_int_equal(snn_session_stats_get(s)->last_t_us, 1060000);
    snn_session_free(s);
    /* the last frame brings events: that bin is closed once, not twice */
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), 0);
    assert_int_equal(snn_session_frame(s, 0, v0, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_frame(s, 50000, v1, 3, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_finish(s, NULL, NULL, &e), 0);
    assert_int_equal(snn_session_stats_get(s)->steps, 3);
    snn_session_free(s);
    snn_model_free(m);
}

/* Counts predictions into *(uint64_t *)ctx. */
static void count_predictions(void *ctx, const snn_output *o)
{
    if (o->type == SNN_OUT_PREDICTION)
        ++*(uint64_t *)ctx;
}

/* A model whose input is audio takes AudioChunk samples only, cannot learn,
 * and its time moves with its samples (Flush cannot insert hops); when its
 * kind has no partial step (an rsnn here), the last partial hop is dropped,
 * so every step is a whole hop and gives one prediction. A model of counts
 * takes no audio. */
static void audio_models_take_audio_only(void **u)
{
    (void)u;
    /* 3 samples per 1 ms step: a 3 kHz audio model */
    static const float w[3] = {1, 2, 3}, a1[1] = {0}, b1[1] = {.5f}, wo[1] = {1}, oa[1] = {0}, ob[1] = {.5f};
    const char *cfg = "{\"dt\":0.001,\"input\":{\"size\":3,\"kind\":\"audio\"},\"layers\":[{\"size\":1,"
                      "\"neuron\":\"lif\"}],\"readout\":{\"size\":1}}";
    snn_st_out t[] = {MG_T2("layers.0.w_in", 1, 3, w), MG_T1("layers.0.alpha", 1, a1), MG_T1("layers.0.beta", 1, b1),
                      MG_T2("readout.w", 1, 1, wo), MG_T1("readout.alpha", 1, oa), MG_T1("readout.beta", 1, ob)};
    snn_model *m = load_model("audio", cfg, t, 6);
    snn_err e;
    snn_session *s;
    snn_session_cfg sc = {.input = SNN_INPUT_SPIKES};
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), -SNN_EINVAL);
    assert_non_null(strstr(e.msg, "takes audio only (AudioChunk): input kind spikes is not possible"));
    sc.input = SNN_INPUT_BINNED;
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), -SNN_EINVAL);
    snn_session_cfg lc = {.learn = {.enabled = 1}};
    assert_int_equal(snn_session_new(m, &lc, NULL, &s, &e), -SNN_ENOTSUP);
    assert_non_null(strstr(e.msg, "cannot learn from audio"));
    assert_int_equal(snn_session_new(m, NULL, NULL, &s, &e), 0);
    assert_int_equal(snn_session_input(s), SNN_INPUT_AUDIO);
    static float pcm[1001];
    for (int i = 0; i < 1001; i++)
        pcm[i] = 0.5f * (float)((i * 7) % 11) / 11.0f;
    uint64_t n = 0;
    assert_int_equal(snn_session_audio(s, pcm, 1000, 3000, count_predictions, &n, &e), 0);
    /* Flush cannot move an audio stream's time: t_us = 0 does nothing, a later t_us is refused */
    assert_int_equal(snn_session_flush(s, 0, count_predictions, &n, &e), 0);
    assert_int_equal(snn_session_flush(s, 5000000, count_predictions, &n, &e), -SNN_EINVAL);
    assert_non_null(strstr(e.msg, "flush t_us = 5000000 on an audio stream"));
    assert_int_equal(n, 333);
    assert_int_equal(snn_session_audio(s, pcm + 1000, 1, 3000, count_predictions, &n, &e), 0);
    assert_int_equal(snn_session_finish(s, count_predictions, &n, &e), 0);
    assert_int_equal(n, 333); /* 1001 = 333 hops of 3 + 2 samples, dropped */
    assert_int_equal(snn_session_stats_get(s)->steps, 333);
    snn_session_free(s);
    snn_model_free(m);
    /* and the other way round: audio into a model of counts */
    m = small_model("spikes");
    sc.input = SNN_INPUT_AUDIO;
    assert_int_equal(snn_session_new(m, &sc, NULL, &s, &e), -SNN_EINVAL);
    assert_non_null(strstr(e.msg, "does not take audio (its input is spikes)"));
    snn_model_free(m);
}

/* Every allocation failure while opening a session is an error, no leak. */
static void every_allocation_failure_is_an_error(void **u)
{
    (void)u;
    snn_model *m = small_model("spikes");
    int failures = 0;
    for (int k = 1; k < 100; k++) {
        snn_test_fail_alloc_after(k);
        snn_session *s = NULL;
        snn_err e;
        int rc = snn_session_new(m, NULL, &snn_test_allocator, &s, &e);
        snn_test_fail_alloc_after(0);
        if (rc < 0) {
            assert_null(s);
            failures++;
            continue;
        }
        snn_session_free(s);
        break;
    }
    assert_true(failures >= 5);
    snn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spikes_and_binned_give_identical_steps),
        cmocka_unit_test(rejected_batch_changes_nothing),
        cmocka_unit_test(steps_to_predicts_the_steps_closed),
        cmocka_unit_test(analog_frames_are_sampled_and_held),
        cmocka_unit_test(segments_decide_after_silence),
        cmocka_unit_test(tactile_frames_beyond_8_bits_are_encoded),
        cmocka_unit_test(tactile_stream_steps_every_bin_with_a_frame),
        cmocka_unit_test(audio_models_take_audio_only),
        cmocka_unit_test(every_allocation_failure_is_an_error),
    };
    return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
