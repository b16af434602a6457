/*
 * cmd_train.c -- `snn model train`: e-prop on an RSNN model file, offline.
 *
 * Builds an e-prop network from the model (models/rsnn_eprop.h), runs the
 * input rows through it for a number of epochs, one row per step, learning
 * from the targets, prints the loss of each epoch and writes the learned
 * weights as a new model file that `snn model run` and snnd load.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "model.h"
#include "rsnn_eprop.h"

#ifndef SNN_ZOO_DIR
#define SNN_ZOO_DIR "models/zoo"
#endif

static const char *const train_help =
    "usage: snn model train MODEL INPUT.csv TARGETS.csv [--epochs N] [--out NEW]\n"
    "                       [--lr X] [--optimizer adam|sgd] [--learn in,rec,out]\n"
    "                       [--interval N] [--reg X] [--rate HZ] [--models DIR]\n"
    "\n"
    "Trains MODEL (an RSNN .safetensors file of timing \"direct\" with one LIF/ALIF\n"
    "layer, see models/rsnn_eprop.h) with e-prop, offline. INPUT.csv is read as\n"
    "`snn model run` reads it, one row per step. TARGETS.csv has one row per input\n"
    "row: a header with an optional t column and one column per model output\n"
    "(regression, mean squared error), or a column named label (classification,\n"
    "cross-entropy; a class index or a label name, empty or -1 for no target).\n"
    "\n"
    "Prints `epoch,loss` lines: the mean loss per step with a target of the\n"
    "weights after that many epochs (0: before learning), measured in a pass with\n"
    "learning off, then writes the trained model. Each epoch starts from a reset\n"
    "network; rows after the last whole --interval of an epoch are not learned from.\n"
    "\n"
    "  --epochs N         passes over the input (default 10)\n"
    "  --out NEW          output: a path (with '/' or .safetensors), or a name in\n"
    "                     MODEL's directory (default MODEL-trained)\n"
    "  --lr X             learning rate (default 0.001)\n"
    "  --optimizer O      adam (default) or sgd\n"
    "  --learn LIST       weight groups to learn, from in,rec,out (default all)\n"
    "  --interval N       steps per weight update (default: all rows, one update\n"
    "                     per epoch); the network state is reset at each update\n"
    "  --reg X, --rate HZ firing-rate regularisation strength (default 0) and\n"
    "                     target rate (default 10 Hz)\n"
    "  --models DIR       where MODEL names are looked up (default $SNN_MODELS, else\n"
    "                     the built-in models/zoo)\n";

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* Targets of every row: values (regression, n_out per row, NAN = none) or labels. */
typedef struct targets {
    size_t n_rows;
    double *t;      /* times or NULL */
    double *values; /* n_rows x n_out, or NULL */
    int *labels;    /* n_rows, -1 = no target, or NULL */
} targets;

static void targets_free(targets *g)
{
    free(g->t);
    free(g->values);
    free(g->labels);
}

/* Splits line in place at commas into at most max cells (trimmed). */
static size_t split(char *line, char **cells, size_t max)
{
    size_t n = 0;
    char *s = line;
    for (;;) {
        char *c = strchr(s, ',');
        if (c)
            *c = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            *--e = 0;
        if (n < max)
            cells[n++] = s;
        if (!c)
            break;
        s = c + 1;
    }
    return n;
}

