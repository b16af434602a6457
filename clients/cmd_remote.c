/*
 * cmd_remote.c -- the subcommands that talk to a running snnd:
 * `snn replay`, `snn sub`, `snn stats`, `snn models`.
 */
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "session.h"
#include "snnclient.h"
#include "wav.h"

#define REPLY_TIMEOUT_MS 10000

/* Connection options shared by every remote subcommand. */
typedef struct conn_opts {
    const char *sock, *host, *port;
} conn_opts;

/* If argv[*i] is a connection option, consumes it (and its value) and
 * returns 1; returns -1 when the value is missing, -2 after printing why a
 * --port is not a port number or why --socket and --host/--port clash, 0 if it
 * is not one. */
static int conn_opt(conn_opts *c, int argc, char **argv, int *i)
{
    const char **dst = NULL;
    if (strcmp(argv[*i], "--socket") == 0)
        dst = &c->sock;
    else if (strcmp(argv[*i], "--host") == 0)
        dst = &c->host;
    else if (strcmp(argv[*i], "--port") == 0)
        dst = &c->port;
    if (!dst)
        return 0;
    if (*i + 1 == argc)
        return -1;
    *dst = argv[++*i];
    if (dst == &c->sock ? c->host || c->port : c->sock != NULL) {
        cli_usage("%s %s: give either --socket or --host/--port, not both", argv[*i - 1], *dst);
        return -2;
    }
    const char *colon = dst == &c->host ? strchr(*dst, ':') : NULL;
    if (colon && !strchr(colon + 1, ':') && (*dst)[0] != '[') { /* host:port (IPv6 has two or more ':') */
        cli_usage("--host %s: give the host alone and the port with --port (--host %.*s --port %s)", *dst,
                  (int)(colon - *dst), *dst, colon + 1);
        return -2;
    }
    uint64_t port;
    if (dst == &c->port && (cli_parse_u64(*dst, 65535, &port) < 0 || port == 0)) {
        cli_usage("--port %s: expected a port number, 1 to 65535", *dst);
        return -2;
    }
    return 1;
}

/* Appends the OpenStream option key=value to opt[*n] and its pointer to optp[*n]
 * (the caller sized both for every option it adds). */
static void add_option(Snnd__V1__OpenStream__OptionsEntry *opt, Snnd__V1__OpenStream__OptionsEntry **optp,
                       size_t *n, const char *key, const char *value)
{
    snnd__v1__open_stream__options_entry__init(&opt[*n]);
    opt[*n].key = (char *)key;
    opt[*n].value = (char *)value;
    optp[*n] = &opt[*n];
    (*n)++;
}

#define CONN_HELP                                                                              \
    "  --socket PATH    the daemon's Unix socket\n"                                            \
    "  --host H --port P  the daemon's TCP address (port default 7878)\n"                     \
    "Default address: $SNN_SOCKET, else snnd.sock in $XDG_RUNTIME_DIR (or /tmp) if it\n"       \
    "exists, else tcp:127.0.0.1:7878.\n"

/* Connects and says Hello (token from $SNN_TOKEN). Prints the error and
 * returns NULL on failure. */
static snnc *dial(const conn_opts *o, const Snnd__V1__Welcome **welcome)
{
    char addr[1100];
    cli_address(o->sock, o->host, o->port, addr, sizeof addr);
    snnc *c = snnc_new(0);
    if (!c) {
        cli_fail("out of memory");
        return NULL;
    }
    if (snnc_connect(c, addr) < 0 || snnc_hello(c, "snn", getenv("SNN_TOKEN"), welcome) < 0) {
        cli_fail("%s", snnc_error(c));
        snnc_free(c);
        return NULL;
    }
    return c;
}

/* ---- replay ---------------------------------------------------------------- */

static const char *const replay_help =
    "usage: snn replay MODEL INPUT [--socket PATH | --host H --port P] [--realtime]\n"
    "                  [--out FILE] [--decision] [--stream ID] [--input-kind K]\n"
    "                  [--bin-us N] [--silence-ms N] [--hold-ms N] [--option KEY=VALUE]...\n"
    "                  [--progress | --no-progress]\n"
    "\n"
    "Sends INPUT (as for `snn model run`) through a running snnd: opens stream ID\n"
    "(default replay-<pid>) on MODEL (a name the server serves; a path is reduced to\n"
    "its base name) subscribed, sends the rows (64 bins per BinnedCounts, one\n"
    "TactileFrame per frame), flushes and closes it, and prints the predictions\n"
    "exactly as `snn model run` does.\n"
    "\n"
    "  --realtime       pace the messages by their timestamps\n"
    "  --out FILE, --decision, --input-kind K, --bin-us N, --silence-ms N, --hold-ms N,\n"
    "  --progress, --no-progress: as model run\n"
    "  --option KEY=VALUE  an OpenStream option (repeatable), e.g. learn=eprop, lr=0.001\n" CONN_HELP;

