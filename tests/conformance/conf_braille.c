/*
 * conf_braille.c -- the tactile Braille pipeline end to end in C: raw iCub
 * taxel frames -> sigma-delta encoder (models/sigmadelta.h, set up from the
 * model's config "encoder" object) -> events binned into the model's dt ->
 * rsnn engine (models/model.h public API) -> argmax of the summed per-step
 * class probabilities.
 *
 * Data: Müller-Cleve et al. 2022, Tactile Braille Letters (CC-BY-4.0),
 * ../shared/data/braille/braille_letters_reps00-39_raw40hz.csv; validation
 * split = repetitions 32..39 (216 recordings), as in
 * models/train/train_braille.py, which trained models/zoo/braille-rsnn*.
 *
 * What must hold:
 *   - fixtures (tests/fixtures/braille, no shared data needed): the big model
 *     reads the letter given in the file name;
 *   - braille-rsnn reaches >= 97% and braille-rsnn-tiny (<= 64 hidden) >= 93%
 *     validation accuracy (the floors of the task; the figures printed are
 *     the C engine's own).
 *
 * Binning: step k holds the events with k*dt <= t - t_first < (k+1)*dt; a
 * recording has floor((t_last - t_first) / dt) + 1 steps.  A bin is stepped
 * as soon as a frame time reaches its end (later events cannot fall into it).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "model.h"
#include "rsnn.h"
#include "sigmadelta.h"
#include "testutil.h"

#define N_TAXELS 12
#define MAX_FRAMES 256
#define MAX_EVENTS 8192
#define N_CLASSES 27

typedef struct recording {
    int label;
    int rep;
    uint32_t n;                          /* frames */
    int64_t t_us[MAX_FRAMES];
    float v[MAX_FRAMES][N_TAXELS];
} recording;

/* Reads the model's "encoder" config into cfg; asserts it is sigma-delta. */
static void encoder_config(const snn_model *m, snn_sigmadelta_config *cfg)
{
    const json_t *enc = json_object_get(snn_rsnn_config(m), "encoder");
    assert_non_null(enc);
    assert_string_equal(json_string_value(json_object_get(enc, "type")), "sigmadelta");
    memset(cfg, 0, sizeof *cfg);
    cfg->n_channels = N_TAXELS;
    cfg->threshold = json_number_value(json_object_get(enc, "threshold"));
    cfg->refractory_us = (int64_t)json_integer_value(json_object_get(enc, "refractory_us"));
    cfg->merge_on_off = json_is_true(json_object_get(enc, "merge_on_off"));
    cfg->invert = json_is_true(json_object_get(enc, "invert"));
}

typedef struct result {
    int pred;
    uint64_t steps, hidden_spikes, hidden_neurons;
} result;

/* Streams one recording through encoder + model from fresh state. */
static result classify(const snn_model *m, snn_state *s, snn_sigmadelta *enc,
                       const recording *r)
{
    static snn_event ev[MAX_EVENTS];
    float x[64], out[64], acc[64];
    snn_step_info info;
    snn_err err;
    result res = {0, 0, 0, 0};
    int64_t dt_us = llround(m->dt * 1e6), t_first = r->t_us[0];
    uint64_t cur = 0, n_steps = (uint64_t)((r->t_us[r->n - 1] - t_first) / dt_us) + 1;

    assert_true(m->n_in <= 64 && m->n_out <= 64);
    m->ops->state_reset(m, s);
    snn_sigmadelta_reset(enc);
    memset(x, 0, sizeof x);
    memset(acc, 0, sizeof acc);
#define STEP_BIN()                                                                 \
    do {                                                                           \
        memset(&info, 0, sizeof info);                                             \
        assert_int_equal(m->ops->step(m, s, x, out, &info), 0);                    \
        if (info.has_output)                                                       \
            for (uint32_t k = 0; k < m->n_out; k++)                                \
                acc[k] += out[k];                                                  \
        res.hidden_spikes += info.hidden_spikes;                                   \
        res.hidden_neurons = info.hidden_neurons;                                  \
        res.steps++;                                                               \
        memset(x, 0, sizeof x);                                                    \
        cur++;                                                                     \
    } while (0)
    for (uint32_t i = 0; i < r->n; i++) {
        size_t n;
        int rc = snn_sigmadelta_push(enc, r->t_us[i], r->v[i], ev, MAX_EVENTS, &n, &err);
        if (rc < 0)
            fail_msg("%s", err.msg);
        for (size_t j = 0; j < n; j++) {
            uint64_t k = (uint64_t)((ev[j].t_us - t_first) / dt_us);
            assert_true(k >= cur && k < n_steps);
            while (cur < k)
                STEP_BIN();
            assert_true(ev[j].channel < m->n_in);
            x[ev[j].channel] += 1.0f;
        }
        while (t_first + (int64_t)(cur + 1) * dt_us <= r->t_us[i])
            STEP_BIN();
    }
    while (cur < n_steps)
        STEP_BIN();
#undef STEP_BIN
    for (uint32_t k = 1; k < m->n_out; k++)
        if (acc[k] > acc[res.pred])
            res.pred = (int)k;
    return res;
}