/* Reads TARGETS.csv for a model with n_out outputs (labels: class names or NULL). */
static int targets_load(const char *path, const snn_model *m, int classify, targets *g)
{
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "r");
    if (!f)
        return cli_fail("%s: %s", path, strerror(errno));
    enum { MAXC = 4096 };
    char *line = NULL, **cells = malloc(MAXC * sizeof *cells);
    size_t cap = 0;
    ssize_t len;
    int col_t = -1, col_label = -1, col_out[512], rc = CLI_FAIL;
    size_t ncols = 0, lineno = 0, rows_cap = 0;
    uint32_t n_out = m->n_out;
    if (!cells || n_out > 512) {
        cli_fail("%s: out of memory or too many outputs", path);
        goto out;
    }
    for (uint32_t k = 0; k < n_out; k++)
        col_out[k] = -1;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len == 0 || line[0] == '\n' || (line[0] == '\r' && line[1] == '\n'))
            continue;
        if (line[len - 1] == '\n')
            line[len - 1] = 0;
        size_t n = split(line, cells, MAXC);
        if (!ncols) {
            ncols = n;
            for (size_t c = 0; c < n; c++) {
                if (!strcmp(cells[c], "t"))
                    col_t = (int)c;
                else if (!strcmp(cells[c], "label"))
                    col_label = (int)c;
                else
                    for (uint32_t k = 0; k < n_out; k++)
                        if (!strcmp(cells[c], m->out_names[k]))
                            col_out[k] = (int)c;
            }
            if (classify && col_label < 0) {
                cli_fail("%s: classification model: expected a column named label", path);
                goto out;
            }
            if (!classify) {
                /* Outputs by name, else the non-t columns in order. */
                int by_name = 1;
                for (uint32_t k = 0; k < n_out; k++)
                    by_name &= col_out[k] >= 0;
                if (!by_name) {
                    uint32_t k = 0;
                    for (size_t c = 0; c < n && k < n_out; c++)
                        if ((int)c != col_t)
                            col_out[k++] = (int)c;
                    if (k != n_out || n - (col_t >= 0) != n_out) {
                        cli_fail("%s: expected t and %u output columns (%s...), found %zu columns", path, n_out,
                                 m->out_names[0], n);
                        goto out;
                    }
                }
            }
            continue;
        }
        if (n != ncols) {
            cli_fail("%s:%zu: expected %zu cells, found %zu", path, lineno, ncols, n);
            goto out;
        }
        if (g->n_rows == rows_cap) {
            rows_cap = rows_cap ? 2 * rows_cap : 1024;
            double *t = realloc(g->t, rows_cap * sizeof *t);
            if (t)
                g->t = t;
            void *v = classify ? realloc(g->labels, rows_cap * sizeof(int))
                               : realloc(g->values, rows_cap * n_out * sizeof(double));
            if (!t || !v) {
                cli_fail("%s: out of memory", path);
                goto out;
            }
            if (classify)
                g->labels = v;
            else
                g->values = v;
        }
        size_t r = g->n_rows;
        char *end;
        if (col_t >= 0) {
            g->t[r] = strtod(cells[col_t], &end);
            if (end == cells[col_t] || *end) {
                cli_fail("%s:%zu: column t: '%s' is not a number", path, lineno, cells[col_t]);
                goto out;
            }
        }
        if (classify) {
            const char *s = cells[col_label];
            int lab = -1;
            long v = strtol(s, &end, 10);
            if (!*s) {
                lab = -1;
            } else if (!*end && v >= -1 && v < (long)n_out) {
                lab = (int)v;
            } else {
                for (uint32_t k = 0; k < n_out && lab < 0; k++)
                    if (m->labels && !strcmp(s, m->labels[k]))
                        lab = (int)k;
                if (lab < 0) {
                    cli_fail("%s:%zu: column label: '%s' is not a class index 0..%u nor a label", path, lineno, s,
                             n_out - 1);
                    goto out;
                }
            }
            g->labels[r] = lab;
        } else {
            for (uint32_t k = 0; k < n_out; k++) {
                const char *s = cells[col_out[k]];
                double v = strtod(s, &end);
                if (end == s || *end || !isfinite(v)) { /* a NaN target would poison the weights */
                    cli_fail("%s:%zu: column %u: '%s' is not a finite number", path, lineno, col_out[k] + 1, s);
                    goto out;
                }
                g->values[r * n_out + k] = v;
            }
        }
        g->n_rows++;
    }
    if (ferror(f)) { /* a directory: EISDIR */
        cli_fail("%s: %s", path, strerror(errno));
        goto out;
    }
    if (!g->n_rows) {
        cli_fail("%s: no rows", path);
        goto out;
    }
    if (col_t < 0) {
        free(g->t);
        g->t = NULL;
    }
    rc = CLI_OK;
