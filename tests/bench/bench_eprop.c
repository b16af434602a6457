/*
 * bench_eprop.c -- cost of an e-prop learning step vs an inference-only step.
 *
 * Same network, same inputs: snn_eprop_step with learning on (traces, gradients,
 * the update at each interval end) and with snn_eprop_set_learning(e, 0).
 * Networks: 96 -> 64 LIF -> 2 readouts (softmax cross-entropy, Adam, 5% input
 * spikes), and NEST's regression setup 100 -> 100 LIF -> 1 (MSE, gradient
 * descent, c_reg 300), and the latter with continuous timing (NEST eprop_iaf,
 * per-step Adam, ISI trace cutoff 100). Prints median and spread (min, max) of the per-step
 * CPU time over repeats (the machine may be shared). For the interval-timing networks it
 * also times snnd's engine (models/rsnn.h) on the same network, written to a temporary
 * model file by snn_rsnn_eprop_create, and prints learning / engine inference.
 * Not a test: meson builds it, nobody runs it automatically.
 *
 * Usage: bench_eprop [repeats] [steps-per-repeat]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "eprop.h"
#include "model.h"
#include "rsnn_eprop.h"
#include "blas.h"

SNN_BLAS_PREINIT

/* xorshift64*: a fixed, portable stream of pseudo-random numbers. */
static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: the machine is shared */
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ns/step of snnd's engine running the network of p (weights as given) on
 * the same inputs, or a negative value if the bridge refuses p. */
static double bench_engine(const snn_eprop_params *p, const double *w_in, const double *w_rec,
                           const double *w_out, const uint8_t *x, int repeats, int steps)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench_eprop_%ld.safetensors", (long)getpid());
    snn_err err;
    if (snn_rsnn_eprop_create(path, "bench_eprop", p, w_in, w_rec, w_out, &err) < 0) {
        fprintf(stderr, "bench_eprop: engine model: %s\n", err.msg);
        return -1.0;
    }
    snn_model *m = NULL;
    snn_state *s = NULL;
    int rc = snn_model_load(path, NULL, &m, &err);
    unlink(path);
    if (rc < 0 || m->ops->state_new(m, &s, &err) < 0) {
        fprintf(stderr, "bench_eprop: engine model: %s\n", err.msg);
        snn_model_free(m);
        return -1.0;
    }
    size_t ni = p->n_in;
    float *xf = malloc((size_t)steps * ni * sizeof(float)), out[16];
    for (size_t i = 0; i < (size_t)steps * ni; i++)
        xf[i] = (float)x[i];
    double *t_ns = malloc((size_t)repeats * sizeof(double));
    snn_step_info info;
    for (int r = 0; r < repeats; r++) {
        double t0 = now_ns();
        for (int k = 0; k < steps; k++)
            m->ops->step(m, s, xf + (size_t)k * ni, out, &info);
        t_ns[r] = (now_ns() - t0) / steps;
    }
    qsort(t_ns, (size_t)repeats, sizeof(double), cmp);
    double med = t_ns[repeats / 2];
    printf("%-34s %-9s median %9.0f ns/step  min %9.0f  max %9.0f  (%d x %d steps)\n", "",
           "engine", med, t_ns[0], t_ns[repeats - 1], repeats, steps);
    m->ops->state_free(m, s);
    snn_model_free(m);
    free(xf);
    free(t_ns);
    return med;
}

