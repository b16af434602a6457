/*
 * conf_dnsmos_bam.c -- the shipped dnsmos-bam model against the training script's own
 * inference (models/train/train_dnsmos_bam.py --ref-clips, which runs bam.h's equations in
 * PyTorch on the exported tensors): every window of the real 16 kHz clips in
 * ../shared/data/dnsmos/clips, streamed through a session as `snn model run` does, must give the
 * same raw SIG, BAK, OVRL (to 1e-4: the features and bits are exact, only the float sums of the
 * dense head may round differently). Clips shorter than a window are tiled and scored by the
 * mean over their windows. Reference: tests/fixtures/dnsmos_bam/ref_outputs.json.
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsmos.h"
#include "model.h"
#include "session.h"
#include "testutil.h"
#include "wav.h"

typedef struct {
    float raw[64][3];
    int n;
} outs;

static void collect(void *ctx, const snn_output *o)
{
    outs *s = ctx;
    if (o->type == SNN_OUT_PREDICTION && s->n < 64) {
        memcpy(s->raw[s->n], o->values + 3, 3 * sizeof(float));
        s->n++;
    }
}

static void test_clips_match_reference(void **state)
{
    (void)state;
    const char *clipdir = snn_test_data("dnsmos/clips");
    json_error_t je;
    json_t *ref = json_load_file(snn_test_src("tests/fixtures/dnsmos_bam/ref_outputs.json"), 0, &je);
    if (!ref)
        fail_msg("ref_outputs.json: %s", je.text);
    snn_model *m;
    snn_err e;
    if (snn_model_load(snn_test_src("models/zoo/dnsmos-bam.safetensors"), NULL, &m, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(m->ops->kind, "dnsmos-bam");
    size_t i;
    json_t *c;
    int windows = 0;
    double maxd = 0;
    json_array_foreach(ref, i, c) {
        const char *clip = json_string_value(json_object_get(c, "clip"));
        json_t *wins = json_object_get(c, "windows_raw");
        char path[512];
        snprintf(path, sizeof path, "%s/%s", clipdir, clip);
        snn_wav w;
        if (snn_wav_read(path, NULL, &w, &e))
            fail_msg("%s", e.msg);
        assert_int_equal(w.sample_rate, 16000);
        assert_int_equal((json_int_t)w.n, json_integer_value(json_object_get(c, "samples")));
        snn_session *s;
        assert_int_equal(snn_session_new(m, NULL, NULL, &s, &e), 0);
        static outs got;
        got.n = 0;
        for (size_t off = 0; off < w.n; off += 320) {
            size_t k = w.n - off < 320 ? w.n - off : 320;
            assert_int_equal(snn_session_audio(s, w.x + off, k, 16000, collect, &got, &e), 0);
        }
        assert_int_equal(snn_session_finish(s, collect, &got, &e), 0);
        snn_session_free(s);
        size_t nw = json_array_size(wins);
        float want[64][3];
        int nwant;
        if (w.n < 144160) { /* tiled: one score, the mean over the windows */
            nwant = 1;
            for (int j = 0; j < 3; j++) {
                double acc = 0;
                for (size_t k = 0; k < nw; k++)
                    acc += json_real_value(json_array_get(json_array_get(wins, k), (size_t)j));
                want[0][j] = (float)(acc / (double)nw);
            }
        } else {
            nwant = (int)nw;
            for (size_t k = 0; k < nw && k < 64; k++)
                for (int j = 0; j < 3; j++)
                    want[k][j] = (float)json_real_value(json_array_get(json_array_get(wins, k), (size_t)j));
        }
        if (got.n != nwant)
            fail_msg("%s: %d scores, reference %d", clip, got.n, nwant);
        for (int k = 0; k < nwant; k++)
            for (int j = 0; j < 3; j++) {
                double d = fabs((double)got.raw[k][j] - want[k][j]);
                if (d > maxd)
                    maxd = d;
                if (d > 1e-4)
                    fail_msg("%s window %d output %d: snnd %.6f, reference %.6f", clip, k, j, got.raw[k][j],
                             want[k][j]);
            }
        printf("# %s: %d score(s), SIG/BAK/OVRL raw %.3f %.3f %.3f\n", clip, got.n, got.raw[0][0], got.raw[0][1],
               got.raw[0][2]);
        windows += nwant;
        snn_wav_free(&w);
    }
    printf("# %d scores, max |snnd - reference| %.2e\n", windows, maxd);
    assert_true(windows >= 4);
    json_decref(ref);
    snn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clips_match_reference),
    };
    return cmocka_run_group_tests_name("dnsmos_bam", tests, NULL, NULL);
}