typedef struct replay {
    const char *stream;
    out_writer w;
    const feed_op *ops;
    long n_ops;
    uint32_t first_data_id; /* request id of ops[0] */
    int closed;             /* StreamClosed arrived */
    uint32_t close_id;
    int failed;
    const char *input;
    cli_progress *pg; /* erased before an error is printed */
} replay;

/* Handles one envelope that arrived during a replay. */
static void replay_on(replay *r, const Snnd__V1__Envelope *env)
{
    switch (env->msg_case) {
    case SNND__V1__ENVELOPE__MSG_PREDICTION: {
        const Snnd__V1__Prediction *p = env->prediction;
        if (strcmp(p->stream_id, r->stream) == 0)
            out_prediction(&r->w, p->step, p->t_us, p->values, (uint32_t)p->n_values);
        break;
    }
    case SNND__V1__ENVELOPE__MSG_DECISION: {
        const Snnd__V1__Decision *d = env->decision;
        if (strcmp(d->stream_id, r->stream) == 0)
            out_decision(&r->w, d->label, d->label && d->label[0] ? d->index : -1, d->values,
                         (uint32_t)d->n_values,
                         d->n_names == d->n_values ? (const char *const *)d->names : NULL);
        break;
    }
    case SNND__V1__ENVELOPE__MSG_STREAM_CLOSED:
        if (env->id == r->close_id || strcmp(env->stream_closed->stream_id, r->stream) == 0)
            r->closed = 1;
        break;
    case SNND__V1__ENVELOPE__MSG_ERROR: {
        const Snnd__V1__Error *e = env->error;
        uint32_t rid = e->request_id ? e->request_id : env->id;
        char where[96] = "";
        cli_progress_erase(r->pg);
        if (rid >= r->first_data_id && rid < r->first_data_id + (uint32_t)r->n_ops) {
            const feed_op *op = &r->ops[rid - r->first_data_id];
            snprintf(where, sizeof where, "%s %s %zu: ", r->input,
                     op->kind == FEED_AUDIO ? "sample" : "data row", op->first + 1);
        }
        cli_fail("%sserver: %s: %s", where, snnc_error_code_name(e->code),
                 e->message ? e->message : "");
        r->failed = 1;
        break;
    }
    default:
        break;
    }
}

/* Receives whatever has arrived without waiting (so the server never has to
 * queue our predictions while we send). Returns 0 or a negative code. */
static int replay_drain(snnc *c, replay *r)
{
    for (;;) {
        Snnd__V1__Envelope *env;
        int rc = snnc_recv(c, 0, &env);
        if (rc == -SNNC_ETIMEDOUT)
            return 0;
        if (rc < 0)
            return rc;
        replay_on(r, env);
        snnc_envelope_free(env);
        if (r->failed)
            return -SNNC_ESERVER;
    }
}

static void sleep_until(const struct timespec *start, uint64_t offset_us)
{
    struct timespec t = *start;
    t.tv_sec += (time_t)(offset_us / 1000000);
    t.tv_nsec += (long)(offset_us % 1000000) * 1000;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR)
        ;
}

/* The server's name for MODEL: a path loses its directory and extension. */
static void server_model_name(const char *model, char *buf, size_t len)
{
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    snprintf(buf, len, "%s", base);
    static const char *const ext[] = {".safetensors", ".onnx", ".nir"};
    size_t n = strlen(buf);
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcmp(buf + n - k, ext[i]) == 0)
            buf[n - k] = '\0';
    }
}

