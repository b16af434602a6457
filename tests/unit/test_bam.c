/*
 * test_bam.c -- the binary-activation DNSMOS kernel (models/bam.h): a network whose scores
 * are worked out by hand, random networks against a plain transcription of bam.h's equations
 * (portable and AVX2 kernels, bit for bit), and files that must be refused with a named error.
 */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bam.h"
#include "dnsmos.h"
#include "model.h"
#include "testutil.h"

#define NT 900
#define NF 161
#define WIN 144160

/* ---- a network in memory, written as a safetensors file ----------------- */

typedef struct net {
    int widths[7], head[2];
    int8_t kre[NF * 320], kim[NF * 320];
    float sre[NF], sim[NF];
    int8_t *w[7];   /* [co][ci][3][3] */
    float thr[7][128];
    int8_t dir[7][128];
    int8_t *fw[3];  /* [out][in] */
    float *fs[3], *fb[3];
    float mean[3], std[3];
    float x_scale;          /* feature steps per decade (metadata "x_scale") */
    const char *format;
    const char *head_meta; /* overrides the metadata "head" when set */
    const char *widths_meta; /* overrides the metadata "widths" when set */
    const char *readout;     /* metadata "readout" when set; "max" also writes the tensors below */
    float ro_scale[128], ro_bias[128];
    int has_floor;           /* writes readout.floor (any read-out, for the refusal test) */
    float ro_floor[128];
} net;

static int floor_binds; /* reference(): maxima raised to their floor, so a floor test can fail */

static int cin(const net *n, int l) { return l ? n->widths[l - 1] : 1; }
static int both(const net *n) { return n->readout && !strcmp(n->readout, "rate+max"); }
static int fin(const net *n, int j) { return j == 0 ? n->widths[6] * (both(n) ? 2 : 1) : n->head[j - 1]; }
static int fout(const net *n, int j) { return j == 2 ? 3 : n->head[j]; }

static void net_init(net *n, const int widths[7], int h0, int h1)
{
    memset(n, 0, sizeof *n);
    memcpy(n->widths, widths, sizeof n->widths);
    n->head[0] = h0;
    n->head[1] = h1;
    n->x_scale = 16;
    for (int l = 0; l < 7; l++)
        n->w[l] = calloc((size_t)widths[l] * cin(n, l) * 9, 1);
    for (int j = 0; j < 3; j++) {
        n->fw[j] = calloc((size_t)fout(n, j) * fin(n, j), 1);
        n->fs[j] = calloc((size_t)fout(n, j), sizeof(float));
        n->fb[j] = calloc((size_t)fout(n, j), sizeof(float));
    }
    for (int k = 0; k < NF; k++)
        n->sre[k] = n->sim[k] = 1;
    for (int l = 0; l < 7; l++)
        for (int c = 0; c < 128; c++)
            n->dir[l][c] = 1;
    for (int i = 0; i < 3; i++)
        n->std[i] = 1;
    n->format = "snnd-dnsmos-bam";
}

static void net_free(net *n)
{
    for (int l = 0; l < 7; l++)
        free(n->w[l]);
    for (int j = 0; j < 3; j++) {
        free(n->fw[j]);
        free(n->fs[j]);
        free(n->fb[j]);
    }
}

typedef struct blob {
    json_t *hdr;
    uint8_t *data;
    size_t len;
} blob;

static void put(blob *b, const char *name, const char *dt, const void *p, size_t nbytes, int nd, ...)
{
    va_list ap;
    va_start(ap, nd);
    json_t *shape = json_array();
    for (int i = 0; i < nd; i++)
        json_array_append_new(shape, json_integer(va_arg(ap, int)));
    va_end(ap);
    json_object_set_new(b->hdr, name, json_pack("{s:s, s:o, s:[I,I]}", "dtype", dt, "shape", shape,
                                                "data_offsets", (json_int_t)b->len,
                                                (json_int_t)(b->len + nbytes)));
    b->data = realloc(b->data, b->len + nbytes);
    memcpy(b->data + b->len, p, nbytes);
    b->len += nbytes;
}

