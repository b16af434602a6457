/*
 * cmd_dnsmos.c -- `snn dnsmos`: the clip scores of a set of recordings in the CSV that
 * Microsoft's dnsmos_local.py writes (one row per clip), from a P.835 and a P.808 model run
 * offline through the same sessions as `snn model run`.
 */
#include "cli.h"
#include "progress.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "dnsmos.h"
#include "model.h"
#include "session.h"
#include "wav.h"

static const char *const dnsmos_help =
    "usage: snn dnsmos PATH... [--p835 MODEL] [--p808 MODEL | --p808 none] [--models DIR]\n"
    "                  [--out FILE] [--jobs N] [--progress | --no-progress]\n"
    "\n"
    "Scores every clip among PATH (.wav files, or directories: the .wav files in them, not\n"
    "recursing, in name order) as Microsoft's dnsmos_local.py does, and prints its CSV, one\n"
    "row per clip:\n"
    "  filename,len_in_sec,sr,num_hops,OVRL_raw,SIG_raw,BAK_raw,OVRL,SIG,BAK,P808_MOS\n"
    "The scores are the clip's means over the 9.01 s windows dnsmos_local.py scores (short\n"
    "clips tiled; `snn model run MODEL CLIP --decision` gives the same numbers); sr is 16000,\n"
    "the rate the models run at; len_in_sec the clip's length at that rate; num_hops\n"
    "dnsmos_local.py's count of windows (some of which it skips: README). A clip that cannot\n"
    "be read or scored is reported on stderr and left out, and the exit status is then 1.\n"
    "\n"
    "  --p835 MODEL   the P.835 model: dnsmos-p835 (default), dnsmos-bam, or a pDNSMOS\n"
    "                 file (personalized scores, chosen by its name as dnsmos_local.py -p)\n"
    "  --p808 MODEL   the P.808 model (default dnsmos-p808); none leaves P808_MOS out\n"
    "  --models DIR   where model names are looked up (as model run)\n"
    "  --out FILE     write to FILE instead of stdout\n"
    "  --jobs N       clips scored at once, one thread each (default: the CPUs this process\n"
    "                 may use); rows come out in clip order whatever N is\n"
    "  --progress, --no-progress: as model run (counted in clips)\n";

/* The clip names given: files as they are, directories as their *.wav files. */
typedef struct clip_list {
    char **path;
    size_t n, cap;
} clip_list;

static int list_add(clip_list *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->path, cap * sizeof *p);
        if (!p)
            return -1;
        l->path = p;
        l->cap = cap;
    }
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(len);
    if (!s)
        return -1;
    if (dir)
        snprintf(s, len, "%s/%s", dir, name);
    else
        snprintf(s, len, "%s", name);
    l->path[l->n++] = s;
    return 0;
}

static void list_free(clip_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l->path);
}

static int is_wav_name(const struct dirent *d)
{
    return d->d_name[0] != '.' && cli_is_audio_path(d->d_name);
}

/* Adds path (a file, or a directory's .wav files in name order). Returns 0, or -1 after
 * reporting why. */
