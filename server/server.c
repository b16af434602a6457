/*
 * server.c -- listeners, signals, reload and orderly shutdown.
 */
#include <errno.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

static void on_signal(uv_signal_t *h, int signum);

static void on_out_async(uv_async_t *h)
{
    stream_drain_chunks(h->data);
}

double server_busy(server *s)
{
    uint64_t now = uv_hrtime();
    if (now - s->busy_t0 < 10000000u)
        return s->loop_busy;
    uint64_t idle = uv_metrics_idle_time(s->loop);
    double busy = 1.0 - (double)(idle - s->busy_idle0) / (double)(now - s->busy_t0);
    s->loop_busy = 0.7 * s->loop_busy + 0.3 * (busy < 0 ? 0 : busy);
    s->busy_t0 = now;
    s->busy_idle0 = idle;
    return s->loop_busy;
}

static void on_sched_check(uv_check_t *h)
{
    stream_submit_ready(h->data);
}



/* Loop timer: hands the heap pages that frees left behind back to the OS. Output buffers are
 * allocated on the worker threads and freed on the loop, so glibc's per-thread arenas keep
 * freed pages mapped; without this, resident memory under steady load drifts up for minutes
 * before it levels off. */
static void on_trim(uv_timer_t *t)
{
    (void)t;
    malloc_trim(0);
}

int server_init(server *s, uv_loop_t *loop, const snnd_config *cfg, const char *config_path)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->cfg = *cfg; /* takes over the strings */
    s->config_path = config_path;
    s->start_ms = now_ms();
    registry_init(&s->reg, cfg->models_dir);
    int n = registry_scan(&s->reg);
    log_info("model directory %s: %d models", cfg->models_dir, n);
    uv_signal_init(loop, &s->sig_int);
    uv_signal_init(loop, &s->sig_term);
    uv_signal_init(loop, &s->sig_hup);
    s->sig_int.data = s->sig_term.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
    uv_timer_init(loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    pthread_mutex_init(&s->outq_mu, NULL);
    s->outq_tail = &s->outq;
    uv_async_init(loop, &s->out_async, on_out_async);
    s->out_async.data = s;
    s->ready_tail = &s->ready;
    /* for server_busy(); where libuv cannot (before 1.39) the idle time stays 0, the loop reads
     * as fully busy and every batch goes to the workers, as before inline steps */
    uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
    s->busy_t0 = uv_hrtime();
    uv_check_init(loop, &s->sched_check);
    s->sched_check.data = s;
    uv_check_start(&s->sched_check, on_sched_check);
    uv_unref((uv_handle_t *)&s->sched_check);
    uv_idle_init(loop, &s->sched_idle);
    s->sched_idle.data = s;
    uv_timer_init(loop, &s->trim_timer);
    s->trim_timer.data = s;
    if (cfg->trim_interval_seconds > 0) {
        uint64_t ms = (uint64_t)(cfg->trim_interval_seconds * 1000);
        uv_timer_start(&s->trim_timer, on_trim, ms, ms);
    }
    uv_unref((uv_handle_t *)&s->trim_timer);
    return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *s = listener->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    conn_accept(s, listener);
}

static int listen_unix(server *s, const char *path)
{
    uv_pipe_t *p = calloc(1, sizeof *p);
    uv_pipe_init(s->loop, p, 0);
    p->data = s;
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
        unlink(path); /* a socket left by a previous run */
    int rc = uv_pipe_bind(p, path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)p, 511, on_connection);
    if (rc < 0) {
        log_error("listen unix:%s: %s", path, uv_strerror(rc));
        uv_close((uv_handle_t *)p, (uv_close_cb)free);
        return rc;
    }
    chmod(path, s->cfg.unix_mode);
    s->listeners[s->n_listeners++] = (uv_handle_t *)p;
    log_info("listen unix:%s (mode %04o)", path, s->cfg.unix_mode);
    return 0;
}

static int listen_tcp(server *s, const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    int port = atoi(colon + 1);
    struct sockaddr_storage ss;
    int rc;
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n > 2 && host[n - 1] == ']')
            host[n - 1] = 0;
        rc = uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)&ss);
    } else {
        if (!strcmp(host, "localhost"))
            snprintf(host, sizeof host, "127.0.0.1");
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    }
    if (rc < 0) {
        log_error("listen tcp:%s: bad address: %s", hostport, uv_strerror(rc));
        return rc;
    }
    uv_tcp_t *t = calloc(1, sizeof *t);
    uv_tcp_init(s->loop, t);
    t->data = s;
    rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, 511, on_connection);
    if (rc < 0) {
        log_error("listen tcp:%s: %s", hostport, uv_strerror(rc));
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    char name[64] = "?";
    uv_tcp_getsockname(t, (struct sockaddr *)&bound, &len);
    if (bound.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&bound, name, sizeof name);
    else
        uv_ip4_name((struct sockaddr_in *)&bound, name, sizeof name);
    int bport = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    s->listeners[s->n_listeners++] = (uv_handle_t *)t;
    log_info("listen tcp:%s%s%s:%d", bound.ss_family == AF_INET6 ? "[" : "", name,
             bound.ss_family == AF_INET6 ? "]" : "", bport);
    return 0;
}