int cmd_replay(int argc, char **argv)
{
    conn_opts co = {0};
    const char *model = NULL, *input = NULL, *out = NULL, *stream = NULL;
    int decision = 0, realtime = 0, kind_opt = 0;
    progress_mode progress = PROGRESS_AUTO;
    char extra_keys[16][64];
    const char *extra_vals[16];
    int n_extra = 0;
    uint32_t bin_us = 0;
    uint64_t silence_ms = 0, hold_ms = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int k = conn_opt(&co, argc, argv, &i);
        uint64_t v;
        if (k < 0)
            return k == -2 ? CLI_USAGE : cli_usage("replay: %s needs a value", a);
        if (k > 0)
            continue;
        if (cli_is_help(a)) {
            fputs(replay_help, stdout);
            return CLI_OK;
        } else if (strcmp(a, "--realtime") == 0) {
            realtime = 1;
        } else if (strcmp(a, "--decision") == 0) {
            decision = 1;
        } else if (strcmp(a, "--progress") == 0 || strcmp(a, "--no-progress") == 0) {
            progress = a[2] == 'p' ? PROGRESS_ON : PROGRESS_OFF;
        } else if (!strcmp(a, "--out") || !strcmp(a, "--stream") || !strcmp(a, "--input-kind") ||
                   !strcmp(a, "--bin-us") || !strcmp(a, "--silence-ms") || !strcmp(a, "--hold-ms") ||
                   !strcmp(a, "--option")) {
            if (++i == argc)
                return cli_usage("replay: %s needs a value", a);
            const char *val = argv[i];
            if (!strcmp(a, "--option")) {
                const char *eq = strchr(val, '=');
                if (!eq || eq == val || n_extra == 16)
                    return cli_usage("replay: --option %s: expected KEY=VALUE (at most 16)", val);
                snprintf(extra_keys[n_extra], sizeof extra_keys[0], "%.*s", (int)(eq - val), val);
                extra_vals[n_extra++] = eq + 1;
            } else if (!strcmp(a, "--out")) {
                out = val;
            } else if (!strcmp(a, "--stream")) {
                stream = val;
            } else if (!strcmp(a, "--input-kind")) {
                kind_opt = snn_input_kind_parse(val);
                if (kind_opt <= 0)
                    return cli_usage("replay: --input-kind %s: expected spikes, binned, tactile, "
                                     "analog or audio", val);
            } else if (!strcmp(a, "--bin-us")) {
                if (cli_parse_u64(val, BIN_US_MAX, &v) < 0 || v == 0)
                    return cli_usage("replay: --bin-us %s: expected microseconds, 1 to %d", val,
                                     BIN_US_MAX);
                bin_us = (uint32_t)v;
            } else if (!strcmp(a, "--hold-ms")) {
                if (cli_parse_u64(val, SILENCE_MS_MAX, &hold_ms) < 0 || hold_ms == 0)
                    return cli_usage("replay: --hold-ms %s: expected milliseconds, 1 to %d", val, SILENCE_MS_MAX);
            } else if (cli_parse_u64(val, SILENCE_MS_MAX, &silence_ms) < 0) {
                return cli_usage("replay: --silence-ms %s: expected milliseconds, 0 to %d", val,
                                 SILENCE_MS_MAX);
            }
        } else if (a[0] == '-' && a[1]) {
            return cli_usage("replay: unknown option %s", a);
        } else if (!model) {
            model = a;
        } else if (!input) {
            input = a;
        } else {
            return cli_usage("replay: unexpected argument %s", a);
        }
    }
    if (!model || !input)
        return cli_usage("replay: expected MODEL INPUT");
    if (out && cli_same_file(out, input))
        return cli_usage("replay: --out %s is the input: it would be overwritten", out);
    char stream_buf[72], name[256];
    if (!stream) {
        snprintf(stream_buf, sizeof stream_buf, "replay-%ld", (long)getpid());
        stream = stream_buf;
    }
    server_model_name(model, name, sizeof name);

    int status = CLI_FAIL, rc, opened = 0;
    const Snnd__V1__Welcome *wel = NULL;
    snnc *c = dial(&co, &wel);
    if (!c)
        return CLI_FAIL;
    Snnd__V1__Envelope *reply = NULL;
    snn_csv csv = {0};
    snn_wav wav = {0};
    feed_op *ops = NULL;
    FILE *f = NULL;
    char msg[512];

    /* Read a CSV before opening the stream, so a bad file leaves no trace on
     * the server; its input count comes from the Welcome. */
    int is_wav = cli_is_audio_path(input);
    if (!is_wav && wel) {
        for (size_t i = 0; i < wel->n_models; i++) {
            const Snnd__V1__ModelInfo *mi = wel->models[i];
            if (strcmp(mi->name, name) != 0)
                continue;
            if ((kind_opt == 0 || kind_opt == SNN_INPUT_AUDIO) && mi->input_kind &&
                strcmp(mi->input_kind, "audio") == 0) {
                cli_fail("%s: %s takes audio: give a .wav (or .w64, .rf64) file, not a CSV", input, name);
                goto done;
            }
            if (snn_csv_load(input,
                             kind_opt == 0 || kind_opt == SNN_INPUT_TACTILE ? mi->frame_values : mi->n_inputs,
                             &csv, msg, sizeof msg) < 0) {
                cli_fail("%s", msg);
                goto done;
            }
        }
    }

    /* OpenStream, subscribed; the segment rule travels as an option. */
    Snnd__V1__OpenStream os = SNND__V1__OPEN_STREAM__INIT;
    os.stream_id = (char *)stream;
    os.model = name;
    os.input_kind = (Snnd__V1__InputKind)kind_opt;
    os.bin_width_us = bin_us;
    os.subscribe = 1;
    char silence_val[24], hold_val[24];
    Snnd__V1__OpenStream__OptionsEntry opt[18];
    Snnd__V1__OpenStream__OptionsEntry *optp[18];
    size_t n_opt = 0;
    if (hold_ms > 0) {
        snprintf(hold_val, sizeof hold_val, "%llu", (unsigned long long)hold_ms);
        add_option(opt, optp, &n_opt, "tactile_hold_ms", hold_val);
    }
    if (silence_ms > 0) {
        snprintf(silence_val, sizeof silence_val, "%llu", (unsigned long long)silence_ms);
        add_option(opt, optp, &n_opt, "segment_silence_ms", silence_val);
    }
    for (int k = 0; k < n_extra; k++)
        add_option(opt, optp, &n_opt, extra_keys[k], extra_vals[k]);
    os.n_options = n_opt;
    os.options = optp;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
    env.open_stream = &os;
    uint32_t id;
    if ((rc = snnc_send(c, &env, &id)) < 0 ||
        (rc = snnc_wait_reply(c, id, REPLY_TIMEOUT_MS, &reply, NULL, NULL)) < 0) {
        cli_fail("open stream %s on model %s: %s", stream, name, snnc_error(c));
        goto done;
    }
    if (reply->msg_case != SNND__V1__ENVELOPE__MSG_STREAM_OPENED || !reply->stream_opened->model) {
        cli_fail("open stream %s: unexpected reply %s", stream, snnc_msg_name(reply->msg_case));
        goto done;
    }
    opened = 1;
    const Snnd__V1__StreamOpened *so = reply->stream_opened;
    int kind = (int)so->input_kind;
    uint32_t bin = so->bin_width_us;
    long n_ops;
    if (is_wav) {
        if (kind != SNN_INPUT_AUDIO) {
            cli_fail("%s: a .wav input needs an audio model; %s takes %s input", input, name,
                     snn_input_kind_name((snn_input_kind)kind));
            goto done;
        }
        if (cli_read_wav(input, &wav) < 0)
            goto done;
        n_ops = feed_plan_audio(wav.n, &ops);
        if (n_ops < 0) {
            cli_fail("out of memory");
            goto done;
        }
    } else {
        if (kind == SNN_INPUT_AUDIO) {
            cli_fail("%s: %s takes audio: give a .wav (or .w64, .rf64) file, not a CSV", input, name);
            goto done;
        }
        if (!csv.values && snn_csv_load(input,
                                        so->input_kind == SNND__V1__INPUT_KIND__INPUT_TACTILE ? so->model->frame_values
                                                                                             : so->model->n_inputs,
                                        &csv, msg, sizeof msg) < 0) {
            cli_fail("%s", msg);
            goto done;
        }
        n_ops = feed_plan_csv(&csv, kind, bin, &ops, msg, sizeof msg);
        if (n_ops < 0) {
            cli_fail("%s: %s", input, msg);
            goto done;
        }
    }
    f = out ? fopen(out, "w") : stdout;
    if (!f) {
        cli_fail("--out %s: %s", out, strerror(errno));
        goto done;
    }
    cli_progress pg;
    if (is_wav)
        cli_progress_start(&pg, progress, input, (double)wav.n / wav.sample_rate, NULL);
    else
        cli_progress_start(&pg, progress, input, (double)csv.n_rows, "rows");
    replay r = {.stream = stream, .ops = ops, .n_ops = n_ops, .input = input, .pg = &pg,
                .w = {.f = f, .decisions_only = decision, .n_out = (uint32_t)so->model->n_outputs,
                      .names = so->model->n_output_names == so->model->n_outputs
                                   ? (const char *const *)so->model->output_names : NULL,
                      .pg = &pg}};

    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t t_first = 0;
    for (long i = 0; i < n_ops; i++) {
        const feed_op *op = &ops[i];
        uint64_t t_op = op->kind == FEED_AUDIO ? op->first * 1000000ull / wav.sample_rate
                        : csv.has_t             ? op->t_us
                                                : (uint64_t)op->first * bin;
        if (i == 0)
            t_first = t_op;
        cli_progress_update(&pg, is_wav ? (double)op->first / wav.sample_rate : (double)op->first);
        if (realtime)
            sleep_until(&start, t_op - t_first);
        if (op->kind == FEED_BINNED)
            rc = snnc_binned(c, stream, csv.n_ch, csv.values + op->first * csv.n_ch, op->n, op->t_us,
                             &id);
        else if (op->kind == FEED_FRAME)
            rc = snnc_tactile(c, stream, op->t_us, csv.values + op->first * csv.n_ch, csv.n_ch, &id);
        else
            rc = snnc_audio(c, stream, wav.sample_rate, SNND__V1__SAMPLE_FORMAT__PCM_F32LE,
                            wav.x + op->first, op->n * sizeof(float), &id);
        if (i == 0)
            r.first_data_id = id;
        if (rc >= 0)
            rc = replay_drain(c, &r);
        if (rc < 0 || ferror(f)) /* a write error is reported after the stream closes */
            break;
    }
    if (rc >= 0)
        rc = snnc_flush(c, stream, 0, NULL);
    if (rc >= 0)
        rc = snnc_close_stream(c, stream, &r.close_id);
    while (rc >= 0 && !r.closed && !r.failed) {
        Snnd__V1__Envelope *e;
        rc = snnc_recv(c, REPLY_TIMEOUT_MS, &e);
        if (rc < 0)
            break;
        replay_on(&r, e);
        snnc_envelope_free(e);
    }
    cli_progress_end(&pg);
    if (r.closed)
        opened = 0;
    if (r.failed)
        goto done; /* replay_on printed the server's error */
    if (rc < 0) {
        cli_fail("replay of %s on stream %s: %s", input, stream, snnc_error(c));
        goto done;
    }
    out_finish(&r.w);
    if (ferror(f)) {
        cli_fail("%s: write error", out ? out : "stdout");
        goto done;
    }
    status = CLI_OK;
    opened = 0; /* closed by the server */
