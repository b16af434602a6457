/*
 * bench_engine.c -- single-thread engine throughput: model steps per second.
 *
 * Usage: bench_engine [--root DIR] [--data DIR] [--repeats N] [--steps N] [--quick]
 *   --root     source tree (models/zoo, tests/fixtures); default $SNN_SOURCE_ROOT or "."
 *   --data     shared reference data (braille recordings); default $SNN_DATA_DIR or ROOT/../shared/data
 *   --repeats  timed repeats per case (default 11); --steps  steps per repeat (default 200000)
 *
 * Every case loads a model with snn_model_load(), makes one state and times
 * ops->step() over a precomputed input matrix (cycled), one OpenBLAS thread.
 * A repeat is `steps` consecutive steps (fewer for slow models: ~0.25 s); the figures are the median, the
 * quartiles and the min/max of steps/s over the repeats, and the median ns/step.
 * The load average is printed with every line: the machine may be shared.
 *
 * Cases:
 *   tinyRSNN indy01 (96->64->2) and loco01 (192->64->2) on the committed
 *     fixtures (real binary 4 ms bins) and on synthetic 5 % active channels;
 *   the same through snn_session_binned (the daemon's per-bin path, minus I/O);
 *   the braille RSNNs (24->256->27) on sigma-delta events of the recorded
 *     Braille taxel frames (binned to the model's 20 ms steps), and on dense
 *     analog input (every channel non-zero: the engine's sgemv path);
 *   the NIR paper's N-MNIST CNN (cnn_sinabs.nir from the shared data: Conv2d,
 *     IF, SumPool2d, Affine; 2x34x34 -> 10) on the 60 N-MNIST-like event
 *     frames of tests/fixtures/nir/cnn_sinabs_expected.json (its convolutions
 *     scatter only the active inputs);
 *   a kernel sweep "which is faster": for the engine's weight shapes, one
 *     sgemv over the presynaptic-major matrix versus adding the rows of the
 *     active inputs (the event-driven path), at input densities 1..100 %.
 */
#include <cblas.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"
#ifdef SNN_HAVE_NIR
#include "nir.h"
#endif
#include "session.h"
#include "sigmadelta.h"
#include "blas.h"

SNN_BLAS_PREINIT

static int g_repeats = 11;
static long g_steps = 200000;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* This thread's CPU time: excludes the time other processes held the CPU. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of sorted v[n] (linear interpolation). */
static double quantile(const double *v, int n, double q)
{
    double p = q * (n - 1);
    int i = (int)p;
    if (i >= n - 1)
        return v[n - 1];
    return v[i] + (p - i) * (v[i + 1] - v[i]);
}

static double load1(void)
{
    double l[1] = {0};
    if (getloadavg(l, 1) < 1)
        return -1;
    return l[0];
}

/* Prints one result line from per-repeat wall-clock and CPU-time rates (sorted in place). */
static void report(const char *name, const char *input, double *rate, double *crate, int n)
{
    qsort(rate, (size_t)n, sizeof *rate, cmp_double);
    qsort(crate, (size_t)n, sizeof *crate, cmp_double);
    double med = quantile(rate, n, 0.5), cmed = quantile(crate, n, 0.5);
    printf("%-32s %-40s wall %7.3f M/s IQR %.3f-%.3f min-max %.3f-%.3f | cpu %7.3f M/s IQR %.3f-%.3f = %7.1f ns/step "
           "| load %.2f\n",
           name, input, med / 1e6, quantile(rate, n, 0.25) / 1e6, quantile(rate, n, 0.75) / 1e6, rate[0] / 1e6,
           rate[n - 1] / 1e6, cmed / 1e6, quantile(crate, n, 0.25) / 1e6, quantile(crate, n, 0.75) / 1e6,
           1e9 / cmed, load1());
    printf("RESULT bench=engine case=\"%s\" input=\"%s\" steps_per_s=%.0f iqr_lo=%.0f iqr_hi=%.0f min=%.0f max=%.0f "
           "cpu_steps_per_s=%.0f cpu_ns_per_step=%.1f\n",
           name, input, med, quantile(rate, n, 0.25), quantile(rate, n, 0.75), rate[0], rate[n - 1], cmed,
           1e9 / cmed);
    fflush(stdout);
}

/* An input matrix: n_steps rows of n_in values. */
typedef struct inputs {
    float *x;
    long n_steps;
    uint32_t n_in;
    double density; /* fraction of non-zero entries */
} inputs;