/* Runs repeats x steps with learning on or off and prints ns/step statistics. */
static void bench(const char *name, const snn_eprop_params *p, int repeats, int steps)
{
    size_t ni = p->n_in, nr = p->n_rec, no = p->n_out;
    double *w_in = malloc(nr * ni * sizeof(double)), *w_rec = malloc(nr * nr * sizeof(double));
    double *w_out = malloc(no * nr * sizeof(double)), *b = malloc(nr * no * sizeof(double));
    uint8_t *x = malloc((size_t)steps * ni);
    double *tgt = malloc((size_t)steps * no * sizeof(double));
    double *t_ns = malloc((size_t)repeats * sizeof(double));
    for (size_t i = 0; i < nr * ni; i++)
        w_in[i] = (urand() - 0.5) * 0.4;
    for (size_t i = 0; i < nr * nr; i++)
        w_rec[i] = (urand() - 0.5) * 0.2;
    for (size_t i = 0; i < no * nr; i++)
        w_out[i] = (urand() - 0.5) * 0.2;
    for (size_t i = 0; i < nr * no; i++)
        b[i] = (urand() - 0.5) * 0.2;
    for (size_t i = 0; i < (size_t)steps * ni; i++)
        x[i] = urand() < 0.05;
    for (int k = 0; k < steps; k++)
        for (size_t o = 0; o < no; o++)
            tgt[(size_t)k * no + o] = p->loss == SNN_EPROP_MSE ? urand() - 0.5 : (o == (size_t)(k / 100) % no);

    double med[2];
    for (int learn = 1; learn >= 0; learn--) {
        snn_eprop *e = NULL;
        snn_err err;
        if (snn_eprop_init(&e, p, w_in, w_rec, w_out, b, NULL, &err)) {
            fprintf(stderr, "bench_eprop: %s\n", err.msg);
            exit(1);
        }
        snn_eprop_set_learning(e, learn);
        double out[16], loss;
        for (int r = 0; r < repeats; r++) {
            double t0 = now_ns();
            for (int k = 0; k < steps; k++)
                snn_eprop_step(e, x + (size_t)k * ni, tgt + (size_t)k * no, -1, out, &loss);
            t_ns[r] = (now_ns() - t0) / steps;
        }
        qsort(t_ns, (size_t)repeats, sizeof(double), cmp);
        med[learn] = t_ns[repeats / 2];
        printf("%-34s %-9s median %9.0f ns/step  min %9.0f  max %9.0f  (%d x %d steps)\n", name,
               learn ? "learning" : "inference", t_ns[repeats / 2], t_ns[0], t_ns[repeats - 1],
               repeats, steps);
        snn_eprop_free(e);
    }
    printf("%-34s learning/inference cost ratio %.1f\n", name, med[1] / med[0]);
    if (p->timing == SNN_EPROP_INTERVAL) {
        double eng = bench_engine(p, w_in, w_rec, w_out, x, repeats, steps);
        if (eng > 0)
            printf("%-34s learning/engine-inference ratio %.1f\n", name, med[1] / eng);
    }
    free(w_in);
    free(w_rec);
    free(w_out);
    free(b);
    free(x);
    free(tgt);
    free(t_ns);
}

int main(int argc, char **argv)
{
    int repeats = argc > 1 ? atoi(argv[1]) : 11;
    int steps = argc > 2 ? atoi(argv[2]) : 2000;
    if (repeats < 1 || steps < 1) {
        fprintf(stderr, "usage: bench_eprop [repeats>=1] [steps>=1]\n");
        return 2;
    }
    openblas_set_num_threads(1);

    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = 96;
    p.n_rec = 64;
    p.n_out = 2;
    p.loss = SNN_EPROP_CROSS_ENTROPY;
    p.optimizer = SNN_EPROP_ADAM;
    p.eta = 5e-3;
    p.v_th = 0.6;
    p.tau_m = 20.0;
    p.psi_height = 0.3 / 0.6;
    p.psi_width = 0.6;
    p.update_interval = 500;
    p.learning_window = 150;
    bench("96->64 LIF->2, CE, Adam", &p, repeats, steps);

    p = snn_eprop_params_default();
    p.n_in = p.n_rec = 100;
    p.n_out = 1;
    bench("100->100 LIF->1, MSE, GD (NEST)", &p, repeats, steps);

    /* the same network with continuous timing (NEST eprop_iaf, per-step gradient descent or Adam) */
    p.timing = SNN_EPROP_CONTINUOUS;
    p.update_interval = p.learning_window = 100;
    p.regular_spike_arrival = 1;
    p.c_reg = 3.0;
    p.isi_trace_cutoff = 100;
    p.eta = 9e-8;
    bench("100->100 LIF->1, continuous, GD", &p, repeats, steps);
    p.optimizer = SNN_EPROP_ADAM;
    bench("100->100 LIF->1, continuous, Adam", &p, repeats, steps);
    return 0;
}