done:
    if (opened) /* best effort: do not leave a half-fed stream behind */
        snnc_close_stream(c, stream, NULL);
    if (f && f != stdout && fclose(f) != 0 && status == CLI_OK)
        status = cli_fail("%s: %s", out, strerror(errno));
    free(ops);
    snn_csv_free(&csv);
    snn_wav_free(&wav);
    snnc_envelope_free(reply);
    snnc_free(c);
    return status;
}

/* ---- sub --------------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char *const sub_help =
    "usage: snn sub STREAM [--socket PATH | --host H --port P]\n"
    "\n"
    "Subscribes to STREAM and prints every prediction and decision as one JSON\n"
    "line until the stream closes or Ctrl-C:\n"
    "  {\"stream\":\"s\",\"step\":12,\"t\":0.052000,\"values\":{\"vx\":0.1,\"vy\":-0.2},\"hidden_spikes\":3}\n"
    "  {\"stream\":\"s\",\"step\":99,\"t\":0.4,\"decision\":{\"label\":\"A\",\"index\":1,...},\"final\":true}\n"
    "A prediction the stream's decision does not count (a DNSMOS window that\n"
    "dnsmos_local.py skips) ends in ,\"outside_decision\":true.\n" CONN_HELP;

static void json_values(FILE *f, const float *v, size_t n, char *const *names, size_t n_names)
{
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        char fallback[24];
        snprintf(fallback, sizeof fallback, "y%zu", i);
        if (i)
            fputc(',', f);
        cli_json_string(f, i < n_names ? names[i] : fallback);
        fprintf(f, ":%.9g", (double)v[i]);
    }
    fputc('}', f);
}

int cmd_sub(int argc, char **argv)
{
    conn_opts co = {0};
    const char *stream = NULL;
    for (int i = 0; i < argc; i++) {
        int k = conn_opt(&co, argc, argv, &i);
        if (k < 0)
            return k == -2 ? CLI_USAGE : cli_usage("sub: %s needs a value", argv[i]);
        if (k > 0)
            continue;
        if (cli_is_help(argv[i])) {
            fputs(sub_help, stdout);
            return CLI_OK;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("sub: unknown option %s", argv[i]);
        } else if (!stream) {
            stream = argv[i];
        } else {
            return cli_usage("sub: unexpected argument %s", argv[i]);
        }
    }
    if (!stream)
        return cli_usage("sub: missing STREAM");
    const Snnd__V1__Welcome *wel = NULL;
    snnc *c = dial(&co, &wel);
    if (!c)
        return CLI_FAIL;
    int status = CLI_FAIL;
    Snnd__V1__Envelope *st = NULL;
    uint32_t id;
    /* The stream's model gives the output names. */
    char *const *names = NULL;
    size_t n_names = 0;
    if (snnc_stats(c, stream, &id) < 0 || snnc_wait_reply(c, id, REPLY_TIMEOUT_MS, &st, NULL, NULL) < 0) {
        cli_fail("stream %s: %s", stream, snnc_error(c));
        goto done;
    }
    if (st->msg_case == SNND__V1__ENVELOPE__MSG_STATS && st->stats->n_streams > 0 && wel) {
        const char *model = st->stats->streams[0]->model;
        for (size_t i = 0; i < wel->n_models; i++)
            if (model && strcmp(wel->models[i]->name, model) == 0) {
                names = wel->models[i]->output_names;
                n_names = wel->models[i]->n_output_names;
            }
    }
    if (snnc_subscribe(c, stream, &id) < 0 || snnc_wait_reply(c, id, REPLY_TIMEOUT_MS, NULL, NULL, NULL) < 0) {
        cli_fail("subscribe %s: %s", stream, snnc_error(c));
        goto done;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART: poll returns on Ctrl-C */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        Snnd__V1__Envelope *e;
        int rc = snnc_recv(c, -1, &e);
        if (interrupted) {
            if (rc == 0)
                snnc_envelope_free(e);
            status = CLI_OK;
            break;
        }
        if (rc == -SNNC_ECLOSED) {
            cli_fail("stream %s: %s", stream, snnc_error(c));
            break;
        }
        if (rc < 0) {
            cli_fail("%s", snnc_error(c));
            break;
        }
        int stop = 0;
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_PREDICTION &&
            strcmp(e->prediction->stream_id, stream) == 0) {
            const Snnd__V1__Prediction *p = e->prediction;
            fputs("{\"stream\":", stdout);
            cli_json_string(stdout, p->stream_id);
            fprintf(stdout, ",\"step\":%llu,\"t\":%.6f,\"values\":", (unsigned long long)p->step,
                    (double)p->t_us / 1e6);
            json_values(stdout, p->values, p->n_values, names, n_names);
            fprintf(stdout, ",\"hidden_spikes\":%u%s}\n", p->hidden_spikes,
                    p->outside_decision ? ",\"outside_decision\":true" : "");
        } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_DECISION &&
                   strcmp(e->decision->stream_id, stream) == 0) {
            const Snnd__V1__Decision *d = e->decision;
            fputs("{\"stream\":", stdout);
            cli_json_string(stdout, d->stream_id);
            fprintf(stdout, ",\"step\":%llu,\"t\":%.6f,\"decision\":", (unsigned long long)d->step,
                    (double)d->t_us / 1e6);
            if (d->label && d->label[0]) {
                fputs("{\"label\":", stdout);
                cli_json_string(stdout, d->label);
                fprintf(stdout, ",\"index\":%d,\"scores\":[", d->index);
                for (size_t i = 0; i < d->n_values; i++)
                    fprintf(stdout, "%s%.9g", i ? "," : "", (double)d->values[i]);
                fputs("]}", stdout);
            } else if (d->n_names == d->n_values) {
                json_values(stdout, d->values, d->n_values, d->names, d->n_names);
            } else {
                json_values(stdout, d->values, d->n_values, names, n_names);
            }
            fprintf(stdout, ",\"final\":%s}\n", d->final ? "true" : "false");
            stop = d->final;
        } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_STREAM_CLOSED &&
                   strcmp(e->stream_closed->stream_id, stream) == 0) {
            stop = 1;
        } else if (e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR) {
            const Snnd__V1__Error *er = e->error;
            if (er->stream_id && strcmp(er->stream_id, stream) == 0) {
                cli_fail("stream %s: server: %s: %s", stream, snnc_error_code_name(er->code),
                         er->message ? er->message : "");
                snnc_envelope_free(e);
                break;
            }
        }
        snnc_envelope_free(e);
        if (ferror(stdout)) { /* a full disk or closed stdout: stop now, not when the stream ends */
            cli_fail("stdout: write error");
            break;
        }
        if (stop) {
            status = CLI_OK;
            break;
        }
    }
