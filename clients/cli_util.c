/*
 * cli_util.c -- helpers shared by the `snn` subcommands (see cli.h).
 */
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "session.h"

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("snn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("snn: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return CLI_USAGE;
}

int cli_is_help(const char *arg) { return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0; }

int cli_parse_u64(const char *arg, uint64_t max, uint64_t *v)
{
    if (!arg || arg[0] < '0' || arg[0] > '9')
        return -1;
    uint64_t x = 0;
    for (const char *p = arg; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (x > (max - d) / 10)
            return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

const char *cli_address(const char *sock, const char *host, const char *port, char *buf,
                        size_t len)
{
    if (sock) {
        snprintf(buf, len, "unix:%s", sock);
    } else if (host || port) {
        const char *h = host ? host : "127.0.0.1";
        int v6 = strchr(h, ':') != NULL && h[0] != '[';
        snprintf(buf, len, "tcp:%s%s%s:%s", v6 ? "[" : "", h, v6 ? "]" : "", port ? port : "7878");
    } else if (getenv("SNN_SOCKET") && getenv("SNN_SOCKET")[0]) {
        const char *s = getenv("SNN_SOCKET");
        if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "tcp:", 4) == 0)
            snprintf(buf, len, "%s", s);
        else
            snprintf(buf, len, "unix:%s", s);
    } else {
        const char *dir = getenv("XDG_RUNTIME_DIR");
        char path[1024];
        snprintf(path, sizeof path, "%s/snnd.sock", dir && dir[0] ? dir : "/tmp");
        struct stat st;
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            snprintf(buf, len, "unix:%s", path);
        else
            snprintf(buf, len, "tcp:127.0.0.1:7878");
    }
    return buf;
}

uint64_t cli_t_us(double t_s) { return (uint64_t)llround(t_s * 1e6); }

long feed_plan_csv(const snn_csv *csv, int kind, uint32_t bin_us, feed_op **ops, char *err,
                   size_t errlen)
{
    *ops = NULL;
    int frames = kind == SNN_INPUT_TACTILE || kind == SNN_INPUT_ANALOG;
    if (!frames && kind != SNN_INPUT_SPIKES && kind != SNN_INPUT_BINNED) {
        snprintf(err, errlen, "a CSV input feeds spikes, binned, tactile or analog streams, not %s",
                 snn_input_kind_name((snn_input_kind)kind));
        return -1;
    }
    feed_op *o = calloc(csv->n_rows ? csv->n_rows : 1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory for %zu rows", csv->n_rows);
        return -1;
    }
    long n = 0;
    for (size_t r = 0; r < csv->n_rows; r++) {
        if (csv->has_t && !(csv->t[r] * 1e6 < 0x1p62)) { /* a session takes t_us up to INT64_MAX / 2 */
            free(o);
            snprintf(err, errlen, "data row %zu: t = %g s is beyond the latest time a stream takes (%.0f s)",
                     r + 1, csv->t[r], 0x1p62 / 1e6);
            return -1;
        }
        uint64_t t = csv->has_t ? cli_t_us(csv->t[r]) : (uint64_t)r * bin_us;
        if (r > 0 && csv->has_t && csv->t[r] < csv->t[r - 1]) {
            free(o);
            snprintf(err, errlen, "data row %zu: t = %g goes backwards (previous row: %g)", r + 1,
                     csv->t[r], csv->t[r - 1]);
            return -1;
        }
        if (frames) {
            o[n++] = (feed_op){FEED_FRAME, r, 1, t};
            continue;
        }
        /* Bins: extend the open batch while rows are consecutive. */
        if (n > 0) {
            feed_op *b = &o[n - 1];
            int consecutive = !csv->has_t || t == b->t_us + (uint64_t)b->n * bin_us;
            if (consecutive && b->n < FEED_BINS_PER_MSG) {
                b->n++;
                continue;
            }
        }
        /* Without a t column, batches after the first continue implicitly. */
        o[n++] = (feed_op){FEED_BINNED, r, 1, csv->has_t ? t : 0};
        if (!csv->has_t)
            o[n - 1].t_us = 0;
    }
    *ops = o;
    return n;
}

