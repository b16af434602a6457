/*
 * fuzz_frames.c -- the server's whole request path on one fuzzed byte stream.
 *
 * A real server (server/server.h) listens on a Unix socket in a temporary
 * directory whose model directory holds seven models (tinyrsnn: 96 spike
 * inputs; tactile: a sigma-delta encoder classifier; learner and learncls:
 * small networks e-prop can train, from Target frames and (through a tactile
 * encoder) from Label frames; neurons: a NIR graph; bam: the zoo's dnsmos-bam
 * cut to 8 channels (make_seeds.py bam8) and p808: the zoo's DNSMOS P.808,
 * both audio scorers), so every input kind and learning reach a session. SaveModel writes
 * into the same directory; everything in it is removed at exit. Each input is one client
 * connection: the bytes are written to it, then the write side is shut, and
 * the loop runs until the server has closed the connection and finished
 * every stream it opened (model steps run on libuv's thread pool). Replies
 * are read and thrown away. The path covered: accept, conn.c reading,
 * proto/framing.c, Envelope unpacking, handlers.c, stream.c queueing and
 * fan-out, session.c binning, resampling and windowing, the models' steps,
 * e-prop updates and model saving.
 *
 * A connection that is not finished within FUZZ_FRAMES_DEADLINE_S seconds
 * aborts: a hang is a bug too (libFuzzer's own -timeout also applies).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cblas.h>

#include "fuzz.h"
#include "log.h"
#include "server.h"
#include "blas.h"

SNN_BLAS_PREINIT

#ifndef FUZZ_SOURCE_ROOT
#error "FUZZ_SOURCE_ROOT must name the source tree"
#endif
#ifndef FUZZ_FRAMES_DEADLINE_S
#define FUZZ_FRAMES_DEADLINE_S 20
#endif

static struct {
    int ready;
    uv_loop_t loop;
    server srv;
    uv_timer_t tick;
    char dir[64];
    char sock[96];
} F;

static const char *const models[][2] = {
    {"models/zoo/tinyrsnn-indy01-seed1.safetensors", "tinyrsnn.safetensors"},
    {"tests/fuzz/corpus/model/tactile.safetensors", "tactile.safetensors"},
    {"tests/fuzz/corpus/model/learner.safetensors", "learner.safetensors"},
    {"tests/fuzz/corpus/model/learncls.safetensors", "learncls.safetensors"},
    {"tests/fixtures/nir/neurons.nir", "neurons.nir"},
    {"tests/fixtures/dnsmos_bam/bam8.safetensors", "bam.safetensors"},
    {"models/zoo/dnsmos-p808.onnx", "p808.onnx"},
};
enum { N_MODELS = sizeof models / sizeof models[0] };

static void on_tick(uv_timer_t *t) { (void)t; }

/* Removes the temporary directory with everything in it: the socket, the
 * model links and the models that SaveModel requests wrote. */
static void cleanup(void)
{
    if (!F.dir[0])
        return;
    DIR *d = opendir(F.dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[sizeof F.dir + 256 + 2];
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", F.dir, e->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
    rmdir(F.dir);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("UV_THREADPOOL_SIZE", "2", 1);
    openblas_set_num_threads(1);
    log_set_level(getenv("FUZZ_FRAMES_LOG") ? LOG_DEBUG : LOG_ERROR);
    snprintf(F.dir, sizeof F.dir, "/tmp/snnd-fuzz-XXXXXX");
    if (!mkdtemp(F.dir)) {
        perror("fuzz_frames: mkdtemp");
        abort();
    }
    atexit(cleanup);
    for (int i = 0; i < N_MODELS; i++) {
        char src[512], link[160];
        snprintf(src, sizeof src, "%s/%s", FUZZ_SOURCE_ROOT, models[i][0]);
        snprintf(link, sizeof link, "%s/%s", F.dir, models[i][1]);
        if (symlink(src, link) < 0) {
            perror("fuzz_frames: symlink");
            abort();
        }
    }
    snprintf(F.sock, sizeof F.sock, "%s/s.sock", F.dir);
    snnd_config cfg;
    snnd_config_defaults(&cfg);
    char addr[160];
    snprintf(addr, sizeof addr, "unix:%s", F.sock);
    char *addrs[1] = {addr};
    snnd_config_set_listen(&cfg, addrs, 1);
    snnd_config_set_models(&cfg, F.dir);
    cfg.workers = 2;
    /* Small limits so that inputs of a few kB reach them. */
    cfg.max_frame_bytes = 1u << 16;
    cfg.max_streams = 8;
    cfg.max_streams_per_connection = 4;
    cfg.max_subscriptions_per_connection = 4;
    cfg.input_queue_bytes = 1u << 14;
    uv_loop_init(&F.loop);
    if (server_init(&F.srv, &F.loop, &cfg, NULL) < 0 || server_listen(&F.srv) < 0) {
        fprintf(stderr, "fuzz_frames: cannot start the server in %s\n", F.dir);
        abort();
    }
    if (registry_count(&F.srv.reg) != N_MODELS) {
        fprintf(stderr, "fuzz_frames: %zu of %d models loaded from %s\n", registry_count(&F.srv.reg), N_MODELS,
                F.dir);
        abort();
    }
    /* Bounds every uv_run(UV_RUN_ONCE) to 1 ms, so this thread can act as
     * the client between loop iterations. */
    uv_timer_init(&F.loop, &F.tick);
    uv_timer_start(&F.tick, on_tick, 1, 1);
    F.ready = 1;
}

static int idle(uint64_t conns_before)
{
    return F.srv.next_conn_id > conns_before && F.srv.n_conns == 0 && F.srv.n_streams == 0 &&
           F.srv.queued_items == 0;
}

int fuzz_frames_one(const uint8_t *data, size_t n)
{
    if (!F.ready)
        setup();
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", F.sock);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("fuzz_frames: connect");
        abort();
    }
    uint64_t before = F.srv.next_conn_id;
    uint64_t deadline = uv_hrtime() + (uint64_t)FUZZ_FRAMES_DEADLINE_S * 1000000000u;
    size_t off = 0;
    int shut = 0;
    static char sink[65536];
    while (!idle(before)) {
        if (off < n) {
            ssize_t w = send(fd, data + off, n - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = n; /* the server closed the connection */
        }
        if (off == n && !shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        while (recv(fd, sink, sizeof sink, 0) > 0)
            ;
        uv_run(&F.loop, UV_RUN_ONCE);
        if (uv_hrtime() > deadline) {
            fprintf(stderr, "fuzz_frames: the server did not finish the connection in %d s (%u conns, %u streams,"
                    " %u queued items)\n", FUZZ_FRAMES_DEADLINE_S, F.srv.n_conns, F.srv.n_streams,
                    F.srv.queued_items);
            abort();
        }
    }
    close(fd);
    /* Let close callbacks run so nothing of this input is left for the next. */
    for (int i = 0; i < 4; i++)
        uv_run(&F.loop, UV_RUN_NOWAIT);
    return 0;
}