/* Writes n to a temporary file; skip names one tensor to leave out. Returns the path. */
static const char *net_write(const net *n, const char *skip)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/test_bam_%d.safetensors", (int)getpid());
    blob b = {json_object(), NULL, 0};
    char ws[64], hs[32], nm[32], xs[32];
    snprintf(ws, sizeof ws, "%d,%d,%d,%d,%d,%d,%d", n->widths[0], n->widths[1], n->widths[2], n->widths[3],
             n->widths[4], n->widths[5], n->widths[6]);
    if (n->widths_meta)
        snprintf(ws, sizeof ws, "%s", n->widths_meta);
    snprintf(hs, sizeof hs, "%s", n->head_meta ? n->head_meta : "");
    if (!n->head_meta)
        snprintf(hs, sizeof hs, "%d,%d", n->head[0], n->head[1]);
    snprintf(xs, sizeof xs, "%g", n->x_scale);
    json_object_set_new(b.hdr, "__metadata__",
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "format", n->format, "version", "1",
                                  "widths", ws, "pool_after", "3,4,5", "x_scale", xs, "head", hs));
    if (n->readout)
        json_object_set_new(json_object_get(b.hdr, "__metadata__"), "readout", json_string(n->readout));
#define PUT(name, dt, p, nb, ...)                                                                  \
    do {                                                                                           \
        if (!skip || strcmp(skip, name))                                                           \
            put(&b, name, dt, p, nb, __VA_ARGS__);                                                 \
    } while (0)
    PUT("stft.re", "I8", n->kre, sizeof n->kre, 2, NF, 320);
    PUT("stft.im", "I8", n->kim, sizeof n->kim, 2, NF, 320);
    PUT("stft.re_scale", "F32", n->sre, sizeof n->sre, 1, NF);
    PUT("stft.im_scale", "F32", n->sim, sizeof n->sim, 1, NF);
    for (int l = 0; l < 7; l++) {
        int co = n->widths[l];
        snprintf(nm, sizeof nm, "conv%d.w", l);
        PUT(nm, "I8", n->w[l], (size_t)co * cin(n, l) * 9, 4, co, cin(n, l), 3, 3);
        snprintf(nm, sizeof nm, "conv%d.thr", l);
        PUT(nm, "F32", n->thr[l], (size_t)co * 4, 1, co);
        snprintf(nm, sizeof nm, "conv%d.dir", l);
        PUT(nm, "I8", n->dir[l], (size_t)co, 1, co);
    }
    for (int j = 0; j < 3; j++) {
        int o = fout(n, j), i = fin(n, j);
        snprintf(nm, sizeof nm, "fc%d.w", j);
        PUT(nm, "I8", n->fw[j], (size_t)o * i, 2, o, i);
        snprintf(nm, sizeof nm, "fc%d.scale", j);
        PUT(nm, "F32", n->fs[j], (size_t)o * 4, 1, o);
        snprintf(nm, sizeof nm, "fc%d.b", j);
        PUT(nm, "F32", n->fb[j], (size_t)o * 4, 1, o);
    }
    if (n->readout && (!strcmp(n->readout, "max") || both(n))) {
        PUT("readout.scale", "F32", n->ro_scale, (size_t)n->widths[6] * 4, 1, n->widths[6]);
        PUT("readout.bias", "F32", n->ro_bias, (size_t)n->widths[6] * 4, 1, n->widths[6]);
    }
    if (n->has_floor)
        PUT("readout.floor", "F32", n->ro_floor, (size_t)n->widths[6] * 4, 1, n->widths[6]);
    PUT("out.mean", "F32", n->mean, 12, 1, 3);
    PUT("out.std", "F32", n->std, 12, 1, 3);
#undef PUT
    char *h = json_dumps(b.hdr, JSON_COMPACT);
    size_t hl = strlen(h);
    uint64_t hl8 = hl;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(&hl8, 8, 1, f);
    fwrite(h, 1, hl, f);
    fwrite(b.data, 1, b.len, f);
    fclose(f);
    free(h);
    free(b.data);
    json_decref(b.hdr);
    return path;
}