int cli_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cli_read_wav(const char *path, snn_wav *w)
{
    snn_err err = {{0}};
    if (cli_is_dir(path)) { /* snn_wav_read would call it out of memory */
        memset(w, 0, sizeof *w);
        cli_fail("%s: %s", path, strerror(EISDIR));
        return -1;
    }
    int rc = snn_wav_read(path, NULL, w, &err);
    if (rc < 0) {
        cli_fail("%s", err.msg[0] ? err.msg : snn_strerror(rc));
        return -1;
    }
    if (w->n == 0) {
        snn_wav_free(w);
        cli_fail("%s: no samples (an empty clip has nothing to score)", path);
        return -1;
    }
    return 0;
}

int cli_is_audio_path(const char *path)
{
    static const char *const ext[] = {".wav", ".w64", ".rf64"};
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcasecmp(path + n - k, ext[i]) == 0)
            return 1;
    }
    return 0;
}

long feed_plan_audio(size_t n, feed_op **ops)
{
    size_t k = (n + FEED_AUDIO_SAMPLES - 1) / FEED_AUDIO_SAMPLES;
    feed_op *o = calloc(k ? k : 1, sizeof *o);
    if (!o)
        return -1;
    for (size_t i = 0; i < k; i++) {
        size_t first = i * FEED_AUDIO_SAMPLES;
        o[i] = (feed_op){FEED_AUDIO, first, n - first < FEED_AUDIO_SAMPLES ? n - first : FEED_AUDIO_SAMPLES, 0};
    }
    *ops = o;
    return (long)k;
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A float as JSON: %.9g, and null for what JSON cannot hold. */
static void json_float(FILE *f, float v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", (double)v);
    else
        fputs("null", f);
}

static void out_header(out_writer *w)
{
    if (w->header_done)
        return;
    fputs("step,t", w->f);
    for (uint32_t i = 0; i < w->n_out; i++)
        fprintf(w->f, ",%s", w->names && w->names[i] ? w->names[i] : "y");
    fputc('\n', w->f);
    w->header_done = 1;
}

void out_prediction(out_writer *w, uint64_t step, uint64_t t_us, const float *v, uint32_t n)
{
    if (w->decisions_only)
        return;
    cli_progress_clear(w->pg);
    out_header(w);
    fprintf(w->f, "%llu,%.6f", (unsigned long long)step, (double)t_us / 1e6);
    for (uint32_t i = 0; i < n; i++)
        fprintf(w->f, ",%.9g", (double)v[i]);
    fputc('\n', w->f);
    w->rows++;
}

void out_decision(out_writer *w, const char *label, int32_t index, const float *v, uint32_t n,
                  const char *const *names)
{
    if (!w->decisions_only)
        return;
    cli_progress_clear(w->pg);
    if ((label && label[0]) || index >= 0) {
        fputs("{\"label\":", w->f);
        cli_json_string(w->f, label ? label : "");
        fprintf(w->f, ",\"index\":%d,\"scores\":[", (int)index);
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                fputc(',', w->f);
            json_float(w->f, v[i]);
        }
        fputs("]}\n", w->f);
    } else {
        if (!names)
            names = w->names;
        fputc('{', w->f);
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                fputc(',', w->f);
            char fallback[24];
            snprintf(fallback, sizeof fallback, "y%u", i);
            cli_json_string(w->f, names && names[i] ? names[i] : fallback);
            fputc(':', w->f);
            json_float(w->f, v[i]);
        }
        fputs("}\n", w->f);
    }
    w->decisions++;
}

void out_finish(out_writer *w)
{
    if (!w->decisions_only)
        out_header(w);
    fflush(w->f);
}