done:
    snnc_envelope_free(st);
    snnc_free(c);
    return status;
}

/* ---- stats ------------------------------------------------------------------- */

static const char *const stats_help =
    "usage: snn stats [STREAM] [--json] [--socket PATH | --host H --port P]\n"
    "\n"
    "Prints the server's statistics and those of every stream (or only STREAM):\n"
    "a table by default, one JSON object with --json.\n" CONN_HELP;

static json_t *stream_json(const Snnd__V1__StreamStats *s)
{
    return json_pack("{s:s,s:s,s:I,s:I,s:i,s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f,s:I}",
                     "stream", s->stream_id ? s->stream_id : "", "model", s->model ? s->model : "",
                     "steps", (json_int_t)s->steps, "events", (json_int_t)s->events,
                     "subscribers", (int)s->subscribers, "footprint_bytes",
                     (json_int_t)s->footprint_bytes, "connection_sparsity",
                     s->connection_sparsity, "activation_sparsity", s->activation_sparsity,
                     "dense_synops_per_step", s->dense_synops_per_step,
                     "effective_macs_per_step", s->effective_macs_per_step,
                     "effective_acs_per_step", s->effective_acs_per_step, "mean_step_us",
                     s->mean_step_us, "last_t", (double)s->last_t_us / 1e6, "predictions",
                     (json_int_t)s->predictions);
}

