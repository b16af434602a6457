#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "framing.h"

static int last_eof;
int itest_last_eof(void) { return last_eof; }

int itest_start(itest_daemon *d, const char *models_dir, const char *const *extra)
{
    static int seq;
    const char *build = getenv("SNN_BUILD_ROOT");
    char bin[512];
    snprintf(bin, sizeof bin, "%s/server/snnd", build ? build : "build");
    snprintf(d->sock, sizeof d->sock, "/tmp/snnd-itest-%ld-%d.sock", (long)getpid(), seq);
    snprintf(d->log, sizeof d->log, "/tmp/snnd-itest-%ld-%d.log", (long)getpid(), seq++);
    char listen[300];
    snprintf(listen, sizeof listen, "unix:%s", d->sock);
    const char *argv[32] = {bin, "--listen", listen, "--models", models_dir, "--log-level", "debug"};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    /* SNN_ITEST_ARGS: more options for every daemon of the run (one word each), e.g. to run a
     * test binary again with "--inline-step-us 0" */
    static char more[256];
    const char *env = getenv("SNN_ITEST_ARGS");
    if (env && snprintf(more, sizeof more, "%s", env) >= (int)sizeof more) {
        fprintf(stderr, "SNN_ITEST_ARGS is longer than %zu bytes\n", sizeof more - 1);
        return -1;
    }
    if (env)
        for (char *w = strtok(more, " "); w && n < 31; w = strtok(NULL, " "))
            argv[n++] = w;
    argv[n] = NULL;
    d->pid = fork();
    if (d->pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* up to 10 s (model loading) */
        int fd = itest_connect(d);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            fprintf(stderr, "snnd exited early; log %s\n", d->log);
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

int itest_stop(itest_daemon *d, int sig)
{
    kill(d->pid, sig);
    int st;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(d->pid, &st, WNOHANG) == d->pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, &st, 0);
    return -1;
}

int itest_connect(const itest_daemon *d)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", d->sock);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int itest_send_raw(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int itest_send(int fd, const Snnd__V1__Envelope *env)
{
    size_t n = snnd__v1__envelope__get_packed_size(env);
    uint8_t *b = malloc(n + 5);
    size_t k = snn_varint_put(b, (uint32_t)n);
    snnd__v1__envelope__pack(env, b + k);
    int rc = itest_send_raw(fd, b, k + n);
    free(b);
    return rc;
}

/* Per-fd receive buffers (tests use few fds). */
static snn_framer framers[256];
static int framer_init[256];

Snnd__V1__Envelope *itest_recv(int fd, int timeout_ms)
{
    last_eof = 0;
    if (fd < 0 || fd >= 256)
        return NULL;
    snn_framer *f = &framers[fd];
    if (!framer_init[fd]) {
        snn_framer_init(f, 64u << 20);
        framer_init[fd] = 1;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        const uint8_t *frame;
        size_t len;
        if (snn_framer_next(f, &frame, &len) == SNN_FRAME_OK)
            return snnd__v1__envelope__unpack(NULL, len, frame);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int left = timeout_ms - (int)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            return NULL;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        uint8_t buf[65536];
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) {
            last_eof = 1;
            return NULL;
        }
        snn_framer_feed(f, buf, (size_t)r);
    }
}

Snnd__V1__Envelope *itest_expect(int fd, int msg_case, int timeout_ms)
{
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(fd, timeout_ms);
        if (!e || (int)e->msg_case == msg_case)
            return e;
        snnd__v1__envelope__free_unpacked(e, NULL);
    }
}

int itest_open(int fd, uint32_t id, const char *stream, const char *model, int subscribe)
{
    return itest_open_kind(fd, id, stream, model, 0, subscribe);
}

int itest_open_kind(int fd, uint32_t id, const char *stream, const char *model, int kind, int subscribe)
{
    Snnd__V1__OpenStream o = SNND__V1__OPEN_STREAM__INIT;
    o.stream_id = (char *)stream;
    o.model = (char *)model;
    o.input_kind = (Snnd__V1__InputKind)kind;
    o.subscribe = subscribe;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_OPEN_STREAM;
    env.open_stream = &o;
    return itest_send(fd, &env);
}

int itest_binned(int fd, const char *stream, const float *counts, uint32_t n_ch, size_t n_bins)
{
    Snnd__V1__BinnedCounts b = SNND__V1__BINNED_COUNTS__INIT;
    b.stream_id = (char *)stream;
    b.n_channels = n_ch;
    b.n_counts = n_ch * n_bins;
    b.counts = (float *)counts;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_BINNED_COUNTS;
    env.binned_counts = &b;
    return itest_send(fd, &env);
}

int itest_close_stream(int fd, uint32_t id, const char *stream)
{
    Snnd__V1__CloseStream c = SNND__V1__CLOSE_STREAM__INIT;
    c.stream_id = (char *)stream;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_CLOSE_STREAM;
    env.close_stream = &c;
    return itest_send(fd, &env);
}

int itest_subscribe(int fd, uint32_t id, const char *stream)
{
    Snnd__V1__Subscribe s = SNND__V1__SUBSCRIBE__INIT;
    s.stream_id = (char *)stream;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_SUBSCRIBE;
    env.subscribe = &s;
    return itest_send(fd, &env);
}

/* ---- helpers for fault tests ---------------------------------------------- */

void itest_close(int fd)
{
    if (fd >= 0 && fd < 256 && framer_init[fd]) {
        snn_framer_free(&framers[fd]);
        framer_init[fd] = 0;
    }
    if (fd >= 0)
        close(fd);
}

Snnd__V1__Envelope *itest_stats(int fd, uint32_t id, const char *stream, int timeout_ms)
{
    Snnd__V1__StatsRequest r = SNND__V1__STATS_REQUEST__INIT;
    r.stream_id = (char *)(stream ? stream : "");
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.id = id;
    env.msg_case = SNND__V1__ENVELOPE__MSG_STATS_REQUEST;
    env.stats_request = &r;
    if (itest_send(fd, &env) < 0)
        return NULL;
    for (;;) {
        Snnd__V1__Envelope *e = itest_recv(fd, timeout_ms);
        if (!e)
            return NULL;
        if (e->msg_case == SNND__V1__ENVELOPE__MSG_STATS && e->id == id)
            return e;
        int err = e->msg_case == SNND__V1__ENVELOPE__MSG_ERROR && e->id == id;
        snnd__v1__envelope__free_unpacked(e, NULL);
        if (err)
            return NULL;
    }
}

long itest_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int itest_copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return -1;
    }
    char buf[65536];
    ssize_t r;
    int rc = 0;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)r) != r) {
            rc = -1;
            break;
        }
    if (r < 0)
        rc = -1;
    close(in);
    if (close(out) < 0)
        rc = -1;
    return rc;
}

int itest_write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int itest_mkdtemp(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/snnd-itest-%ld-%s-XXXXXX", (long)getpid(), tag);
    return mkdtemp(buf) ? 0 : -1;
}

void itest_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        char p[1024];
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}
