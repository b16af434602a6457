/*
 * main.c -- snnd: command line, configuration, and the event loop.
 */
#include <cblas.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "amx.h"
#include "blas.h"

SNN_BLAS_PREINIT

static void usage(FILE *f)
{
    fprintf(f,
            "usage: snnd [--config FILE] [--listen ADDR]... [--models DIR] [--workers N]\n"
            "            [--inline-step-us US] [--log-level L]\n"
            "\n"
            "snnd serves spiking and binary neural networks to live sensor streams over\n"
            "length-delimited protobuf (proto/snnd.proto, package snnd.v1).\n"
            "\n"
            "  -c, --config FILE     JSON configuration (every option: deploy/snnd.example.json)\n"
            "  -l, --listen ADDR     unix:PATH or tcp:HOST:PORT (IPv6: tcp:[::1]:7878); repeatable;\n"
            "                        replaces the configured listeners\n"
            "                        (default: unix:%s and tcp:127.0.0.1:7878)\n"
            "  -m, --models DIR      model directory (default: %s)\n"
            "  -w, --workers N       model-step worker threads (default 2)\n"
            "      --inline-step-us US  step streams whose batches take less on the loop thread,\n"
            "                        without a worker (default 100; 0: always on the workers)\n"
            "      --log-level L     debug, info, warn or error (default info)\n"
            "      --check-config    load the configuration and the models, then exit\n"
            "  -h, --help            this text\n"
            "  -V, --version         print the version\n"
            "\n"
            "Signals: SIGINT/SIGTERM finish every stream, flush subscribers and exit 0;\n"
            "SIGHUP re-reads the configuration's limits and the model directory.\n",
            snnd_default_socket(),
#ifdef SNND_MODELS_DIR
            SNND_MODELS_DIR
#else
            "models/zoo"
#endif
    );
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"listen", required_argument, 0, 'l'},
        {"models", required_argument, 0, 'm'}, {"workers", required_argument, 0, 'w'},
        {"log-level", required_argument, 0, 'L'}, {"check-config", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},         {"version", no_argument, 0, 'V'},
        {"inline-step-us", required_argument, 0, 'I'},
        {0, 0, 0, 0}};
    const char *config_path = NULL, *models = NULL, *level = NULL;
    char *listen[SNND_MAX_LISTEN];
    int n_listen = 0, workers = 0, check = 0, c;
    double inline_us = -1;
    while ((c = getopt_long(argc, argv, "c:l:m:w:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l':
            if (n_listen == SNND_MAX_LISTEN) {
                fprintf(stderr, "snnd: at most %d --listen addresses\n", SNND_MAX_LISTEN);
                return 2;
            }
            listen[n_listen++] = optarg;
            break;
        case 'm': models = optarg; break;
        case 'w': {
            char *end;
            long w = strtol(optarg, &end, 10);
            if (*end || w < 1 || w > 128) {
                fprintf(stderr, "snnd: --workers \"%s\": expected 1..128\n", optarg);
                return 2;
            }
            workers = (int)w;
            break;
        }
        case 'I': {
            char *end;
            double v = strtod(optarg, &end);
            if (end == optarg || *end || !(v >= 0 && v <= SNND_INLINE_STEP_US_MAX)) {
                fprintf(stderr, "snnd: --inline-step-us \"%s\": expected 0..%d\n", optarg,
                        SNND_INLINE_STEP_US_MAX);
                return 2;
            }
            inline_us = v;
            break;
        }
        case 'L': level = optarg; break;
        case 'C': check = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("snnd %s\n", SNND_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "snnd: unexpected argument \"%s\" (see snnd --help)\n", argv[optind]);
        return 2;
    }
    snnd_config cfg;
    snnd_config_defaults(&cfg);
    char err[512];
    if (config_path && snnd_config_load(&cfg, config_path, err, sizeof err) < 0) {
        fprintf(stderr, "snnd: %s\n", err);
        snnd_config_free(&cfg);
        return 2;
    }
    for (int i = 0; i < n_listen; i++)
        if (snnd_config_check_listen(listen[i], err, sizeof err) < 0) {
            fprintf(stderr, "snnd: --%s\n", err);
            snnd_config_free(&cfg);
            return 2;
        }
    if (n_listen)
        snnd_config_set_listen(&cfg, listen, n_listen);
    if (models)
        snnd_config_set_models(&cfg, models);
    if (workers)
        cfg.workers = workers;
    if (inline_us >= 0)
        cfg.inline_step_us = inline_us;
    if (level) {
        int l = log_parse_level(level);
        if (l < 0) {
            fprintf(stderr, "snnd: --log-level \"%s\": expected debug, info, warn or error\n", level);
            snnd_config_free(&cfg);
            return 2;
        }
        cfg.log_level = l;
    }
    log_set_level((log_level)cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    /* One descriptor per connection: raise the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)cfg.max_connections + 64)
        log_warn("open-file limit %llu is below max_connections %u + 64: connections beyond it will be refused",
                 (unsigned long long)rl.rlim_cur, cfg.max_connections);
    /* Model steps run on libuv's pool: one OpenBLAS thread per worker. */
    char nthreads[16];
    snprintf(nthreads, sizeof nthreads, "%d", cfg.workers);
    setenv("UV_THREADPOOL_SIZE", nthreads, 1);
    openblas_set_num_threads(1);

    uv_loop_t *loop = uv_default_loop();
    static server srv;
    server_init(&srv, loop, &cfg, config_path);
    srv.models_from_cli = models != NULL;
    if (check) {
        int n = (int)registry_count(&srv.reg);
        printf("snnd: configuration OK; %d models in %s\n", n, srv.reg.dir);
        server_free(&srv);
        return 0;
    }
    if (server_listen(&srv) < 0) {
        server_free(&srv);
        return 1;
    }
    log_info("snnd %s ready: %d workers, inline steps under %g us, max %u connections", SNND_VERSION,
             srv.cfg.workers, srv.cfg.inline_step_us, srv.cfg.max_connections);
    if (snn_blas_changed_from())
        log_info("OpenBLAS: AVX-512 kernels (OPENBLAS_CORETYPE=%s replaced by SkylakeX; "
                 "SNN_BLAS_CORETYPE=keep keeps it)", snn_blas_changed_from());
    if (snn_amx_ok())
        log_info("DNSMOS convolutions on AMX bf16 tiles, split precision (SNN_AMX=0 turns them off)");
    uv_run(loop, UV_RUN_DEFAULT);
    log_info("snnd stopped: %llu stream batches stepped on the loop, %llu on the workers",
             (unsigned long long)srv.batches_inline, (unsigned long long)srv.batches_workers);
    server_free(&srv);
    uv_loop_close(loop);
    return 0;
}