static void inputs_density(inputs *in)
{
    long nz = 0;
    for (long i = 0; i < in->n_steps * (long)in->n_in; i++)
        nz += in->x[i] != 0.0f;
    in->density = (double)nz / ((double)in->n_steps * in->n_in);
}

/* Reads a fixture CSV "t,ch0,ch1,..." (header line, one row per bin). */
static int inputs_csv(const char *path, uint32_t n_in, inputs *in)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t cap = 4096;
    in->x = malloc(cap * n_in * sizeof(float));
    in->n_steps = 0;
    in->n_in = n_in;
    char *line = NULL;
    size_t lcap = 0;
    int first = 1;
    while (getline(&line, &lcap, f) > 0) {
        if (first) {
            first = 0;
            continue;
        }
        if ((size_t)in->n_steps == cap) {
            cap *= 2;
            in->x = realloc(in->x, cap * n_in * sizeof(float));
        }
        char *p = strchr(line, ',');
        float *row = in->x + in->n_steps * n_in;
        uint32_t c = 0;
        while (p && c < n_in) {
            row[c++] = strtof(p + 1, NULL);
            p = strchr(p + 1, ',');
        }
        if (c != n_in) {
            fprintf(stderr, "%s: row %ld has %u values, expected %u\n", path, in->n_steps + 1, c, n_in);
            free(line);
            fclose(f);
            return -1;
        }
        in->n_steps++;
    }
    free(line);
    fclose(f);
    inputs_density(in);
    return in->n_steps > 0 ? 0 : -1;
}

/* Synthetic input: each entry non-zero with probability p, value v (v < 0:
 * uniform in (0, 1], an analog current). Deterministic. */
static void inputs_random(inputs *in, uint32_t n_in, long n_steps, double p, float v)
{
    in->x = calloc((size_t)n_steps * n_in, sizeof(float));
    in->n_steps = n_steps;
    in->n_in = n_in;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (long i = 0; i < n_steps * (long)n_in; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;
        if (u < p) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            in->x[i] = v >= 0 ? v : (float)(((s >> 40) + 1) / 16777216.0);
        }
    }
    inputs_density(in);
}

/* Braille taxel recordings (sample,letter,label,repetition,t_index,t_s,taxel_0..11) through the
 * sigma-delta encoder (the model config's: threshold 1, invert), events counted per 20 ms step. */
static int inputs_braille(const char *csv, uint32_t n_in, double dt, inputs *in)
{
    FILE *f = fopen(csv, "r");
    if (!f)
        return -1;
    snn_sigmadelta_config cfg = {.n_channels = 12, .threshold = 1.0, .invert = 1};
    snn_sigmadelta *enc;
    snn_err e;
    if (snn_sigmadelta_new(&cfg, NULL, &enc, &e) < 0 || snn_sigmadelta_n_outputs(enc) != n_in) {
        fclose(f);
        return -1;
    }
    size_t evcap = snn_sigmadelta_max_events(enc, 0, 255);
    snn_event *ev = malloc(evcap * sizeof *ev);
    long cap = 1 << 16;
    in->x = calloc((size_t)cap * n_in, sizeof(float));
    in->n_in = n_in;
    in->n_steps = 0;
    int64_t step_us = (int64_t)(dt * 1e6 + 0.5), base = 0;
    long cur_sample = -1;
    char *line = NULL;
    size_t lcap = 0;
    int first = 1;
    while (getline(&line, &lcap, f) > 0) {
        if (first) {
            first = 0;
            continue;
        }
        long sample;
        char letter[16];
        int label, rep, tidx;
        double ts;
        float v[12];
        if (sscanf(line, "%ld,%15[^,],%d,%d,%d,%lf,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f,%f", &sample, letter, &label,
                   &rep, &tidx, &ts, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                   &v[11]) != 18)
            continue;
        if (sample != cur_sample) { /* a new recording starts on a fresh step after the previous one */
            cur_sample = sample;
            snn_sigmadelta_reset(enc);
            base = in->n_steps * step_us;
        }
        int64_t t = (int64_t)(ts * 1e6 + 0.5);
        size_t n = 0;
        if (snn_sigmadelta_push(enc, t, v, ev, evcap, &n, &e) < 0)
            continue;
        long need = (base + t) / step_us + 1;
        if (need > cap) {
            long nc = cap;
            while (nc < need)
                nc *= 2;
            in->x = realloc(in->x, (size_t)nc * n_in * sizeof(float));
            memset(in->x + (size_t)cap * n_in, 0, (size_t)(nc - cap) * n_in * sizeof(float));
            cap = nc;
        }
        if (need > in->n_steps)
            in->n_steps = need;
        for (size_t k = 0; k < n; k++) {
            long st = (base + ev[k].t_us) / step_us;
            in->x[(size_t)st * n_in + ev[k].channel] += 1.0f;
        }
    }
    free(line);
    free(ev);
    snn_sigmadelta_free(enc);
    fclose(f);
    inputs_density(in);
    return in->n_steps > 0 ? 0 : -1;
}