static int list_path(clip_list *l, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        cli_fail("%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (list_add(l, NULL, path) < 0)
            return cli_fail("out of memory"), -1;
        return 0;
    }
    struct dirent **ents = NULL;
    int n = scandir(path, &ents, is_wav_name, alphasort), rc = 0;
    if (n < 0) {
        cli_fail("%s: %s", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = list_add(l, path, ents[i]->d_name);
        free(ents[i]);
    }
    free(ents);
    if (rc < 0)
        return cli_fail("out of memory"), -1;
    if (n == 0)
        fprintf(stderr, "snn: %s: no .wav files\n", path);
    return 0;
}

typedef struct decided {
    float v[8];
    uint32_t n;
    int have;
} decided;

static void keep_decision(void *ctx, const snn_output *o)
{
    decided *d = ctx;
    if (o->type != SNN_OUT_DECISION)
        return;
    d->n = o->n < 8 ? o->n : 8;
    memcpy(d->v, o->values, d->n * sizeof(float));
    d->have = 1;
}

/* Runs audio model m over the clip and puts its decision (the clip's mean scores) in d.
 * Returns 0, or -1 with msg set. */
static int score(const snn_model *m, const snn_wav *w, const feed_op *ops, long n_ops, decided *d,
                 char *msg, size_t len)
{
    snn_session *s = NULL;
    snn_err err = {{0}};
    snn_session_cfg cfg = {.input = SNN_INPUT_AUDIO};
    memset(d, 0, sizeof *d);
    int rc = snn_session_new(m, &cfg, NULL, &s, &err);
    for (long i = 0; i < n_ops && rc >= 0; i++)
        rc = snn_session_audio(s, w->x + ops[i].first, ops[i].n, w->sample_rate, keep_decision, d, &err);
    if (rc >= 0)
        rc = snn_session_finish(s, keep_decision, d, &err);
    snn_session_free(s);
    if (rc < 0) {
        snprintf(msg, len, "%s: %s", m->name, err.msg[0] ? err.msg : snn_strerror(rc));
        return -1;
    }
    if (!d->have) {
        snprintf(msg, len, "%s: no score", m->name);
        return -1;
    }
    return 0;
}

/* Checks that m takes audio and gives `outs` outputs (6: a P.835 model, 1: P.808). */
static int check_model(const snn_model *m, const char *opt, uint32_t outs)
{
    snn_session *s = NULL;
    snn_err err = {{0}};
    snn_session_cfg cfg = {.input = SNN_INPUT_AUDIO};
    int rc = snn_session_new(m, &cfg, NULL, &s, &err);
    snn_session_free(s);
    if (rc < 0)
        return cli_usage("dnsmos: %s %s: %s", opt, m->name, err.msg[0] ? err.msg : snn_strerror(rc));
    if (m->n_out != outs)
        return cli_usage("dnsmos: %s %s: %u outputs, a %s model has %u", opt, m->name, m->n_out,
                         outs == 6 ? "P.835" : "P.808", outs);
    return 0;
}

/* What a job found for one clip. */
typedef struct clip_result {
    int ready, failed;
    char msg[512];   /* failed: why */
    size_t n16;      /* the clip's length at 16 kHz */
    decided a, b;    /* P.835's and P.808's decisions */
} clip_result;

/* Clips are handed out in order to up to JOBS_MAX threads; each has its own sessions on the
 * shared (read-only) models. */
#define JOBS_MAX 64
typedef struct job_pool {
    const snn_model *m835, *m808;
    const clip_list *clips;
    clip_result *res;
    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    size_t next, n_done;
} job_pool;

/* Scores one clip into r (no output: the main thread prints in order). */
static void score_clip(const job_pool *jp, const char *path, clip_result *r)
{
    snn_wav w = {0};
    snn_err err = {{0}};
    feed_op *ops = NULL;
    if (cli_is_dir(path)) { /* a directory named *.wav: snn_wav_read would call it out of memory */
        snprintf(r->msg, sizeof r->msg, "%s", strerror(EISDIR));
        r->failed = 1;
        return;
    }
    int rc = snn_wav_read(path, NULL, &w, &err);
    if (rc < 0) { /* the reader's message names the file */
        snprintf(r->msg, sizeof r->msg, "%s",
                 err.msg[0] && strncmp(err.msg, path, strlen(path)) == 0 ? err.msg + strlen(path) + 2
                 : err.msg[0]                                           ? err.msg
                                                                        : snn_strerror(rc));
        r->failed = 1;
        return;
    }
    long n_ops = w.n ? feed_plan_audio(w.n, &ops) : 0;
    if (w.n == 0)
        snprintf(r->msg, sizeof r->msg, "no samples (an empty clip has nothing to score)");
    else if (n_ops < 0)
        snprintf(r->msg, sizeof r->msg, "out of memory");
    r->failed = w.n == 0 || n_ops < 0 || score(jp->m835, &w, ops, n_ops, &r->a, r->msg, sizeof r->msg) < 0 ||
                (jp->m808 && score(jp->m808, &w, ops, n_ops, &r->b, r->msg, sizeof r->msg) < 0);
    /* what the resampler gives, to within a sample */
    r->n16 = w.sample_rate == SNN_DNSMOS_SR ? w.n : (size_t)llround((double)w.n * SNN_DNSMOS_SR / w.sample_rate);
    free(ops);
    snn_wav_free(&w);
}

static void *job_main(void *arg)
{
    job_pool *jp = arg;
    for (;;) {
        pthread_mutex_lock(&jp->mu);
        size_t i = jp->next < jp->clips->n ? jp->next++ : SIZE_MAX;
        pthread_mutex_unlock(&jp->mu);
        if (i == SIZE_MAX)
            return NULL;
        clip_result r = {0};
        score_clip(jp, jp->clips->path[i], &r);
        pthread_mutex_lock(&jp->mu);
        jp->res[i] = r;
        jp->res[i].ready = 1;
        jp->n_done++;
        pthread_cond_broadcast(&jp->done_cv);
        pthread_mutex_unlock(&jp->mu);
    }
}

/* The CPUs this process may run on (sched_getaffinity), at least 1, at most JOBS_MAX. */
static uint64_t default_jobs(void)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > JOBS_MAX ? JOBS_MAX : (uint64_t)n;
}