out:
    free(line);
    free(cells);
    fclose(f);
    if (rc != CLI_OK)
        targets_free(g);
    return rc;
}

/* Resolves MODEL to a file: an existing path, or NAME.safetensors in dir. */
static int resolve_model(const char *name, const char *dir_opt, char *path, size_t len)
{
    if (is_file(name)) {
        snprintf(path, len, "%s", name);
        return 0;
    }
    const char *dir = dir_opt;
    if (!dir) {
        const char *env = getenv("SNN_MODELS");
        struct stat st;
        dir = env && env[0] ? env : (stat(SNN_ZOO_DIR, &st) == 0 ? SNN_ZOO_DIR : "models/zoo");
    }
    if (!strchr(name, '/')) { /* a name: the model directory first */
        snprintf(path, len, "%s/%s.safetensors", dir, name);
        if (is_file(path))
            return 0;
        static const char *const other[] = {".onnx", ".nir"};
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, len, "%s/%s%s", dir, name, other[i]);
            if (is_file(path)) {
                cli_fail("model '%s': %s is not an RSNN .safetensors file; only those can be trained", name,
                         path);
                return -1;
            }
        }
    }
    struct stat st;
    if (stat(name, &st) == 0) { /* there, but a directory or a device */
        cli_fail("model '%s': %s, not a model file", name,
                 S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        return -1;
    }
    if (strchr(name, '/')) {
        cli_fail("model '%s': %s", name, strerror(errno));
        return -1;
    }
    cli_fail("model '%s': no such file, nor %s/%s.safetensors", name, dir, name);
    return -1;
}

/* The output path: --out as a path (has '/' or ends in .safetensors) or a name
 * beside the model; default <model>-trained.safetensors beside it. */
static void output_path(const char *model_path, const char *out, char *dst, size_t len)
{
    if (out && (strchr(out, '/') || ends_with(out, ".safetensors"))) {
        snprintf(dst, len, "%s%s", out, ends_with(out, ".safetensors") ? "" : ".safetensors");
        return;
    }
    const char *slash = strrchr(model_path, '/');
    int dlen = slash ? (int)(slash - model_path + 1) : 0;
    if (out) {
        snprintf(dst, len, "%.*s%s.safetensors", dlen, model_path, out);
        return;
    }
    const char *base = slash ? slash + 1 : model_path;
    size_t blen = strlen(base);
    if (ends_with(base, ".safetensors"))
        blen -= strlen(".safetensors");
    snprintf(dst, len, "%.*s%.*s-trained.safetensors", dlen, model_path, (int)blen, base);
}

/* One pass over the rows; returns the mean loss per step with a target. */
static double run_epoch(snn_eprop *e, const snn_csv *in, const targets *g, uint32_t n_out, int binary,
                        uint8_t *x)
{
    double total = 0.0, prev = 0.0, run = 0.0;
    size_t with_target = 0;
    uint64_t iv = snn_eprop_intervals(e);
    for (size_t r = 0; r < in->n_rows; r++) {
        snn_rsnn_eprop_input(in->values + r * in->n_ch, in->n_ch, binary, x);
        const double *tv = g->values ? g->values + r * n_out : NULL;
        int lab = g->labels ? g->labels[r] : -1;
        snn_eprop_step(e, x, tv, lab, NULL, &run);
        with_target += tv || lab >= 0;
        total += run - prev;
        uint64_t now = snn_eprop_intervals(e);
        prev = now != iv ? 0.0 : run;
        iv = now;
    }
    return with_target ? total / (double)with_target : 0.0;
}

