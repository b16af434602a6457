/*
 * conf_braille_words.c -- a robot reads words: validation recordings of
 * single letters, concatenated with no-contact gaps (all taxels 255) of random
 * length and random starting offsets, streamed as raw taxel frames through a
 * session exactly as snnd runs a tactile stream (sigma-delta encoder, bins,
 * model, segment_silence decisions). One decision must come per letter, pushed
 * as soon as the finger has left it; the test prints the letter accuracy of
 * such streams next to the per-recording accuracy and asserts floors.
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
#include "session.h"
#include "testutil.h"

#define MAXREC 1080
#define MAXT 80
#define NTAX 12

typedef struct rec {
    int label, rep, n;
    float v[MAXT][NTAX];
} rec;

static rec *recs;
static int n_recs;

static void load_csv(void)
{
    const char *path = snn_test_data("braille/braille_letters_reps00-39_raw40hz.csv");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    recs = calloc(MAXREC, sizeof *recs);
    int cur = -1;
    while (fgets(line, sizeof line, f)) {
        int sample, label, rep, ti;
        char letter[16];
        double ts;
        float t[NTAX];
        int k = sscanf(line, "%d,%15[^,],%d,%d,%d,%lf,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f", &sample, letter, &label,
                       &rep, &ti, &ts, &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9], &t[10],
                       &t[11]);
        assert_int_equal(k, 18);
        if (sample != cur) {
            cur = sample;
            assert_true(n_recs < MAXREC);
            recs[n_recs++] = (rec){.label = label, .rep = rep};
        }
        rec *r = &recs[n_recs - 1];
        if (r->n < MAXT)
            memcpy(r->v[r->n++], t, sizeof t);
    }
    fclose(f);
}

typedef struct word {
    int decided[64];
    int n;
} word;

static void on_out(void *ctx, const snn_output *o)
{
    word *w = ctx;
    if (o->type == SNN_OUT_DECISION && w->n < 64)
        w->decided[w->n++] = o->index;
}

static uint32_t rng = 2024;
static uint32_t rnd(void) { return rng = rng * 1664525u + 1013904223u; }

/* A sender: every frame, or (changes_only) only frames whose values differ from the last
 * frame sent, as a change-driven tactile pipeline sends them. */
typedef struct sender {
    snn_session *s;
    word *w;
    int changes_only, sent;
    float last[NTAX];
} sender;

static void send(sender *x, uint64_t t, const float *v)
{
    if (x->changes_only && x->sent && !memcmp(v, x->last, sizeof x->last))
        return;
    snn_err e;
    assert_int_equal(snn_session_frame(x->s, t, v, NTAX, on_out, x->w, &e), 0);
    memcpy(x->last, v, sizeof x->last);
    x->sent = 1;
}

/* Streams words of validation letters (repetitions 32..39) through model m, every frame or
 * (changes_only) only changed ones, the encoder holding values over gaps longer than hold_us
 * (0: off); returns letter accuracy (position by position; missing or extra decisions
 * count as errors) and writes decisions/letters. */
static double read_words(snn_model *m, int n_words, int changes_only, int64_t hold_us, int *n_letters,
                         int *n_decisions)
{
    int val[MAXREC], nv = 0;
    for (int i = 0; i < n_recs; i++)
        if (recs[i].rep >= 32)
            val[nv++] = i;
    int right = 0, letters = 0, decisions = 0;
    const float blank[NTAX] = {255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255};
    for (int wi = 0; wi < n_words; wi++) {
        snn_session_cfg cfg = {.input = SNN_INPUT_TACTILE, .segment_silence_us = 150000,
                               .tactile_hold_us = hold_us};
        snn_session *s;
        snn_err e;
        assert_int_equal(snn_session_new(m, &cfg, NULL, &s, &e), 0);
        word w = {.n = 0};
        sender x = {.s = s, .w = &w, .changes_only = changes_only};
        int truth[16], nl = 4 + (int)(rnd() % 6);
        uint64_t t = (uint64_t)(rnd() % 25000); /* arbitrary start */
        for (int li = 0; li < nl; li++) {
            /* a gap of 0.25..1 s of no contact, sampled at 40 Hz */
            int gap = 10 + (int)(rnd() % 31);
            for (int g = 0; g < gap; g++, t += 25000)
                send(&x, t, blank);
            const rec *r = &recs[val[rnd() % (uint32_t)nv]];
            truth[li] = r->label;
            for (int k = 0; k < r->n; k++, t += 25000)
                send(&x, t, r->v[k]);
        }
        for (int g = 0; g < 10; g++, t += 25000) /* the finger lifts */
            send(&x, t, blank);
        if (changes_only) /* such a sender tells the time with a Flush (snnd: Flush.t_us) */
            assert_int_equal(snn_session_flush(s, t, on_out, &w, &e), 0);
        int pushed_before_close = w.n;
        assert_int_equal(snn_session_finish(s, on_out, &w, &e), 0);
        assert_int_equal(pushed_before_close, w.n); /* each decision came as the letter ended */
        for (int li = 0; li < nl; li++)
            right += li < w.n && w.decided[li] == truth[li];
        letters += nl;
        decisions += w.n;
        snn_session_free(s);
    }
    *n_letters = letters;
    *n_decisions = decisions;
    int extra = decisions > letters ? decisions - letters : 0;
    return (double)right / (double)(letters + extra);
}

