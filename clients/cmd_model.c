/*
 * cmd_model.c -- `snn model info` and `snn model run` (offline, no daemon).
 *
 * `model run` drives an snn_session exactly as snnd's stream does: the same
 * feed plan (cli.h), then flush(0) and finish, so `snn replay` through the
 * daemon prints the same bytes.
 */
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "model.h"
#include "session.h"
#include "wav.h"

#ifndef SNN_ZOO_DIR
#define SNN_ZOO_DIR "models/zoo"
#endif

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The model directory: --models, else $SNN_MODELS, else the source tree's
 * models/zoo baked in at build time (if it exists), else ./models/zoo. */
static const char *models_dir(const char *opt)
{
    if (opt)
        return opt;
    const char *env = getenv("SNN_MODELS");
    if (env && env[0])
        return env;
    if (is_dir(SNN_ZOO_DIR))
        return SNN_ZOO_DIR;
    return "models/zoo";
}

snn_model *cli_load_model(const char *name, const char *dir_opt)
{
    static const char *const ext[] = {".safetensors", ".onnx", ".nir"};
    char path[2048];
    const char *dir = models_dir(dir_opt);
    const char *use = NULL;
    if (is_file(name)) {
        use = name;
    } else if (!strchr(name, '/')) {
        for (size_t i = 0; i < 3 && !use; i++) {
            snprintf(path, sizeof path, "%s/%s%s", dir, name, ext[i]);
            if (is_file(path))
                use = path;
        }
    }
    if (!use) {
        struct stat st;
        if (stat(name, &st) == 0) /* there, but a directory or a device */
            cli_fail("model '%s': %s, not a model file", name,
                     S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
        else if (strchr(name, '/'))
            cli_fail("model '%s': %s", name, strerror(errno));
        else
            cli_fail("model '%s': no such file, nor %s/%s.{safetensors,onnx,nir}", name, dir, name);
        return NULL;
    }
    snn_model *m = NULL;
    snn_err err = {{0}};
    int rc = snn_model_load(use, NULL, &m, &err);
    if (rc < 0) {
        cli_fail("%s", err.msg[0] ? err.msg : snn_strerror(rc));
        return NULL;
    }
    return m;
}

static const char *const info_help =
    "usage: snn model info MODEL [--models DIR]\n"
    "\n"
    "Prints the model's static description as JSON: architecture, inputs,\n"
    "outputs, parameter count and footprint. MODEL is a file, or a name in the\n"
    "model directory (DIR, else $SNN_MODELS, else the built-in models/zoo) tried\n"
    "as NAME.safetensors, NAME.onnx, NAME.nir.\n";

int cmd_model_info(int argc, char **argv)
{
    const char *model = NULL, *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(info_help, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--models") == 0) {
            if (++i == argc)
                return cli_usage("model info: --models needs a directory");
            dir = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("model info: unknown option %s", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            return cli_usage("model info: unexpected argument %s", argv[i]);
        }
    }
    if (!model)
        return cli_usage("model info: missing MODEL");
    snn_model *m = cli_load_model(model, dir);
    if (!m)
        return CLI_FAIL;
    json_t *obj = json_object();
    int rc = obj ? snn_model_describe(m, obj) : -SNN_ENOMEM;
    if (rc < 0) {
        json_decref(obj);
        snn_model_free(m);
        return cli_fail("model %s: describe failed: %s", model, snn_strerror(rc));
    }
    json_dumpf(obj, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
    json_decref(obj);
    snn_model_free(m);
    return CLI_OK;
}

static const char *const run_help =
    "usage: snn model run MODEL INPUT [--models DIR] [--out FILE] [--decision]\n"
    "                     [--input-kind K] [--bin-us N] [--silence-ms N] [--hold-ms N]\n"
    "                     [--progress | --no-progress]\n"
    "\n"
    "Runs MODEL over INPUT offline (no daemon) and prints its predictions as CSV:\n"
    "header step,t,<output names>, one row per prediction, t in seconds (%.6f),\n"
    "values %.9g. `snn replay` through snnd prints the same bytes.\n"
    "\n"
    "INPUT is a .csv with a header line: an optional column t (seconds) and one\n"
    "column per model input. Input columns are those named taxel_*, ch* or\n"
    "unit_* (taken in the order of their numbers, e.g. taxel_0..taxel_11, whatever\n"
    "the column order; clients/csv.h has the whole rule: quoting, BOM, CR/CRLF);\n"
    "if there are none, every other numeric column except label, sample,\n"
    "letter, repetition, t_index, t_s, step, index and id. Their number must be\n"
    "the model's input count. For spike and binned models a row is the counts of\n"
    "one bin (t = bin start); for tactile and analog models a row is one frame at\n"
    "time t (without t: row * bin width). A .wav (or .w64, .rf64) INPUT feeds an\n"
    "audio model.\n"
    "\n"
    "  --out FILE       write to FILE instead of stdout\n"
    "  --decision       print only decisions, one JSON object per line (classifiers,\n"
    "                   DNSMOS; refused for a model without one, e.g. a velocity decoder)\n"
    "  --input-kind K   spikes, binned, tactile, analog or audio (default: the model's)\n"
    "  --bin-us N       bin width in microseconds, 1 to 60000000 (default: the model's dt)\n"
    "  --models DIR     where MODEL names are looked up (default $SNN_MODELS, else\n"
    "                   the built-in models/zoo)\n"
    "  --silence-ms N   end a segment (and decide) after N ms without input, N up to\n"
    "                   3600000 (default 0: one segment, decided at the end)\n"
    "  --hold-ms N      tactile: a gap of more than N ms between frames holds the last\n"
    "                   values until N ms before the next frame, instead of spreading the\n"
    "                   change over the whole gap (for senders that skip unchanged frames;\n"
    "                   1 to 3600000, default: the model's encoder hold_us, 0 = off)\n"
    "  --progress       a progress line on stderr even when it is not a terminal (on a\n"
    "                   terminal it is shown by default, once a run takes over 1 s)\n"
    "  --no-progress    no progress line\n";

/* Parsed options of run and replay. */
typedef struct run_opts {
    const char *model, *input, *dir, *out;
    int decision;
    progress_mode progress;
    int input_kind; /* snn_input_kind; 0 = default */
    uint32_t bin_us;
    int64_t silence_us;
    int64_t hold_us;
} run_opts;

/* The emitter: predictions and decisions to the writer. */
static void emit_out(void *ctx, const snn_output *o)
{
    out_writer *w = ctx;
    if (o->type == SNN_OUT_PREDICTION)
        out_prediction(w, o->step, (uint64_t)o->t_us, o->values, o->n);
    else
        out_decision(w, o->label, o->index, o->values, o->n, NULL);
}

int cmd_model_run(int argc, char **argv)
{
    run_opts o = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (cli_is_help(a)) {
            fputs(run_help, stdout);
            return CLI_OK;
        } else if (strcmp(a, "--decision") == 0) {
            o.decision = 1;
        } else if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
            o.progress = a[2] == 'p' ? PROGRESS_ON : PROGRESS_OFF;
        } else if (strcmp(a, "--models") == 0 || strcmp(a, "--out") == 0 ||
                   strcmp(a, "--input-kind") == 0 || strcmp(a, "--bin-us") == 0 ||
                   strcmp(a, "--silence-ms") == 0 || strcmp(a, "--hold-ms") == 0) {
            if (++i == argc)
                return cli_usage("model run: %s needs a value", a);
            const char *val = argv[i];
            if (strcmp(a, "--models") == 0) {
                o.dir = val;
            } else if (strcmp(a, "--out") == 0) {
                o.out = val;
            } else if (strcmp(a, "--input-kind") == 0) {
                o.input_kind = snn_input_kind_parse(val);
                if (o.input_kind <= 0)
                    return cli_usage("model run: --input-kind %s: expected spikes, binned, tactile, "
                                     "analog or audio", val);
            } else if (strcmp(a, "--bin-us") == 0) {
                if (cli_parse_u64(val, BIN_US_MAX, &v) < 0 || v == 0)
                    return cli_usage("model run: --bin-us %s: expected microseconds, 1 to %d", val,
                                     BIN_US_MAX);
                o.bin_us = (uint32_t)v;
            } else if (strcmp(a, "--hold-ms") == 0) {
                if (cli_parse_u64(val, SILENCE_MS_MAX, &v) < 0 || v == 0)
                    return cli_usage("model run: --hold-ms %s: expected milliseconds, 1 to %d", val,
                                     SILENCE_MS_MAX);
                o.hold_us = (int64_t)v * 1000;
            } else {
                if (cli_parse_u64(val, SILENCE_MS_MAX, &v) < 0)
                    return cli_usage("model run: --silence-ms %s: expected milliseconds, 0 to %d", val,
                                     SILENCE_MS_MAX);
                o.silence_us = (int64_t)v * 1000;
            }
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("model run: unknown option %s", a);
        } else if (!o.model) {
            o.model = a;
        } else if (!o.input) {
            o.input = a;
        } else {
            return cli_usage("model run: unexpected argument %s", a);
        }
    }
    if (!o.model || !o.input)
        return cli_usage("model run: expected MODEL INPUT");
    if (o.out && (cli_same_file(o.out, o.input) || cli_same_file(o.out, o.model)))
        return cli_usage("model run: --out %s is the %s: it would be overwritten", o.out,
                         cli_same_file(o.out, o.input) ? "input" : "model");

    snn_model *m = cli_load_model(o.model, o.dir);
    if (!m)
        return CLI_FAIL;
    if (o.decision && m->decision == SNN_DECISION_NONE) { /* it would print nothing */
        cli_usage("--decision: %s makes no decision (its outputs are a regression's); drop --decision", m->name);
        snn_model_free(m);
        return CLI_USAGE;
    }
    int status = CLI_FAIL;
    snn_session *s = NULL;
    snn_csv csv = {0};
    snn_wav wav = {0};
    feed_op *ops = NULL;
    FILE *f = NULL;
    snn_err err = {{0}};
    char msg[512];

    snn_session_cfg cfg = {.input = (snn_input_kind)o.input_kind, .bin_us = o.bin_us,
                           .segment_silence_us = o.silence_us, .tactile_hold_us = o.hold_us};
    int rc = snn_session_new(m, &cfg, NULL, &s, &err);
    if (rc < 0) {
        cli_fail("%s", err.msg[0] ? err.msg : snn_strerror(rc));
        goto done;
    }
    int kind = snn_session_input(s);
    long n_ops;
    if (cli_is_audio_path(o.input)) {
        if (kind != SNN_INPUT_AUDIO) {
            cli_fail("%s: a .wav input needs an audio model; %s takes %s input", o.input, m->name,
                     snn_input_kind_name((snn_input_kind)kind));
            goto done;
        }
        if (cli_read_wav(o.input, &wav) < 0)
            goto done;
        n_ops = feed_plan_audio(wav.n, &ops);
    } else {
        if (kind == SNN_INPUT_AUDIO) {
            cli_fail("%s: %s takes audio: give a .wav (or .w64, .rf64) file, not a CSV", o.input,
                     m->name);
            goto done;
        }
        if (snn_csv_load(o.input, snn_frame_values(m, (snn_input_kind)kind), &csv, msg, sizeof msg) < 0) {
            cli_fail("%s", msg);
            goto done;
        }
        n_ops = feed_plan_csv(&csv, kind, snn_session_bin_us(s), &ops, msg, sizeof msg);
        if (n_ops < 0) {
            cli_fail("%s: %s", o.input, msg);
            goto done;
        }
    }
    if (n_ops < 0) {
        cli_fail("out of memory");
        goto done;
    }
    f = o.out ? fopen(o.out, "w") : stdout;
    if (!f) {
        cli_fail("--out %s: %s", o.out, strerror(errno));
        goto done;
    }
    out_writer w = {.f = f, .decisions_only = o.decision, .n_out = m->n_out,
                    .names = (const char *const *)m->out_names};
    cli_progress pg;
    if (wav.x)
        cli_progress_start(&pg, o.progress, o.input, (double)wav.n / wav.sample_rate, NULL);
    else
        cli_progress_start(&pg, o.progress, o.input, (double)csv.n_rows, "rows");
    w.pg = &pg;
    /* A write error (full disk, closed pipe) ends the run early: reported below. */
    for (long i = 0; i < n_ops && rc >= 0 && !ferror(f); i++) {
        const feed_op *op = &ops[i];
        cli_progress_update(&pg, wav.x ? (double)op->first / wav.sample_rate : (double)op->first);
        if (op->kind == FEED_BINNED)
            rc = snn_session_binned(s, csv.values + op->first * csv.n_ch, csv.n_ch, op->n, op->t_us,
                                    emit_out, &w, &err);
        else if (op->kind == FEED_FRAME)
            rc = snn_session_frame(s, op->t_us, csv.values + op->first * csv.n_ch, csv.n_ch,
                                   emit_out, &w, &err);
        else
            rc = snn_session_audio(s, wav.x + op->first, op->n, wav.sample_rate, emit_out, &w, &err);
        if (rc < 0)
            snprintf(msg, sizeof msg, "%s: %s %zu: %s", o.input,
                     op->kind == FEED_AUDIO ? "sample" : "data row", op->first + 1,
                     err.msg[0] ? err.msg : snn_strerror(rc));
    }
    if (rc >= 0) {
        rc = snn_session_flush(s, 0, emit_out, &w, &err);
        if (rc >= 0)
            rc = snn_session_finish(s, emit_out, &w, &err);
        if (rc < 0)
            snprintf(msg, sizeof msg, "%s: end of input: %s", o.input,
                     err.msg[0] ? err.msg : snn_strerror(rc));
    }
    cli_progress_end(&pg);
    if (rc < 0) {
        cli_fail("%s", msg);
        goto done;
    }
    out_finish(&w);
    if (ferror(f)) {
        cli_fail("%s: write error", o.out ? o.out : "stdout");
        goto done;
    }
    status = CLI_OK;
done:
    if (f && f != stdout && fclose(f) != 0 && status == CLI_OK)
        status = cli_fail("%s: %s", o.out, strerror(errno));
    free(ops);
    snn_csv_free(&csv);
    snn_wav_free(&wav);
    snn_session_free(s);
    snn_model_free(m);
    return status;
}
