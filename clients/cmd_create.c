/*
 * cmd_create.c -- `snn model create`: a fresh trainable RSNN model file (random initial
 * weights from a seed), the starting point for `snn model train` and for streams opened with
 * learn=eprop (models/rsnn_eprop.h lists what a trainable file is).
 *
 * The initial weights are snn_rsnn_eprop_random_weights' (rsnn_eprop.h), W_in's spread
 * 1 / sqrt(inputs * input_rate) unless --w-in-std gives it.
 */
#include "cli.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eprop.h"
#include "rsnn_eprop.h"

static const char *const create_help =
    "usage: snn model create OUT.safetensors --inputs N --hidden H --outputs O\n"
    "                        [--adaptive A] [--task regression|classification] [--dt S]\n"
    "                        [--tau-m MS] [--tau-out MS] [--input-rate P] [--w-in-std X]\n"
    "                        [--seed S] [--name NAME]\n"
    "\n"
    "Writes a new trainable RSNN model (timing \"direct\", one recurrent layer of H\n"
    "LIF neurons, the last A of them adaptive, a leaky readout of O outputs) with\n"
    "random initial weights, ready for `snn model train` or a stream opened with\n"
    "learn=eprop. Its readout weights start at 0, so it outputs 0 until it learns.\n"
    "\n"
    "  --inputs N       input channels (spike counts per bin)\n"
    "  --hidden H       recurrent neurons\n"
    "  --outputs O      readout outputs (regression values or classes)\n"
    "  --adaptive A     adaptive (ALIF) neurons among the H (default 0)\n"
    "  --task T         regression (MSE, default) or classification (softmax)\n"
    "  --dt S           seconds per step, the bin width, 1e-6 to 60 (default 0.004)\n"
    "  --tau-m MS       membrane time constant in ms (default 20)\n"
    "  --tau-out MS     readout time constant in ms (default 100)\n"
    "  --input-rate P   expected spikes per input channel and bin, which scales the\n"
    "                   input weights (default 0.02)\n"
    "  --w-in-std X     input weight spread (default 1 / sqrt(inputs * input rate))\n"
    "  --seed S         random seed (default 1)\n"
    "  --name NAME      the name recorded in the file's config (default: OUT's base name);\n"
    "                   snnd and snn name a model by its file name, so serve it as NAME.safetensors\n";

/* Parses a positive number into *v; returns 0 or -1. */
static int parse_pos(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return *end == '\0' && end != s && isfinite(*v) && *v > 0 ? 0 : -1;
}

int cmd_model_create(int argc, char **argv)
{
    const char *out = NULL, *name = NULL, *task = "regression";
    uint64_t n_in = 0, n_rec = 0, n_out = 0, n_ad = 0, seed = 1;
    double dt = 0.004, tau_m = 20, tau_out = 100, rate = 0.02, w_in_std = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(create_help, stdout);
            return CLI_OK;
        }
        if (a[0] != '-' || !a[1]) {
            if (out)
                return cli_usage("model create: unexpected argument %s", a);
            out = a;
            continue;
        }
        uint64_t *u = !strcmp(a, "--inputs") ? &n_in : !strcmp(a, "--hidden") ? &n_rec
                    : !strcmp(a, "--outputs") ? &n_out : !strcmp(a, "--adaptive") ? &n_ad
                    : !strcmp(a, "--seed") ? &seed : NULL;
        double *d = !strcmp(a, "--dt") ? &dt : !strcmp(a, "--tau-m") ? &tau_m
                  : !strcmp(a, "--tau-out") ? &tau_out : !strcmp(a, "--input-rate") ? &rate
                  : !strcmp(a, "--w-in-std") ? &w_in_std : NULL;
        if (!u && !d && strcmp(a, "--task") && strcmp(a, "--name"))
            return cli_usage("model create: unknown option %s", a);
        if (++i == argc)
            return cli_usage("model create: %s needs a value", a);
        const char *v = argv[i];
        if (u) {
            if (cli_parse_u64(v, u == &seed ? UINT64_MAX : 100000, u) < 0)
                return cli_usage("model create: %s %s: expected a whole number%s", a, v,
                                 u == &seed ? "" : " up to 100000");
        } else if (d) {
            if (parse_pos(v, d) < 0)
                return cli_usage("model create: %s %s: expected a number > 0", a, v);
            if (d == &dt && (dt < 1e-6 || dt > 60)) /* the bin widths a session takes */
                return cli_usage("model create: --dt %s: expected seconds from 0.000001 to 60", v);
        } else if (!strcmp(a, "--task")) {
            if (strcmp(v, "regression") && strcmp(v, "classification"))
                return cli_usage("model create: --task %s: expected regression or classification", v);
            task = v;
        } else if (!strcmp(a, "--name")) {
            name = v;
        } else {
            return cli_usage("model create: unknown option %s", a);
        }
    }
    if (!out)
        return cli_usage("model create: expected OUT.safetensors");
    size_t out_len = strlen(out);
    if (out_len <= 12 || strcmp(out + out_len - 12, ".safetensors") != 0) /* models load by extension */
        return cli_usage("model create: %s: OUT must end in .safetensors (models are read by their extension)",
                         out);
    if (!n_in || !n_rec || !n_out)
        return cli_usage("model create: --inputs, --hidden and --outputs are needed (each > 0)");
    if (n_ad > n_rec)
        return cli_usage("model create: --adaptive %llu exceeds --hidden %llu", (unsigned long long)n_ad,
                         (unsigned long long)n_rec);
    char base[256];
    if (!name) {
        const char *b = strrchr(out, '/');
        b = b ? b + 1 : out;
        snprintf(base, sizeof base, "%s", b);
        char *dot = strstr(base, ".safetensors");
        if (dot)
            *dot = '\0';
        name = base;
    }

    snn_eprop_params p = snn_eprop_params_default();
    p.n_in = (uint32_t)n_in;
    p.n_rec = (uint32_t)n_rec;
    p.n_out = (uint32_t)n_out;
    p.n_adaptive = (uint32_t)n_ad;
    p.dt = dt * 1000.0;
    p.tau_m = tau_m;
    p.tau_out = tau_out;
    p.v_th = 1.0;
    p.regular_spike_arrival = 1;
    p.loss = strcmp(task, "classification") == 0 ? SNN_EPROP_CROSS_ENTROPY : SNN_EPROP_MSE;
    if (!(w_in_std > 0))
        w_in_std = 1.0 / sqrt((double)n_in * rate);

    double *w_in = malloc(n_rec * n_in * sizeof *w_in), *w_rec = malloc(n_rec * n_rec * sizeof *w_rec);
    double *w_out = malloc(n_out * n_rec * sizeof *w_out);
    int status = CLI_FAIL;
    if (!w_in || !w_rec || !w_out) {
        cli_fail("out of memory");
        goto done;
    }
    snn_rsnn_eprop_random_weights(&p, seed, w_in_std, w_in, w_rec, w_out);
    snn_err err = {{0}};
    if (snn_rsnn_eprop_create(out, name, &p, w_in, w_rec, w_out, &err) < 0) {
        cli_fail("%s", err.msg[0] ? err.msg : "cannot write the model");
        goto done;
    }
    printf("wrote %s: %llu inputs -> %llu LIF (%llu adaptive) -> %llu outputs (%s), dt %g s, seed %llu\n",
           out, (unsigned long long)n_in, (unsigned long long)n_rec, (unsigned long long)n_ad,
           (unsigned long long)n_out, task, dt, (unsigned long long)seed);
    status = CLI_OK;
done:
    free(w_in);
    free(w_rec);
    free(w_out);
    return status;
}