/* Each validation recording alone, streamed as raw frames through a session
 * with no segmentation: the decision at the end of the stream. */
static double per_recording(snn_model *m, int *n)
{
    int right = 0;
    *n = 0;
    for (int i = 0; i < n_recs; i++) {
        if (recs[i].rep < 32)
            continue;
        snn_session_cfg cfg = {.input = SNN_INPUT_TACTILE};
        snn_session *s;
        snn_err e;
        assert_int_equal(snn_session_new(m, &cfg, NULL, &s, &e), 0);
        word w = {.n = 0};
        for (int k = 0; k < recs[i].n; k++)
            assert_int_equal(snn_session_frame(s, (uint64_t)k * 25000, recs[i].v[k], NTAX, on_out, &w, &e), 0);
        assert_int_equal(snn_session_finish(s, on_out, &w, &e), 0);
        assert_int_equal(w.n, 1);
        right += w.decided[0] == recs[i].label;
        (*n)++;
        snn_session_free(s);
    }
    return (double)right / *n;
}

static void words(const char *name, double floor, double rec_floor)
{
    if (!recs)
        load_csv();
    char path[512];
    snprintf(path, sizeof path, "models/zoo/%s.safetensors", name);
    snn_model *m;
    snn_err e;
    assert_int_equal(snn_model_load(snn_test_src(path), NULL, &m, &e), 0);
    int nr;
    double racc = per_recording(m, &nr);
    printf("# %s: %d validation recordings streamed one by one: accuracy %.2f%%\n", name, nr, 100 * racc);
    assert_true(racc >= rec_floor);
    int nl, nd;
    double acc = read_words(m, 40, 0, 0, &nl, &nd);
    printf("# %s: 40 word streams, %d letters, %d decisions, letter accuracy %.2f%% (segment_silence 150 ms)\n",
           name, nl, nd, 100 * acc);
    assert_int_equal(nd, nl);
    assert_true(acc >= floor);
    /* A change-driven sender (no frames while the taxels stay at 255): without a hold the
     * change after each pause is spread over the pause, letters merge; with tactile_hold
     * 50 ms (two frame periods) every letter is decided again. */
    rng = 2024;
    double acc_skip = read_words(m, 40, 1, 0, &nl, &nd);
    printf("# %s: the same words, changed frames only: %d letters, %d decisions, letter accuracy %.2f%%\n", name,
           nl, nd, 100 * acc_skip);
    assert_true(nd < nl * 3 / 4); /* the failure tactile_hold_ms exists for */
    rng = 2024;
    double acc_hold = read_words(m, 40, 1, 50000, &nl, &nd);
    printf("# %s: changed frames only, hold 50 ms: %d letters, %d decisions, letter accuracy %.2f%%\n", name, nl,
           nd, 100 * acc_hold);
    assert_int_equal(nd, nl);
    assert_true(acc_hold >= floor);
    snn_model_free(m);
}

static void braille_rsnn_reads_words(void **u)
{
    (void)u;
    words("braille-rsnn", 0.95, 0.97);
}

static void braille_rsnn_tiny_reads_words(void **u)
{
    (void)u;
    words("braille-rsnn-tiny", 0.90, 0.93);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(braille_rsnn_reads_words),
        cmocka_unit_test(braille_rsnn_tiny_reads_words),
    };
    int rc = cmocka_run_group_tests_name("braille_words", tests, NULL, NULL);
    free(recs);
    return rc;
}