static snn_bam *load_or_fail(const char *path)
{
    snn_st st;
    snn_err err = {0};
    snn_bam *b = NULL;
    if (snn_st_open(&st, path, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    int rc = snn_bam_load(&st, path, NULL, &b, &err);
    snn_st_close(&st);
    if (rc)
        fail_msg("%s", err.msg);
    return b;
}

/* snn_bam_run() takes work of any alignment: give it one 8 bytes past a 64-byte boundary
 * (the kernels that need aligned sums must align them themselves). */
static void run(const snn_bam *b, const float *x, float raw[3])
{
    char *work = aligned_alloc(64, (snn_bam_work_size(b) + 8 + 63) & ~(size_t)63);
    snn_bam_run(b, x, raw, work + 8);
    free(work);
}

/* ---- by hand ------------------------------------------------------------- */

/* Every STFT row is a delta at n = 0 with scale 40: for x = 0.25 everywhere, p = 8192 and
 * R = 8192 * 40 / 32768 = 10, P = 100, q = round(16 * 2) = 32 at every position. conv0: channel
 * 0 has centre weight 1 and threshold 31.5 (fires: 32 > 31.5), channel 1 threshold 32.5 (silent),
 * channel 2 dir -1 threshold 40 (fires: 32 < 40). Layers 1-6 copy channels 0 and 2 through
 * their centre tap (threshold 0.5) and leave the others silent, so the last map has rate 1 in
 * channels 0 and 2 and 0 elsewhere, whatever the pooling and the borders. Head: fc0 o = i with
 * weight 2 and scale 0.25 -> h0 = 0.5 at 0 and 2; fc1 h1[0] = 3 h0[0] + 1 h0[2] with scale 1,
 * bias -1 -> 1.0; h1[1] = -1 * h0[0] -> relu 0; fc2 raw[j] = (j + 1) h1[0] * 0.5 + b_j with
 * b = (1, 2, 3) -> (1.5, 3, 4.5), then * std (2) + mean (0.5) -> (3.5, 6.5, 9.5). */
static void build_hand(net *n)
{
    static const int widths[7] = {16, 16, 16, 16, 32, 32, 64};
    net_init(n, widths, 128, 64);
    for (int k = 0; k < NF; k++) {
        n->kre[k * 320] = 1;
        n->sre[k] = 40;
    }
    n->w[0][0 * 9 + 4] = 1;
    n->thr[0][0] = 31.5f;
    n->w[0][1 * 9 + 4] = 1;
    n->thr[0][1] = 32.5f;
    n->w[0][2 * 9 + 4] = 1;
    n->thr[0][2] = 40;
    n->dir[0][2] = -1;
    /* channel 3: all nine weights 127, threshold 40000 > the largest sum 32 * 127 * 9 = 36576:
     * silent (sums of layer 0 exceed int16, so its threshold must not be clamped to int16);
     * layers 1-6 carry it through and fc1 weighs it 100, so firing would change every output */
    for (int t = 0; t < 9; t++)
        n->w[0][3 * 9 + t] = 127;
    n->thr[0][3] = 40000;
    for (int c = 4; c < 16; c++)
        n->thr[0][c] = 1e9f;
    for (int l = 1; l < 7; l++) {
        int ci = n->widths[l - 1];
        for (int c = 0; c < n->widths[l]; c++) {
            n->thr[l][c] = (c == 0 || c == 2 || c == 3) ? 0.5f : INFINITY;
            if (c == 0 || c == 2 || c == 3)
                n->w[l][((size_t)c * ci + c) * 9 + 4] = 1;
        }
    }
    for (int o = 0; o < 64; o++) {
        n->fw[0][o * 64 + o] = 2;
        n->fs[0][o] = 0.25f;
    }
    n->fw[1][0 * 128 + 0] = 3;
    n->fw[1][0 * 128 + 2] = 1;
    n->fw[1][0 * 128 + 3] = 100;
    n->fb[1][0] = -1;
    n->fw[1][1 * 128 + 0] = -1;
    for (int o = 0; o < 64; o++)
        n->fs[1][o] = 1;
    for (int j = 0; j < 3; j++) {
        n->fw[2][j * 64 + 0] = (int8_t)(j + 1);
        n->fs[2][j] = 0.5f;
        n->fb[2][j] = (float)(j + 1);
        n->std[j] = 2;
        n->mean[j] = 0.5f;
    }
}

static void test_by_hand(void **state)
{
    (void)state;
    net n;
    build_hand(&n);
    const char *path = net_write(&n, NULL);
    snn_bam *b = load_or_fail(path);
    unlink(path);
    float *x = malloc(WIN * sizeof *x);
    for (int i = 0; i < WIN; i++)
        x[i] = 0.25f;
    const float want[3] = {3.5f, 6.5f, 9.5f};
    for (int simd = 0; simd < 3; simd++) {
        snn_bam_set_simd(simd);
        float raw[3];
        run(b, x, raw);
        for (int j = 0; j < 3; j++)
            if (fabsf(raw[j] - want[j]) > 1e-6f)
                fail_msg("simd %d: raw[%d] = %.7g, want %.7g", simd, j, raw[j], want[j]);
    }
    /* x = 0.0625: R = 2.5, P = 6.25, q = round(16 * 0.79588) = 13: channels 0 and 2 change */
    for (int i = 0; i < WIN; i++)
        x[i] = 0.0625f;
    float raw[3];
    run(b, x, raw);
    /* channel 0 silent (13 < 31.5), channel 2 fires (13 < 40): h0 = (0, 0, 0.5); h1[0] =
     * relu(0.5 - 1) = 0 -> raw = b * std + mean = (2.5, 4.5, 6.5) */
    const float want2[3] = {2.5f, 4.5f, 6.5f};
    for (int j = 0; j < 3; j++)
        if (fabsf(raw[j] - want2[j]) > 1e-6f)
            fail_msg("quiet: raw[%d] = %.7g, want %.7g", j, raw[j], want2[j]);
    snn_bam_set_simd(2);
    snn_bam_free(b);
    free(x);
    net_free(&n);
}

/* ---- random networks against a plain transcription of bam.h --------------- */

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static int rint_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

/* bam.h's equations, one position at a time, no packing. Three quarters of this file's time
 * (the kernels it checks, a few percent): the sanitizer build leaves it uninstrumented, so
 * there it costs what it costs in a release build. */
#if defined(__GNUC__)
__attribute__((no_sanitize("address", "undefined")))
#endif
static void reference(const net *n, const float *x, float raw[3])
{
    int H = NT, W = NF, C = 1;
    int32_t *a = malloc((size_t)NT * NF * 128 * sizeof *a), *b = malloc((size_t)NT * NF * 128 * sizeof *b);
    float bounds[255];
    for (int j = 0; j < 255; j++)
        bounds[j] = (float)pow(10.0, (j - 127.5) / n->x_scale);
    for (int t = 0; t < NT; t++) {
        int32_t p[320];
        for (int i = 0; i < 320; i++) {
            float v = nearbyintf(x[160 * t + i] * 32768.0f);
            p[i] = (int32_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
        }
        for (int k = 0; k < NF; k++) {
            int32_t sr = 0, si = 0;
            for (int i = 0; i < 320; i++) {
                sr += p[i] * n->kre[k * 320 + i];
                si += p[i] * n->kim[k * 320 + i];
            }
            float re = (float)sr * n->sre[k] / 32768.0f, im = (float)si * n->sim[k] / 32768.0f;
            float P = re * re + im * im;
            int cnt = 0; /* bam.h: q = #{j : P > 10^((j - 127.5) / x_scale)} - 128 */
            for (int j = 0; j < 255; j++)
                cnt += P > bounds[j];
            a[t * NF + k] = cnt - 128;
        }
    }
    int32_t *S = malloc((size_t)NT * NF * sizeof *S);
    int readout_max = n->readout && (!strcmp(n->readout, "max") || both(n));
    const int off = both(n) ? n->widths[6] : 0; /* rate+max: rates, then maxima */
    float h[2][256];
    for (int l = 0; l < 7; l++) {
        int co = n->widths[l];
        for (int c = 0; c < co; c++) {
            /* S(t, k) = sum over i, dt, dk of w * a(t + dt - 1, k + dk - 1), zero outside */
            memset(S, 0, (size_t)H * W * sizeof *S);
            for (int i = 0; i < C; i++)
                for (int dt = 0; dt < 3; dt++)
                    for (int dk = 0; dk < 3; dk++) {
                        int32_t wv = n->w[l][((size_t)c * C + i) * 9 + dt * 3 + dk];
                        if (!wv)
                            continue;
                        for (int t = dt ? 0 : 1; t < H && t + dt - 1 < H; t++) {
                            const int32_t *ar = a + ((size_t)i * H + t + dt - 1) * W;
                            int32_t *sr = S + (size_t)t * W;
                            for (int k = dk ? 0 : 1; k < W && k + dk - 1 < W; k++)
                                sr[k] += wv * ar[k + dk - 1];
                        }
                    }
            for (int t = 0; t < H * W; t++)
                b[(size_t)c * H * W + t] = n->dir[l][c] * ((float)S[t] - n->thr[l][c]) > 0;
            if (l == 6 && readout_max) { /* bam.h: m_c = max over positions of dir_c S_c */
                int32_t m = INT32_MIN;
                for (int t = 0; t < H * W; t++)
                    m = n->dir[l][c] * S[t] > m ? n->dir[l][c] * S[t] : m;
                h[0][off + c] = (float)m * n->ro_scale[c] + n->ro_bias[c];
                if (n->has_floor && h[0][off + c] < n->ro_floor[c]) { /* bam.h: readout.floor */
                    h[0][off + c] = n->ro_floor[c];
                    floor_binds++;
                }
            }
        }
        if (l >= 3 && l <= 5) {
            for (int c = 0; c < co; c++)
                for (int t = 0; t < H / 2; t++)
                    for (int k = 0; k < W / 2; k++) {
                        const int32_t *r = b + ((size_t)c * H + 2 * t) * W + 2 * k;
                        a[((size_t)c * (H / 2) + t) * (W / 2) + k] = r[0] | r[1] | r[W] | r[W + 1];
                    }
            H /= 2;
            W /= 2;
        } else {
            int32_t *tmp = a;
            a = b;
            b = tmp;
        }
        C = co;
    }
    for (int c = 0; c < C && (!readout_max || both(n)); c++) {
        int cnt = 0;
        for (int i = 0; i < H * W; i++)
            cnt += a[(size_t)c * H * W + i];
        h[0][c] = (float)cnt / (float)(H * W);
    }
    int cur = 0;
    for (int j = 0; j < 3; j++) {
        for (int o = 0; o < fout(n, j); o++) {
            float s = 0;
            for (int i = 0; i < fin(n, j); i++)
                s += (float)n->fw[j][o * fin(n, j) + i] * h[cur][i];
            s = s * n->fs[j][o] + n->fb[j][o];
            h[!cur][o] = (j < 2 && s < 0) ? 0 : s;
        }
        cur = !cur;
    }
    for (int j = 0; j < 3; j++)
        raw[j] = h[cur][j] * n->std[j] + n->mean[j];
    free(a);
    free(b);
    free(S);
}

static void build_random(net *n, const int widths[7], int wmax_wide)
{
    net_init(n, widths, 32, 16);
    for (int i = 0; i < NF * 320; i++) {
        n->kre[i] = (int8_t)rint_in(-127, 127);
        n->kim[i] = (int8_t)rint_in(-127, 127);
    }
    for (int k = 0; k < NF; k++)
        n->sre[k] = n->sim[k] = 0.01f * (float)rint_in(1, 10);
    for (int l = 0; l < 7; l++) {
        int ci = cin(n, l), co = widths[l];
        /* wide layers with large weights take the int32 kernels */
        int wmax = l == 0 ? 5 : (ci >= 32 ? wmax_wide : 40);
        for (int i = 0; i < co * ci * 9; i++)
            n->w[l][i] = (int8_t)rint_in(-wmax, wmax);
        for (int c = 0; c < co; c++) {
            /* thresholds near the middle of the sums so both bit values occur */
            n->thr[l][c] = l == 0 ? (float)rint_in(-200, 600) + 0.5f : (float)rint_in(-wmax * 3, wmax * 3);
            n->dir[l][c] = (int8_t)(rint_in(0, 1) ? 1 : -1);
        }
    }
    for (int j = 0; j < 3; j++)
        for (int o = 0; o < fout(n, j); o++) {
            for (int i = 0; i < fin(n, j); i++)
                n->fw[j][o * fin(n, j) + i] = (int8_t)rint_in(-127, 127);
            n->fs[j][o] = 0.01f;
            n->fb[j][o] = 0.1f * (float)rint_in(-5, 5);
        }
    for (int j = 0; j < 3; j++) {
        n->mean[j] = 3;
        n->std[j] = 0.5f;
    }
}

static void check_random_ro(const int widths[7], int wmax_wide, float x_scale, const char *readout, int floor)
{
    net n;
    build_random(&n, widths, wmax_wide);
    n.x_scale = x_scale;
    n.readout = readout;
    n.has_floor = floor;
    if (both(&n)) { /* the first dense layer reads twice as many inputs */
        free(n.fw[0]);
        n.fw[0] = malloc((size_t)fout(&n, 0) * fin(&n, 0));
        for (int i = 0; i < fout(&n, 0) * fin(&n, 0); i++)
            n.fw[0][i] = (int8_t)rint_in(-127, 127);
    }
    for (int c = 0; c < widths[6]; c++) { /* sums reach a few hundred: scale them to about 1 */
        n.ro_scale[c] = 0.001f * (float)rint_in(1, 9);
        n.ro_bias[c] = 0.1f * (float)rint_in(-5, 5);
        n.ro_floor[c] = c % 2 ? 0.0f : 0.1f * (float)rint_in(-5, 5); /* 0: the teacher's ReLU */
    }
    const char *path = net_write(&n, NULL);
    snn_bam *b = load_or_fail(path);
    unlink(path);
    float *x = malloc(WIN * sizeof *x);
    for (int i = 0; i < WIN; i++) /* noise whose level changes every 0.5 s, with a silent second */
        x[i] = (i / 16000 == 4) ? 0 : ((float)(rnd() & 0xffff) / 65536.0f - 0.5f) * (float)(1 + (i / 8000) % 5) * 0.1f;
    float want[3], got[3][3];
    floor_binds = 0;
    reference(&n, x, want);
    if (floor && floor_binds == 0)
        fail_msg("no maximum fell below its floor: this check could not fail");
    for (int simd = 0; simd < 3; simd++) {
        snn_bam_set_simd(simd);
        run(b, x, got[simd]);
    }
    snn_bam_set_simd(2);
    for (int j = 0; j < 3; j++) {
        for (int simd = 1; simd < 3; simd++)
            if (got[0][j] != got[simd][j])
                fail_msg("raw[%d]: portable %.9g, simd level %d %.9g", j, got[0][j], simd, got[simd][j]);
        if (fabsf(got[0][j] - want[j]) > 1e-5f * (1 + fabsf(want[j])))
            fail_msg("raw[%d]: kernel %.9g, reference %.9g", j, got[0][j], want[j]);
    }
    /* the scores must depend on the input: a different window gives different raw values */
    for (int i = 0; i < WIN; i++)
        x[i] *= 0.05f;
    float other[3];
    run(b, x, other);
    assert_true(other[0] != got[0][0] || other[1] != got[0][1] || other[2] != got[0][2]);
    snn_bam_free(b);
    free(x);
    net_free(&n);
}

static void check_random_x(const int widths[7], int wmax_wide, float x_scale)
{
    check_random_ro(widths, wmax_wide, x_scale, NULL, 0);
}

static void check_random(const int widths[7], int wmax_wide) { check_random_x(widths, wmax_wide, 16); }

/* --readout max (metadata "readout": "max"): the head reads max over positions of dir S of the
 * last convolution, times readout.scale plus readout.bias, per channel. Each check runs every
 * SIMD level against the transcription: the last layer by the int16 AVX2 kernel at level 1
 * and 2, by the int32 portable one at level 0. */
static void test_random_max_readout(void **state)
{
    (void)state;
    static const int w[7] = {32, 32, 32, 32, 32, 32, 64};
    check_random_ro(w, 20, 10, "max", 0);
    static const int w2[7] = {16, 16, 16, 16, 32, 24, 40}; /* widths no SIMD kernel covers */
    check_random_ro(w2, 20, 10, "max", 0);
}

/* --readout rate+max: the head reads the 64 rates, then the 64 scaled maxima (128 inputs). */
static void test_random_rate_and_max_readout(void **state)
{
    (void)state;
    static const int w[7] = {32, 32, 32, 32, 32, 32, 64};
    check_random_ro(w, 20, 10, "rate+max", 0);
}

/* readout.floor: each maximum is raised to its floor (0: the max of a ReLU map, the teacher's
 * read-out), for both read-outs of maxima, at every SIMD level. */
static void test_random_floored_readout(void **state)
{
    (void)state;
    static const int w[7] = {32, 32, 32, 32, 32, 32, 64};
    check_random_ro(w, 20, 10, "rate+max", 1);
    check_random_ro(w, 20, 10, "max", 1);
}

static void test_random_narrow_widths(void **state)
{
    (void)state;
    /* run 4's widths (shipped until 2026-12-05): 16-output layers through VPERMW */
    static const int w[7] = {16, 16, 16, 16, 32, 32, 64};
    check_random(w, 20);  /* every layer int16-safe: nibble sums and masked rows */
    check_random(w, 127); /* wide layers in int32 */
}

static void test_random_wide_conv3(void **state)
{
    (void)state;
    /* conv 3 (full resolution, pooled) 16 -> 32 and conv 4 32 -> 32: the widths
     * train_dnsmos_bam.py --widths 16,16,16,32,32,32,64 grows the shipped model to */
    static const int w[7] = {16, 16, 16, 32, 32, 32, 64};
    check_random(w, 20);
    check_random(w, 127);
}

static void test_random_wide_full_res(void **state)
{
    (void)state;
    /* the shipped widths (runs 20 and 22): conv 0 with 32 outputs, conv 1 .. 5 32 -> 32 by nibble
     * sums (AVX-512: the 32-output rows kernel) */
    static const int w[7] = {32, 32, 32, 32, 32, 32, 64};
    check_random(w, 20);
    check_random(w, 127);
}

static void test_random_x_scale_10(void **state)
{
    (void)state;
    /* 10 feature steps per decade (floor 10^-12.8, train_dnsmos_bam.py's default since run 7)
     * and conv 0 32 wide, conv 1 reading 32 inputs with 16 outputs */
    static const int w[7] = {32, 16, 16, 16, 32, 32, 64};
    check_random_x(w, 20, 10); /* int16 kernels; the int32 ones are the cases above */
}

static void test_random_other_widths(void **state)
{
    (void)state;
    static const int w[7] = {8, 24, 16, 8, 16, 40, 8};
    check_random(w, 60);
}

static void test_random_48_channels(void **state)
{
    (void)state;
    /* 48 -> 48 binary layers (conv 4 and 5, after the pools, to keep the portable C quick): their
     * nibble sums do not fit LUT_BUDGET, so conv_rows() runs them in a pass of 32 outputs and one
     * of 16 (train_dnsmos_bam.py --widths 48,48,48,48,...: item 44 of models/zoo/README.md). With
     * weights up to 127 the 48 -> 48 layers' sums leave int16 (thresholds not clamped; each tap's
     * sum still fits); in the sanitizer build, where the instrumented portable kernels take
     * minutes on it, that second case is left out. */
    static const int w[7] = {16, 16, 16, 48, 48, 48, 64};
    check_random_x(w, 20, 10);
#ifndef __SANITIZE_ADDRESS__
    check_random_x(w, 127, 10);
#endif
}

static void test_random_128_channels(void **state)
{
    (void)state;
    /* 128 channels, DNSMOS's own conv 0 width: a position's bits span two 64-bit words, in
     * conv 0's output, as the input and output of full-resolution and pooled binary layers, in
     * a pool and in the last layer's counts (conv 0 by AVX-512, the 128-wide binary layers, with
     * 16 outputs or 8 inputs, by the portable kernels) */
    static const int w[7] = {128, 16, 8, 128, 8, 16, 128};
    check_random_x(w, 20, 10);
}

static void test_random_dnsmos_widths(void **state)
{
    (void)state;
    /* DNSMOS's own widths at full resolution (train_dnsmos_bam.py --init-teacher: 128, 64, 64,
     * 32), with conv 2 at 32 to halve the portable C's time: conv 0 with 128 outputs, conv 1
     * 128 -> 64 (AVX-512: the row-and-tap kernel, two passes of 32 outputs), conv 2 64 -> 32 (the
     * same, one pass), conv 3 32 -> 32 (the position kernel). Sums past int16 (each tap's sum
     * widened to int32), then int16-safe sums. In the sanitizer build (instrumented, where the
     * portable C takes minutes on these layers) conv 0 is 64 wide and only the first case runs. */
#ifndef __SANITIZE_ADDRESS__
    static const int w[7] = {128, 64, 32, 32, 32, 32, 64};
    check_random_x(w, 127, 10);
    check_random_x(w, 20, 10);
#else
    static const int w[7] = {64, 64, 32, 32, 32, 32, 64};
    check_random_x(w, 127, 10);
#endif
}

/* ---- refused files -------------------------------------------------------- */

static void expect_error(const net *n, const char *skip, const char *needle)
{
    const char *path = net_write(n, skip);
    snn_model *m = NULL;
    snn_err err = {0};
    int rc = snn_model_load(path, NULL, &m, &err);
    if (rc == 0)
        fail_msg("loaded a bad file (want an error with '%s')", needle);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not name '%s'", err.msg, needle);
    unlink(path);
}

static void test_refused(void **state)
{
    (void)state;
    net n;
    build_hand(&n);
    expect_error(&n, "conv3.thr", "conv3.thr");
    expect_error(&n, "fc1.b", "fc1.b");
    n.dir[2][5] = 0;
    expect_error(&n, NULL, "conv2.dir");
    n.dir[2][5] = 1;
    n.w[4][7] = -128;
    expect_error(&n, NULL, "conv4.w");
    n.w[4][7] = 0;
    n.head_meta = "300,64"; /* wider than the kernel's dense buffers */
    expect_error(&n, NULL, "head");
    n.head_meta = NULL;
    n.widths[2] = 12;
    expect_error(&n, NULL, "width");
    n.widths[2] = 16;
    n.widths_meta = "16,16,136,16,32,32,64"; /* wider than DNSMOS's widest layer */
    expect_error(&n, NULL, "width");
    n.widths_meta = NULL;
    n.readout = "mean";
    expect_error(&n, NULL, "readout \"mean\" (rate, max or rate+max)");
    n.readout = "max";
    expect_error(&n, "readout.bias", "readout.bias");
    n.ro_scale[3] = NAN;
    expect_error(&n, NULL, "readout.scale: element 3");
    n.ro_scale[3] = 1;
    n.ro_bias[5] = INFINITY;
    expect_error(&n, NULL, "readout.bias: element 5 is not finite");
    n.ro_bias[5] = 0;
    n.has_floor = 1;
    n.ro_floor[2] = -INFINITY;
    expect_error(&n, NULL, "readout.floor: element 2 is not finite");
    n.ro_floor[2] = 0;
    n.readout = NULL;
    expect_error(&n, NULL, "readout.floor needs readout \"max\" or \"rate+max\"");
    n.has_floor = 0;
    net_free(&n);
}

/* The model kind: a loaded file is a 6-output audio model with P.835's polynomials. */
static void test_model_kind(void **state)
{
    (void)state;
    net n;
    build_hand(&n);
    const char *path = net_write(&n, NULL);
    snn_model *m = NULL;
    snn_err err = {0};
    if (snn_model_load(path, NULL, &m, &err))
        fail_msg("%s", err.msg);
    assert_string_equal(m->ops->kind, "dnsmos-bam");
    assert_string_equal(m->input_kind, "audio");
    assert_int_equal(m->n_out, 6);
    json_t *d = json_object();
    assert_int_equal(m->ops->describe(m, d), 0);
    assert_string_equal(json_string_value(json_object_get(d, "readout")), "rate");
    assert_true(json_is_false(json_object_get(d, "readout_floor")));
    json_decref(d);
    snn_state *s = NULL;
    assert_int_equal(m->ops->state_new(m, &s, &err), 0);
    float *x = malloc(WIN * sizeof *x), out[6];
    for (int i = 0; i < WIN; i++)
        x[i] = 0.25f;
    snn_dnsmos_window(m, s, x, out);
    float mapped[3], raw[3] = {3.5f, 6.5f, 9.5f};
    snn_dnsmos_map(0, raw, mapped);
    for (int j = 0; j < 3; j++) {
        assert_true(fabsf(out[3 + j] - raw[j]) < 1e-6f);
        assert_true(fabsf(out[j] - mapped[j]) < 1e-5f);
    }
    free(x);
    m->ops->state_free(m, s);
    snn_model_free(m);
    unlink(path);
    net_free(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_random_narrow_widths),
        cmocka_unit_test(test_random_wide_conv3),
        cmocka_unit_test(test_random_wide_full_res),
        cmocka_unit_test(test_random_x_scale_10),
        cmocka_unit_test(test_random_other_widths),
        cmocka_unit_test(test_random_48_channels),
        cmocka_unit_test(test_random_128_channels),
        cmocka_unit_test(test_random_dnsmos_widths),
        cmocka_unit_test(test_random_max_readout),
        cmocka_unit_test(test_random_rate_and_max_readout),
        cmocka_unit_test(test_random_floored_readout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_model_kind),
    };
    return cmocka_run_group_tests_name("bam", tests, NULL, NULL);
}