/* Steps per repeat: --steps, but no more than ~0.25 s worth at the rate of a
 * calibration run (n steps in t seconds), so slow models keep 11 repeats short. */
static long repeat_steps(long n, double t)
{
    long cap = t > 0 ? (long)(0.25 * (double)n / t) : g_steps;
    if (cap < 1000)
        cap = 1000;
    return g_steps < cap ? g_steps : cap;
}

/* Times model->ops->step over in (cycled). */
static void bench_model(const char *label, const snn_model *m, const inputs *in, const char *desc)
{
    snn_state *s;
    snn_err e;
    if (m->ops->state_new(m, &s, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return;
    }
    float out[64];
    snn_step_info info;
    double rate[256], crate[256];
    uint64_t spikes = 0, neurons = 0;
    long k = 0;
    double t0 = now_s();
    long warm = 0;
    for (; warm < 20000 && now_s() - t0 < 0.05; warm++) /* warm up, and calibrate */
        m->ops->step(m, s, in->x + (warm % in->n_steps) * in->n_in, out, &info);
    long steps = repeat_steps(warm, now_s() - t0);
    for (int r = 0; r < g_repeats; r++) {
        t0 = now_s();
        double c0 = cpu_s();
        for (long i = 0; i < steps; i++) {
            m->ops->step(m, s, in->x + k * in->n_in, out, &info);
            spikes += info.hidden_spikes;
            neurons += info.hidden_neurons;
            if (++k == in->n_steps)
                k = 0;
        }
        rate[r] = (double)steps / (now_s() - t0);
        crate[r] = (double)steps / (cpu_s() - c0);
    }
    char d[96];
    snprintf(d, sizeof d, "%s (%.1f%% in, %.1f%% hid)", desc, 100 * in->density,
             neurons ? 100.0 * (double)spikes / (double)neurons : 0.0);
    report(label, d, rate, crate, g_repeats);
    m->ops->state_free(m, s);
}

static void emit_count(void *ctx, const snn_output *o)
{
    (void)o;
    (*(uint64_t *)ctx)++;
}

/* Times snn_session_binned with one bin per call (the daemon's BinnedCounts path). */
static void bench_session(const char *label, const snn_model *m, const inputs *in, const char *desc)
{
    snn_session *ss;
    snn_err e;
    snn_session_cfg cfg = {.input = SNN_INPUT_BINNED};
    if (snn_session_new(m, &cfg, NULL, &ss, &e) < 0) {
        fprintf(stderr, "session: %s\n", e.msg);
        return;
    }
    double rate[256], crate[256];
    uint64_t outs = 0;
    long k = 0, steps = g_steps;
    for (int r = 0; r < g_repeats; r++) {
        double t0 = now_s(), c0 = cpu_s();
        for (long i = 0; i < steps; i++) {
            snn_session_binned(ss, in->x + k * in->n_in, in->n_in, 1, 0, emit_count, &outs, &e);
            if (++k == in->n_steps)
                k = 0;
        }
        rate[r] = (double)steps / (now_s() - t0);
        crate[r] = (double)steps / (cpu_s() - c0);
    }
    if (outs != (uint64_t)steps * (uint64_t)g_repeats)
        fprintf(stderr, "%s: %llu predictions for %llu bins\n", label, (unsigned long long)outs,
                (unsigned long long)steps * (uint64_t)g_repeats);
    char d[96];
    snprintf(d, sizeof d, "%s (%.1f%% in)", desc, 100 * in->density);
    report(label, d, rate, crate, g_repeats);
    snn_session_free(ss);
}

static snn_model *load(const char *root, const char *file)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/models/zoo/%s", root, file);
    snn_model *m;
    snn_err e;
    if (snn_model_load(path, NULL, &m, &e) < 0) {
        printf("skip %s: %s\n", file, e.msg);
        return NULL;
    }
    return m;
}