int server_listen(server *s)
{
    for (int i = 0; i < s->cfg.n_listen; i++) {
        const char *a = s->cfg.listen[i];
        int rc = !strncmp(a, "unix:", 5) ? listen_unix(s, a + 5) : listen_tcp(s, a + 4);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void reload(server *s)
{
    if (s->config_path) {
        snnd_config c;
        snnd_config_defaults(&c);
        char err[512];
        if (snnd_config_load(&c, s->config_path, err, sizeof err) < 0) {
            log_error("SIGHUP: keeping the running configuration: %s", err);
            snnd_config_free(&c);
        } else {
            /* Listeners stay as they are; limits, log level and workers' count apply to what comes next. */
            s->cfg.max_frame_bytes = c.max_frame_bytes;
            s->cfg.max_connections = c.max_connections;
            s->cfg.max_streams = c.max_streams;
            s->cfg.max_streams_per_connection = c.max_streams_per_connection;
            s->cfg.max_subscriptions_per_connection = c.max_subscriptions_per_connection;
            s->cfg.input_queue_bytes = c.input_queue_bytes;
            s->cfg.subscriber_hard_bytes = c.subscriber_hard_bytes;
            s->cfg.subscriber_soft_bytes = c.subscriber_soft_bytes;
            s->cfg.subscriber_soft_seconds = c.subscriber_soft_seconds;
            log_set_level((log_level)c.log_level);
            if (!s->models_from_cli && strcmp(c.models_dir, s->reg.dir)) {
                free(s->reg.dir);
                s->reg.dir = strdup(c.models_dir);
            }
            /* Connections already open take the new frame limit too. */
            for (conn *k = s->conns; k; k = k->next)
                k->framer.max_frame = s->cfg.max_frame_bytes;
            snnd_config_free(&c);
        }
    }
    int n = registry_scan(&s->reg);
    log_info("SIGHUP: reloaded; model directory %s: %d models; %u streams kept", s->reg.dir, n, s->n_streams);
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *s = h->data;
    if (signum == SIGHUP)
        reload(s);
    else
        server_shutdown(s, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_grace_timeout(uv_timer_t *t)
{
    server *s = t->data;
    log_warn("shutdown: grace period over; closing %u connections", s->n_conns);
    while (s->conns)
        conn_close(s->conns, "shutdown");
    if (s->n_streams)
        uv_stop(s->loop);
}

static void on_shutdown_done(uv_shutdown_t *req, int status)
{
    conn *c = req->data;
    free(req);
    /* Our output is flushed and the write side closed. Closing now with the
     * peer's unread input in our buffer would make the kernel reset the
     * connection and could discard output the peer has not read yet, so keep
     * reading (and discarding) until the peer closes; the grace timer bounds it. */
    if (status < 0)
        conn_close(c, "shutdown");
    else if (!c->closing)
        conn_drain(c);
    conn_unref(c);
}

void server_maybe_exit(server *s)
{
    if (!s->shutting_down || s->n_streams > 0)
        return;
    /* Every stream has finished: flush each connection's output, then close. */
    for (conn *c = s->conns; c; c = c->next) {
        if (c->closing || c->draining || c->dropping)
            continue;
        c->draining = 1;
        uv_shutdown_t *req = malloc(sizeof *req);
        req->data = c;
        conn_ref(c);
        if (uv_shutdown(req, &c->h.stream, on_shutdown_done) < 0) {
            free(req);
            conn_unref(c);
            conn_close(c, "shutdown");
            break; /* the list changed */
        }
    }
    if (s->n_conns == 0 && !uv_is_closing((uv_handle_t *)&s->shutdown_timer)) {
        uv_close((uv_handle_t *)&s->shutdown_timer, NULL);
        uv_close((uv_handle_t *)&s->sig_int, NULL);
        uv_close((uv_handle_t *)&s->sig_term, NULL);
        uv_close((uv_handle_t *)&s->sig_hup, NULL);
        uv_close((uv_handle_t *)&s->out_async, NULL);
        uv_close((uv_handle_t *)&s->sched_check, NULL);
        uv_close((uv_handle_t *)&s->sched_idle, NULL);
        uv_close((uv_handle_t *)&s->trim_timer, NULL);
    }
}

void server_shutdown(server *s, const char *why)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    log_info("shutdown (%s): finishing %u streams, then closing %u connections", why, s->n_streams, s->n_conns);
    for (int i = 0; i < s->n_listeners; i++) {
        if (s->listeners[i]->type == UV_NAMED_PIPE) {
            char path[512];
            size_t len = sizeof path;
            if (uv_pipe_getsockname((uv_pipe_t *)s->listeners[i], path, &len) == 0)
                unlink(path);
        }
        uv_close(s->listeners[i], (uv_close_cb)free);
    }
    s->n_listeners = 0;
    for (stream *st = s->streams, *next; st; st = next) {
        next = st->next;
        stream_owner_gone(st);
    }
    uv_timer_start(&s->shutdown_timer, on_grace_timeout, (uint64_t)(s->cfg.shutdown_grace_seconds * 1000), 0);
    server_maybe_exit(s);
}

void server_free(server *s)
{
    stream_drain_chunks(s);
    pthread_mutex_destroy(&s->outq_mu);
    registry_free(&s->reg);
    snnd_config_free(&s->cfg);
}