int cmd_stats(int argc, char **argv)
{
    conn_opts co = {0};
    const char *stream = NULL;
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        int k = conn_opt(&co, argc, argv, &i);
        if (k < 0)
            return k == -2 ? CLI_USAGE : cli_usage("stats: %s needs a value", argv[i]);
        if (k > 0)
            continue;
        if (cli_is_help(argv[i])) {
            fputs(stats_help, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage("stats: unknown option %s", argv[i]);
        } else if (!stream) {
            stream = argv[i];
        } else {
            return cli_usage("stats: unexpected argument %s", argv[i]);
        }
    }
    snnc *c = dial(&co, NULL);
    if (!c)
        return CLI_FAIL;
    Snnd__V1__Envelope *e = NULL;
    uint32_t id;
    if (snnc_stats(c, stream, &id) < 0 || snnc_wait_reply(c, id, REPLY_TIMEOUT_MS, &e, NULL, NULL) < 0) {
        cli_fail("stats%s%s: %s", stream ? " " : "", stream ? stream : "", snnc_error(c));
        snnc_envelope_free(e);
        snnc_free(c);
        return CLI_FAIL;
    }
    if (e->msg_case != SNND__V1__ENVELOPE__MSG_STATS) {
        cli_fail("stats: unexpected reply %s", snnc_msg_name(e->msg_case));
        snnc_envelope_free(e);
        snnc_free(c);
        return CLI_FAIL;
    }
    const Snnd__V1__Stats *s = e->stats;
    const Snnd__V1__ServerStats *sv = s->server;
    if (as_json) {
        json_t *root = json_object(), *arr = json_array();
        if (sv)
            json_object_set_new(
                root, "server",
                json_pack("{s:f,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:i,s:I,s:I,s:I}", "uptime_s",
                          sv->uptime_s, "connections", (int)sv->connections, "streams",
                          (int)sv->streams, "frames_in", (json_int_t)sv->frames_in, "frames_out",
                          (json_int_t)sv->frames_out, "bytes_in", (json_int_t)sv->bytes_in,
                          "bytes_out", (json_int_t)sv->bytes_out, "steps", (json_int_t)sv->steps,
                          "predictions_sent", (json_int_t)sv->predictions_sent,
                          "subscribers_dropped", (json_int_t)sv->subscribers_dropped,
                          "errors_sent", (json_int_t)sv->errors_sent, "workers", (int)sv->workers,
                          "queued_steps", (int)sv->queued_steps, "rss_bytes",
                          (json_int_t)sv->rss_bytes, "batches_inline", (json_int_t)sv->batches_inline,
                          "batches_workers", (json_int_t)sv->batches_workers));
        for (size_t i = 0; i < s->n_streams; i++)
            json_array_append_new(arr, stream_json(s->streams[i]));
        json_object_set_new(root, "streams", arr);
        json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(root);
    } else {
        if (sv)
            printf("server: up %.1f s, %u connections, %u streams, %u workers, %llu steps, "
                   "%llu predictions sent, %llu frames in, %llu frames out, %llu errors sent, "
                   "%llu subscribers dropped, rss %.1f MiB, batches %llu on the loop and %llu on the "
                   "workers\n",
                   sv->uptime_s, sv->connections, sv->streams, sv->workers,
                   (unsigned long long)sv->steps, (unsigned long long)sv->predictions_sent,
                   (unsigned long long)sv->frames_in, (unsigned long long)sv->frames_out,
                   (unsigned long long)sv->errors_sent, (unsigned long long)sv->subscribers_dropped,
                   (double)sv->rss_bytes / 1048576.0, (unsigned long long)sv->batches_inline,
                   (unsigned long long)sv->batches_workers);
        if (s->n_streams > 0)
            printf("%-20s %-28s %10s %10s %4s %8s %8s %10s %10s %9s %12s\n", "STREAM", "MODEL",
                   "STEPS", "EVENTS", "SUBS", "CONN_SP", "ACT_SP", "MACS/STEP", "ACS/STEP",
                   "STEP_US", "LAST_T");
        for (size_t i = 0; i < s->n_streams; i++) {
            const Snnd__V1__StreamStats *t = s->streams[i];
            printf("%-20s %-28s %10llu %10llu %4u %8.4f %8.4f %10.1f %10.1f %9.2f %12.6f\n",
                   t->stream_id, t->model, (unsigned long long)t->steps,
                   (unsigned long long)t->events, t->subscribers, t->connection_sparsity,
                   t->activation_sparsity, t->effective_macs_per_step, t->effective_acs_per_step,
                   t->mean_step_us, (double)t->last_t_us / 1e6);
        }
    }
    snnc_envelope_free(e);
    snnc_free(c);
    return CLI_OK;
}