int cmd_model_train(int argc, char **argv)
{
    const char *model = NULL, *input = NULL, *tfile = NULL, *dir = NULL, *out = NULL;
    uint64_t epochs = 10, interval = 0;
    snn_eprop_params p = snn_eprop_params_default();
    p.optimizer = SNN_EPROP_ADAM;
    p.eta = 1e-3;
    p.adam_epsilon = 1e-8;
    p.c_reg = 0.0;
    p.feedback = SNN_EPROP_FEEDBACK_SYMMETRIC;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(train_help, stdout);
            return CLI_OK;
        }
        if (a[0] == '-' && a[1]) {
            static const char *const known[] = {"--epochs", "--interval", "--out", "--models", "--lr",
                                                "--reg", "--rate", "--optimizer", "--learn"};
            size_t k = 0;
            while (k < sizeof known / sizeof known[0] && strcmp(a, known[k]) != 0)
                k++;
            if (k == sizeof known / sizeof known[0])
                return cli_usage("model train: unknown option %s", a);
            if (++i == argc)
                return cli_usage("model train: %s needs a value", a);
            const char *v = argv[i];
            char *end;
            if (!strcmp(a, "--epochs")) {
                if (cli_parse_u64(v, 1000000, &epochs) < 0)
                    return cli_usage("model train: --epochs %s: expected a whole number up to 1000000", v);
            } else if (!strcmp(a, "--interval")) {
                if (cli_parse_u64(v, 1u << 30, &interval) < 0 || !interval)
                    return cli_usage("model train: --interval %s: expected a positive whole number", v);
            } else if (!strcmp(a, "--out")) {
                if (!v[0] || v[strlen(v) - 1] == '/' || cli_is_dir(v))
                    return cli_usage("model train: --out %s: expected a file path or name, not a directory", v);
                out = v;
            } else if (!strcmp(a, "--models")) {
                dir = v;
            } else if (!strcmp(a, "--lr") || !strcmp(a, "--reg") || !strcmp(a, "--rate")) {
                double d = strtod(v, &end);
                if (end == v || *end || !(d >= 0) || !isfinite(d))
                    return cli_usage("model train: %s %s: expected a number >= 0", a, v);
                if (!strcmp(a, "--lr"))
                    p.eta = d;
                else if (!strcmp(a, "--reg"))
                    p.c_reg = d;
                else
                    p.f_target_hz = d;
            } else if (!strcmp(a, "--optimizer")) {
                if (!strcmp(v, "adam"))
                    p.optimizer = SNN_EPROP_ADAM;
                else if (!strcmp(v, "sgd"))
                    p.optimizer = SNN_EPROP_SGD;
                else
                    return cli_usage("model train: --optimizer %s: expected adam or sgd", v);
            } else if (!strcmp(a, "--learn")) {
                p.learn_in = p.learn_rec = p.learn_out = 0;
                char buf[64];
                if (snprintf(buf, sizeof buf, "%s", v) >= (int)sizeof buf)
                    return cli_usage("model train: --learn %s: expected a list of in, rec, out", v);
                for (char *s = strtok(buf, ","); s; s = strtok(NULL, ",")) {
                    if (!strcmp(s, "in"))
                        p.learn_in = 1;
                    else if (!strcmp(s, "rec"))
                        p.learn_rec = 1;
                    else if (!strcmp(s, "out"))
                        p.learn_out = 1;
                    else
                        return cli_usage("model train: --learn %s: expected a list of in, rec, out", v);
                }
                if (!p.learn_in && !p.learn_rec && !p.learn_out)
                    return cli_usage("model train: --learn '%s': expected at least one of in, rec, out", v);
            } else {
                return cli_usage("model train: unknown option %s", a);
            }
        } else if (!model) {
            model = a;
        } else if (!input) {
            input = a;
        } else if (!tfile) {
            tfile = a;
        } else {
            return cli_usage("model train: unexpected argument %s", a);
        }
    }
    if (!model || !input || !tfile)
        return cli_usage("model train: expected MODEL INPUT.csv TARGETS.csv");

    char path[2048], dst[2200];
    if (resolve_model(model, dir, path, sizeof path) < 0)
        return CLI_FAIL;
    output_path(path, out, dst, sizeof dst);
    { /* the output's directory must exist before the epochs run, not only when they end */
        char d[2200];
        snprintf(d, sizeof d, "%s", dst);
        char *slash = strrchr(d, '/');
        if (slash)
            *(slash == d ? slash + 1 : slash) = '\0';
        struct stat st;
        if (slash && stat(d, &st) != 0)
            return cli_fail("--out %s: %s: %s", dst, d, strerror(errno));
        if (slash && !S_ISDIR(st.st_mode))
            return cli_fail("--out %s: %s: %s", dst, d, strerror(ENOTDIR));
    }
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_model_load(path, NULL, &m, &err);
    if (rc < 0)
        return cli_fail("%s", err.msg[0] ? err.msg : snn_strerror(rc));
    snn_eprop_params q = p;
    int binary = 0;
    if ((rc = snn_rsnn_eprop_params(path, &q, &binary, &err)) < 0) {
        snn_model_free(m);
        return cli_fail("%s", err.msg);
    }
    snn_csv in;
    char cerr[512];
    if (snn_csv_load(input, m->n_in, &in, cerr, sizeof cerr) < 0) {
        snn_model_free(m);
        return cli_fail("%s", cerr);
    }
    targets g;
    int classify = q.loss == SNN_EPROP_CROSS_ENTROPY;
    if (targets_load(tfile, m, classify, &g) != CLI_OK) {
        snn_csv_free(&in);
        snn_model_free(m);
        return CLI_FAIL;
    }
    int status = CLI_FAIL;
    snn_eprop *e = NULL;
    uint8_t *x = NULL;
    if (g.n_rows != in.n_rows) {
        cli_fail("%s: %zu rows, but %s has %zu", tfile, g.n_rows, input, in.n_rows);
        goto out;
    }
    for (size_t r = 0; g.t && in.t && r < in.n_rows; r++)
        if (fabs(g.t[r] - in.t[r]) > 1e-9) {
            cli_fail("%s: row %zu: t %.9g differs from the input's %.9g", tfile, r + 1, g.t[r], in.t[r]);
            goto out;
        }
    if (interval > in.n_rows) { /* no whole interval: the epochs would learn nothing */
        cli_usage("model train: --interval %llu exceeds the %zu rows of %s: no update would happen",
                  (unsigned long long)interval, in.n_rows, input);
        status = CLI_USAGE;
        goto out;
    }
    /* Bellec et al.'s pseudo-derivative: 0.3 max(0, 1 - |v - A|/v_th) / v_th. */
    p.psi_height = 0.3 / q.v_th;
    p.psi_width = q.v_th;
    p.update_interval = (uint32_t)(interval ? interval : in.n_rows);
    p.learning_window = p.update_interval;
    p.batch_size = 1;
    if ((rc = snn_rsnn_eprop_new(path, &p, NULL, &e, &err)) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    x = malloc(in.n_ch ? in.n_ch : 1);
    if (!x) {
        cli_fail("out of memory");
        goto out;
    }
    printf("epoch,loss\n");
    for (uint64_t ep = 0;; ep++) {
        /* The loss of the weights after ep epochs, measured with learning off. */
        snn_eprop_set_learning(e, 0);
        snn_eprop_reset(e);
        printf("%llu,%.9g\n", (unsigned long long)ep, run_epoch(e, &in, &g, m->n_out, binary, x));
        fflush(stdout);
        if (ep == epochs)
            break;
        snn_eprop_set_learning(e, 1);
        snn_eprop_reset(e);
        run_epoch(e, &in, &g, m->n_out, binary, x);
    }
    if ((rc = snn_rsnn_eprop_save(e, path, dst, &err)) < 0) {
        cli_fail("%s", err.msg);
        goto out;
    }
    fprintf(stderr, "snn: wrote %s\n", dst);
    status = CLI_OK;
out:
    free(x);
    snn_eprop_free(e);
    targets_free(&g);
    snn_csv_free(&in);
    snn_model_free(m);
    return status;
}