/* Loads a zoo model and checks what the stream layer relies on. */
static snn_model *load_braille(const char *rel)
{
    snn_model *m = NULL;
    snn_err err;
    if (snn_model_load(snn_test_src(rel), NULL, &m, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(m->n_in, 2 * N_TAXELS);
    assert_int_equal(m->n_out, N_CLASSES);
    assert_string_equal(m->input_kind, "tactile");
    assert_int_equal(m->decision, SNN_DECISION_ARGMAX_SUM);
    assert_non_null(m->labels);
    assert_string_equal(m->labels[0], "Space");
    assert_string_equal(m->labels[26], "Z");
    return m;
}

/* Parses the shared CSV (sample,letter,label,repetition,t_index,t_s,taxel_0..11)
 * keeping repetitions >= min_rep; returns the number of recordings. */
static uint32_t read_dataset(const char *path, int min_rep, recording *recs, uint32_t max)
{
    FILE *f = fopen(path, "r");
    char line[512];
    int cur_sample = -1;
    uint32_t n = 0;
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    while (fgets(line, sizeof line, f)) {
        char *p = line, *tok[18];
        int nt = 0;
        while (nt < 18 && (tok[nt] = strsep(&p, ",")) != NULL)
            nt++;
        assert_int_equal(nt, 18);
        int sample = atoi(tok[0]), rep = atoi(tok[3]);
        if (rep < min_rep)
            continue;
        if (sample != cur_sample) {
            assert_true(n < max);
            cur_sample = sample;
            recs[n].label = atoi(tok[2]);
            recs[n].rep = rep;
            recs[n].n = 0;
            n++;
        }
        recording *r = &recs[n - 1];
        assert_true(r->n < MAX_FRAMES);
        r->t_us[r->n] = (int64_t)atoi(tok[4]) * 25000; /* t_index at 40 Hz */
        for (int c = 0; c < N_TAXELS; c++)
            r->v[r->n][c] = (float)atof(tok[6 + c]);
        r->n++;
    }
    fclose(f);
    return n;
}

/* Reads a fixture CSV (t,taxel_0..taxel_11; t in seconds). */
static void read_fixture(const char *path, recording *r)
{
    FILE *f = fopen(path, "r");
    char line[512];
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_true(strncmp(line, "t,taxel_0,", 10) == 0);
    r->n = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        assert_true(r->n < MAX_FRAMES);
        r->t_us[r->n] = llround(strtod(p, &p) * 1e6);
        for (int c = 0; c < N_TAXELS; c++) {
            assert_true(*p == ',');
            r->v[r->n][c] = (float)strtod(p + 1, &p);
        }
        r->n++;
    }
    fclose(f);
}

/* The committed validation recordings are read as the letters they are. */
static void test_fixtures_read_their_letters(void **st)
{
    (void)st;
    static const struct {
        const char *file;
        const char *letter;
    } fx[] = {
        {"tests/fixtures/braille/val_rep32_Space.csv", "Space"},
        {"tests/fixtures/braille/val_rep33_B.csv", "B"},
        {"tests/fixtures/braille/val_rep35_K.csv", "K"},
        {"tests/fixtures/braille/val_rep37_R.csv", "R"},
        {"tests/fixtures/braille/val_rep39_Z.csv", "Z"},
    };
    static recording r;
    snn_model *m = load_braille("models/zoo/braille-rsnn.safetensors");
    snn_sigmadelta_config cfg;
    snn_sigmadelta *enc;
    snn_state *s;
    snn_err err;
    encoder_config(m, &cfg);
    assert_int_equal(snn_sigmadelta_new(&cfg, NULL, &enc, &err), 0);
    assert_int_equal(m->ops->state_new(m, &s, &err), 0);
    for (size_t i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        read_fixture(snn_test_src(fx[i].file), &r);
        result res = classify(m, s, enc, &r);
        printf("%s: read %s\n", fx[i].file, m->labels[res.pred]);
        assert_string_equal(m->labels[res.pred], fx[i].letter);
    }
    m->ops->state_free(m, s);
    snn_sigmadelta_free(enc);
    snn_model_free(m);
}

/* Accuracy of one zoo model on all 216 validation recordings. */
static void check_accuracy(const char *rel, double floor_acc)
{
    static recording recs[300];
    uint32_t n = read_dataset(snn_test_data("braille/braille_letters_reps00-39_raw40hz.csv"), 32,
                              recs, 300);
    snn_model *m = load_braille(rel);
    snn_sigmadelta_config cfg;
    snn_sigmadelta *enc;
    snn_state *s;
    snn_err err;
    uint32_t correct = 0;
    uint64_t spikes = 0, neuron_steps = 0;

    assert_int_equal(n, 216);
    encoder_config(m, &cfg);
    assert_int_equal(snn_sigmadelta_new(&cfg, NULL, &enc, &err), 0);
    assert_int_equal(m->ops->state_new(m, &s, &err), 0);
    for (uint32_t i = 0; i < n; i++) {
        result res = classify(m, s, enc, &recs[i]);
        correct += res.pred == recs[i].label;
        spikes += res.hidden_spikes;
        neuron_steps += res.steps * res.hidden_neurons;
    }
    double acc = (double)correct / n;
    printf("%s: validation accuracy %.2f%% (%u/%u), footprint %llu bytes, "
           "mean hidden rate %.2f Hz\n",
           rel, 100 * acc, correct, n, (unsigned long long)m->footprint,
           (double)spikes / (double)neuron_steps / m->dt);
    assert_true(acc >= floor_acc);
    m->ops->state_free(m, s);
    snn_sigmadelta_free(enc);
    snn_model_free(m);
}

static void test_braille_rsnn_accuracy(void **st)
{
    (void)st;
    check_accuracy("models/zoo/braille-rsnn.safetensors", 0.97);
}

static void test_braille_rsnn_tiny_accuracy(void **st)
{
    (void)st;
    check_accuracy("models/zoo/braille-rsnn-tiny.safetensors", 0.93);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_read_their_letters),
        cmocka_unit_test(test_braille_rsnn_accuracy),
        cmocka_unit_test(test_braille_rsnn_tiny_accuracy),
    };
    return cmocka_run_group_tests_name("braille", tests, NULL, NULL);
}