/* ---- models ------------------------------------------------------------------ */

static const char *const models_help =
    "usage: snn models [--json] [--socket PATH | --host H --port P]\n"
    "\n"
    "Lists the models the server serves (from its Welcome).\n" CONN_HELP;

int cmd_models(int argc, char **argv)
{
    conn_opts co = {0};
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        int k = conn_opt(&co, argc, argv, &i);
        if (k < 0)
            return k == -2 ? CLI_USAGE : cli_usage("models: %s needs a value", argv[i]);
        if (k > 0)
            continue;
        if (cli_is_help(argv[i])) {
            fputs(models_help, stdout);
            return CLI_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            as_json = 1;
        } else {
            return cli_usage("models: %s %s", argv[i][0] == '-' ? "unknown option" : "unexpected argument",
                             argv[i]);
        }
    }
    const Snnd__V1__Welcome *w = NULL;
    snnc *c = dial(&co, &w);
    if (!c)
        return CLI_FAIL;
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < w->n_models; i++) {
            const Snnd__V1__ModelInfo *m = w->models[i];
            json_t *outs = json_array(), *labels = json_array();
            for (size_t j = 0; j < m->n_output_names; j++)
                json_array_append_new(outs, json_string(m->output_names[j]));
            for (size_t j = 0; j < m->n_labels; j++)
                json_array_append_new(labels, json_string(m->labels[j]));
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:i,s:i,s:o,s:s,s:f,s:I,s:o}", "name", m->name, "kind",
                               m->kind, "n_inputs", (int)m->n_inputs, "n_outputs",
                               (int)m->n_outputs, "output_names", outs, "input_kind",
                               m->input_kind, "dt", m->dt, "footprint_bytes",
                               (json_int_t)m->footprint_bytes, "labels", labels));
        }
        json_dumpf(arr, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(arr);
    } else {
        printf("server %s, protocol %u, %zu models\n", w->server_version, w->protocol_version,
               w->n_models);
        if (w->n_models)
            printf("%-32s %-6s %6s %7s %-8s %9s %12s  %s\n", "NAME", "KIND", "INPUTS", "OUTPUTS",
                   "INPUT", "DT_MS", "FOOTPRINT", "OUTPUT NAMES");
        for (size_t i = 0; i < w->n_models; i++) {
            const Snnd__V1__ModelInfo *m = w->models[i];
            printf("%-32s %-6s %6u %7u %-8s %9.3f %12llu  ", m->name, m->kind, m->n_inputs,
                   m->n_outputs, m->input_kind, m->dt * 1e3, (unsigned long long)m->footprint_bytes);
            for (size_t j = 0; j < m->n_output_names && j < 8; j++)
                printf("%s%s", j ? "," : "", m->output_names[j]);
            if (m->n_output_names > 8)
                printf(",...");
            putchar('\n');
        }
    }
    snnc_free(c);
    return CLI_OK;
}