/* The two ways of computing dst += W^T x for W stored presynaptic-major
 * [n_pre][n_post]: one sgemv, or one row added per non-zero input (binary x:
 * plain adds, as the engine does for spikes). Prints ns per product. */
static void kernel_sweep(uint32_t n_pre, uint32_t n_post, const char *what)
{
    static const double dens[] = {0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 1.0};
    const int nd = (int)(sizeof dens / sizeof dens[0]);
    float *w = malloc((size_t)n_pre * n_post * sizeof *w), *dst = calloc(n_post, sizeof *dst);
    for (size_t i = 0; i < (size_t)n_pre * n_post; i++)
        w[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    printf("kernel %-11s %ux%-4u CPU ns per product (median of %d):", what, n_pre, n_post, g_repeats);
    int cross = -1;
    for (int d = 0; d < nd; d++) {
        inputs in;
        inputs_random(&in, n_pre, 64, dens[d], 1.0f);
        uint32_t *idx = malloc(n_pre * sizeof *idx);
        long reps = 200000 / ((long)n_pre * n_post / 64 + 1) + 100;
        double tg[256], te[256];
        for (int r = 0; r < g_repeats; r++) {
            double t0 = cpu_s();
            for (long i = 0; i < reps; i++) {
                const float *x = in.x + (i & 63) * n_pre;
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)n_pre, (int)n_post, 1.0f, w, (int)n_post, x, 1, 1.0f,
                            dst, 1);
            }
            tg[r] = (cpu_s() - t0) / (double)reps * 1e9;
            t0 = cpu_s();
            for (long i = 0; i < reps; i++) {
                const float *x = in.x + (i & 63) * n_pre;
                uint32_t n = 0;
                for (uint32_t j = 0; j < n_pre; j++)
                    if (x[j] != 0.0f)
                        idx[n++] = j;
                for (uint32_t k = 0; k < n; k++) {
                    const float *row = w + (size_t)idx[k] * n_post;
                    for (uint32_t q = 0; q < n_post; q++)
                        dst[q] += row[q];
                }
            }
            te[r] = (cpu_s() - t0) / (double)reps * 1e9;
        }
        qsort(tg, (size_t)g_repeats, sizeof(double), cmp_double);
        qsort(te, (size_t)g_repeats, sizeof(double), cmp_double);
        double g = quantile(tg, g_repeats, 0.5), ev = quantile(te, g_repeats, 0.5);
        if (cross < 0 && ev > g)
            cross = d;
        printf("  %g%%: event %.0f / sgemv %.0f", 100 * dens[d], ev, g);
        free(in.x);
        free(idx);
    }
    if (cross < 0)
        printf("  => event-driven faster at every density");
    else
        printf("  => sgemv faster from ~%g%% active inputs", 100 * dens[cross]);
    printf("  (dst %g) load %.2f\n", (double)dst[0], load1());
    fflush(stdout);
    free(w);
    free(dst);
}