int cmd_dnsmos(int argc, char **argv)
{
    const char *p835 = "dnsmos-p835", *p808 = "dnsmos-p808", *dir = NULL, *out = NULL;
    progress_mode progress = PROGRESS_AUTO;
    uint64_t jobs = default_jobs();
    clip_list clips = {0};
    int status = CLI_FAIL, n_paths = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(dnsmos_help, stdout);
            list_free(&clips);
            return CLI_OK;
        } else if (!strcmp(a, "--progress") || !strcmp(a, "--no-progress")) {
            progress = a[2] == 'p' ? PROGRESS_ON : PROGRESS_OFF;
        } else if (!strcmp(a, "--p835") || !strcmp(a, "--p808") || !strcmp(a, "--models") ||
                   !strcmp(a, "--out") || !strcmp(a, "--jobs")) {
            if (++i == argc) {
                list_free(&clips);
                return cli_usage("dnsmos: %s needs a value", a);
            }
            if (!strcmp(a, "--p835"))
                p835 = argv[i];
            else if (!strcmp(a, "--p808"))
                p808 = strcmp(argv[i], "none") == 0 ? NULL : argv[i];
            else if (!strcmp(a, "--models"))
                dir = argv[i];
            else if (!strcmp(a, "--jobs")) {
                if (cli_parse_u64(argv[i], JOBS_MAX, &jobs) < 0 || jobs == 0) {
                    list_free(&clips);
                    return cli_usage("dnsmos: --jobs %s: expected 1 to %d", argv[i], JOBS_MAX);
                }
            }
            else
                out = argv[i];
        } else if (a[0] == '-' && a[1]) {
            list_free(&clips);
            return cli_usage("dnsmos: unknown option %s", a);
        } else if (n_paths++, list_path(&clips, a) < 0) {
            list_free(&clips);
            return CLI_FAIL;
        }
    }
    if (n_paths == 0)
        return cli_usage("dnsmos: expected PATH... (.wav files or directories)");
    if (clips.n == 0) {
        list_free(&clips);
        return cli_fail("dnsmos: no clips to score");
    }
    for (size_t i = 0; out && i < clips.n; i++)
        if (cli_same_file(out, clips.path[i])) {
            cli_usage("dnsmos: --out %s is the clip %s: it would be overwritten", out, clips.path[i]);
            list_free(&clips);
            return CLI_USAGE;
        }
    snn_model *m835 = cli_load_model(p835, dir), *m808 = NULL;
    FILE *f = NULL;
    if (!m835 || (p808 && !(m808 = cli_load_model(p808, dir))))
        goto done;
    if (check_model(m835, "--p835", 6) || (m808 && check_model(m808, "--p808", 1))) {
        status = CLI_USAGE; /* check_model said why, as a command line mistake */
        goto done;
    }
    f = out ? fopen(out, "w") : stdout;
    if (!f) {
        cli_fail("--out %s: %s", out, strerror(errno));
        goto done;
    }
    fprintf(f, "filename,len_in_sec,sr,num_hops,OVRL_raw,SIG_raw,BAK_raw,OVRL,SIG,BAK%s\n",
            m808 ? ",P808_MOS" : "");
    cli_progress pg;
    cli_progress_start(&pg, progress, "the clips", (double)clips.n, "clips");
    job_pool jp = {.m835 = m835, .m808 = m808, .clips = &clips};
    jp.res = calloc(clips.n, sizeof *jp.res);
    if (!jp.res) {
        cli_fail("out of memory");
        goto done;
    }
    pthread_mutex_init(&jp.mu, NULL);
    pthread_cond_init(&jp.done_cv, NULL);
    pthread_t th[JOBS_MAX];
    int started = 0;
    for (; started < (int)jobs && (size_t)started < clips.n; started++)
        if (pthread_create(&th[started], NULL, job_main, &jp) != 0)
            break;
    if (started == 0)
        job_main(&jp); /* no thread: score them here */
    size_t failed = 0;
    for (size_t i = 0; i < clips.n; i++) { /* in clip order, as each is ready */
        pthread_mutex_lock(&jp.mu);
        while (!jp.res[i].ready) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 200000000;
            if (t.tv_nsec >= 1000000000) {
                t.tv_sec++;
                t.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&jp.done_cv, &jp.mu, &t);
            size_t d = jp.n_done;
            pthread_mutex_unlock(&jp.mu);
            cli_progress_update(&pg, (double)d);
            pthread_mutex_lock(&jp.mu);
        }
        pthread_mutex_unlock(&jp.mu);
        clip_result *r = &jp.res[i];
        if (r->failed) {
            cli_progress_erase(&pg);
            cli_fail("%s: %s", clips.path[i], r->msg);
            failed++;
            continue;
        }
        cli_progress_clear(&pg);
        fputs(clips.path[i], f);
        fprintf(f, ",%.9g,%d,%ld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g", (double)r->n16 / SNN_DNSMOS_SR,
                SNN_DNSMOS_SR, (long)snn_dnsmos_local_hops(r->n16), r->a.v[5], r->a.v[3], r->a.v[4], r->a.v[2], r->a.v[0],
                r->a.v[1]);
        if (m808)
            fprintf(f, ",%.9g", r->b.v[0]);
        fputc('\n', f);
    }
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    pthread_cond_destroy(&jp.done_cv);
    pthread_mutex_destroy(&jp.mu);
    free(jp.res);
    cli_progress_end(&pg);
    fflush(f);
    if (ferror(f)) {
        cli_fail("%s: write error", out ? out : "stdout");
        goto done;
    }
    if (failed)
        cli_fail("%zu of %zu clips not scored (above)", failed, clips.n);
    else
        status = CLI_OK;
done:
    if (f && f != stdout && fclose(f) != 0 && status == CLI_OK)
        status = cli_fail("%s: %s", out, strerror(errno));
    snn_model_free(m835);
    snn_model_free(m808);
    list_free(&clips);
    return status;
}