/* ---- model save ---------------------------------------------------------------- */

static const char *const save_help =
    "usage: snn model save STREAM NAME [--socket PATH | --host H --port P]\n"
    "\n"
    "Writes the learned weights of a learning stream (opened with option learn=eprop)\n"
    "as model NAME in the server's model directory, atomically (temporary file, fsync,\n"
    "rename). Any stream can then open NAME. Prints the path written.\n" CONN_HELP;

int cmd_model_save(int argc, char **argv)
{
    conn_opts co = {0};
    const char *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        int k = conn_opt(&co, argc, argv, &i);
        if (k < 0)
            return k == -2 ? CLI_USAGE : cli_usage("model save: %s needs a value", argv[i]);
        if (k > 0)
            continue;
        if (cli_is_help(argv[i])) {
            fputs(save_help, stdout);
            return CLI_OK;
        }
        if (argv[i][0] == '-' || npos == 2)
            return cli_usage("model save: %s %s", argv[i][0] == '-' ? "unknown option" : "unexpected argument",
                             argv[i]);
        pos[npos++] = argv[i];
    }
    if (npos != 2)
        return cli_usage("model save: expected STREAM NAME");
    snnc *c = dial(&co, NULL);
    if (!c)
        return CLI_FAIL;
    Snnd__V1__SaveModel sm = SNND__V1__SAVE_MODEL__INIT;
    sm.stream_id = (char *)pos[0];
    sm.name = (char *)pos[1];
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SAVE_MODEL;
    env.save_model = &sm;
    uint32_t id = 0;
    Snnd__V1__Envelope *reply = NULL;
    int rc = snnc_send(c, &env, &id);
    if (rc == 0)
        rc = snnc_wait_reply(c, id, 60000, &reply, NULL, NULL);
    if (rc < 0) {
        fprintf(stderr, "snn: model save %s %s: %s\n", pos[0], pos[1], snnc_error(c));
        snnc_envelope_free(reply);
        snnc_free(c);
        return CLI_FAIL;
    }
    int status = CLI_OK;
    if (reply->msg_case == SNND__V1__ENVELOPE__MSG_MODEL_SAVED)
        printf("%s\n", reply->model_saved->path);
    else
        status = cli_fail("model save %s %s: unexpected reply %s", pos[0], pos[1],
                          snnc_msg_name(reply->msg_case));
    snnc_envelope_free(reply);
    snnc_free(c);
    return status;
}