int main(int argc, char **argv)
{
    const char *root = getenv("SNN_SOURCE_ROOT") ? getenv("SNN_SOURCE_ROOT") : ".";
    const char *data = getenv("SNN_DATA_DIR");
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--root") && i + 1 < argc)
            root = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            data = argv[++i];
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
            g_repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            g_steps = atol(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: bench_engine [--root DIR] [--data DIR] [--repeats N] [--steps N] [--quick]\n");
            return 2;
        }
    }
    if (quick) {
        g_repeats = 3;
        g_steps = 20000;
    }
    if (g_repeats < 1 || g_repeats > 256 || g_steps < 1) {
        fprintf(stderr, "bench_engine: --repeats must be 1..256 and --steps >= 1\n");
        return 2;
    }
    char datadir[1024];
    if (!data) {
        snprintf(datadir, sizeof datadir, "%s/../shared/data", root);
        data = datadir;
    }
    openblas_set_num_threads(1);
    printf("bench_engine: %d repeats x up to %ld steps per case, 1 thread; steps/s: median, IQR, min-max by the wall "
           "clock | by this thread's CPU time (steadier on a shared machine), ns/step from the CPU time | 1-min "
           "load average\n",
           g_repeats, g_steps);

    static const struct {
        const char *file, *fixture, *short_name;
    } tiny[] = {
        {"tinyrsnn-indy01-seed1.safetensors", "input_indy.csv", "tinyrsnn-indy01 96-64-2"},
        {"tinyrsnn-loco01-seed1.safetensors", "input_loco.csv", "tinyrsnn-loco01 192-64-2"},
    };
    for (int t = 0; t < 2; t++) {
        snn_model *m = load(root, tiny[t].file);
        if (!m)
            continue;
        char path[2048], lbl[96];
        snprintf(path, sizeof path, "%s/tests/fixtures/tinyrsnn/%s", root, tiny[t].fixture);
        inputs fx, r5;
        if (inputs_csv(path, m->n_in, &fx) == 0) {
            snprintf(lbl, sizeof lbl, "%s step", tiny[t].short_name);
            bench_model(lbl, m, &fx, "fixture bins");
            snprintf(lbl, sizeof lbl, "%s session", tiny[t].short_name);
            bench_session(lbl, m, &fx, "fixture, 1 bin/call");
            free(fx.x);
        } else {
            printf("skip fixture %s\n", path);
        }
        inputs_random(&r5, m->n_in, 4096, 0.05, 1.0f);
        snprintf(lbl, sizeof lbl, "%s step", tiny[t].short_name);
        bench_model(lbl, m, &r5, "random 5% binary");
        free(r5.x);
        snn_model_free(m);
    }

    static const char *braille[] = {"braille-rsnn-tiny.safetensors", "braille-rsnn.safetensors"};
    for (int b = 0; b < 2; b++) {
        snn_model *m = load(root, braille[b]);
        if (!m)
            continue;
        char path[2048], lbl[96];
        snprintf(lbl, sizeof lbl, "%.*s step", (int)(strlen(braille[b]) - 12), braille[b]);
        snprintf(path, sizeof path, "%s/braille/braille_letters_reps00-39_raw40hz.csv", data);
        inputs enc;
        if (inputs_braille(path, m->n_in, m->dt, &enc) == 0) {
            bench_model(lbl, m, &enc, "sigma-delta Braille");
            free(enc.x);
        } else {
            printf("skip encoded Braille input: %s not readable\n", path);
        }
        inputs dense, ev;
        inputs_random(&dense, m->n_in, 4096, 1.0, -1.0f); /* every channel analog: sgemv path */
        bench_model(lbl, m, &dense, "analog, all channels");
        inputs_random(&ev, m->n_in, 4096, 0.45, -1.0f); /* < half the channels: event path */
        bench_model(lbl, m, &ev, "analog, 45% channels");
        free(dense.x);
        free(ev.x);
        snn_model_free(m);
    }

#ifdef SNN_HAVE_NIR
    {
        char path[2048], fx[2048];
        snprintf(path, sizeof path, "%s/nir/cnn/cnn_sinabs.nir", data);
        snprintf(fx, sizeof fx, "%s/tests/fixtures/nir/cnn_sinabs_expected.json", root);
        snn_nir_options o;
        snn_nir_options_default(&o);
        o.dt = 1.0; /* Sinabs' v += x per step (models/nir.h) */
        o.reset = SNN_NIR_RESET_SUBTRACT;
        snn_model *m = NULL;
        snn_err e;
        json_t *ref = json_load_file(fx, 0, NULL);
        json_t *frames = json_object_get(ref, "input");
        if (snn_nir_model_load_opts(path, &o, NULL, &m, &e) < 0 || !json_array_size(frames)) {
            printf("skip the NIR CNN: %s\n", m ? fx : e.msg);
        } else {
            inputs ev = {calloc(json_array_size(frames) * m->n_in, sizeof(float)),
                         (long)json_array_size(frames), m->n_in, 0};
            for (size_t t = 0; t < json_array_size(frames); t++)
                for (size_t i = 0; i < json_array_size(json_array_get(frames, t)); i++) {
                    json_int_t k = json_integer_value(json_array_get(json_array_get(frames, t), i));
                    if (k >= 0 && k < (json_int_t)m->n_in)
                        ev.x[t * m->n_in + (size_t)k] = 1.0f;
                }
            inputs_density(&ev);
            bench_model("nir cnn_sinabs 2x34x34-10 step", m, &ev, "N-MNIST-like events");
            free(ev.x);
        }
        json_decref(ref);
        snn_model_free(m);
    }
#endif

    /* Which is faster, per shape and input density (the engine uses sgemv for
     * non-binary input with more than half the channels non-zero). */
    kernel_sweep(96, 64, "indy in");
    kernel_sweep(192, 64, "loco in");
    kernel_sweep(64, 64, "tiny rec");
    kernel_sweep(24, 256, "braille in");
    kernel_sweep(256, 256, "braille rec");
    return 0;
}
