/*
 * itest.h -- helpers for integration tests: start a real snnd on a temporary
 * Unix socket and speak the wire protocol to it over raw sockets.
 */
#ifndef SNN_ITEST_H
#define SNN_ITEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "snnd.pb-c.h"

typedef struct itest_daemon {
    pid_t pid;
    char sock[100];
    char log[256];
} itest_daemon;

/* Starts build/server/snnd with --listen unix:<tmp> --models <models_dir> and
 * extra args (NULL-terminated); waits until it accepts. Returns 0 or -1. */
int itest_start(itest_daemon *d, const char *models_dir, const char *const *extra);

/* Sends sig and waits for exit; returns the exit status (or -1). */
int itest_stop(itest_daemon *d, int sig);

/* Connects to the daemon's socket; returns the fd or -1. */
int itest_connect(const itest_daemon *d);

/* Sends one frame (varint length + packed env). Returns 0 or -1. */
int itest_send(int fd, const Snnd__V1__Envelope *env);

/* Sends raw bytes. */
int itest_send_raw(int fd, const void *buf, size_t n);

/* Receives the next Envelope, waiting up to timeout_ms. Returns NULL on
 * timeout, EOF or error (errno-free: see itest_last_eof). Free with
 * snnd__v1__envelope__free_unpacked(env, NULL). */
Snnd__V1__Envelope *itest_recv(int fd, int timeout_ms);

/* 1 if the last itest_recv() on fd hit end-of-file / reset. */
int itest_last_eof(void);

/* Receives until an envelope of msg_case arrives (others are freed), or NULL. */
Snnd__V1__Envelope *itest_expect(int fd, int msg_case, int timeout_ms);

/* Convenience senders; return 0 or -1. */
int itest_open(int fd, uint32_t id, const char *stream, const char *model, int subscribe);
/* itest_open with an input kind (Snnd__V1__InputKind; 0 = the model's default). */
int itest_open_kind(int fd, uint32_t id, const char *stream, const char *model, int kind, int subscribe);
int itest_binned(int fd, const char *stream, const float *counts, uint32_t n_ch, size_t n_bins);
int itest_close_stream(int fd, uint32_t id, const char *stream);
int itest_subscribe(int fd, uint32_t id, const char *stream);

#endif

/* ---- helpers for fault tests (test_faults.c) ---------------------------- */

/* Closes fd and forgets its receive buffer (so a reused fd starts clean). */
void itest_close(int fd);

/* Sends StatsRequest (stream "" = all) and waits for the Stats reply; NULL on
 * timeout or Error. */
Snnd__V1__Envelope *itest_stats(int fd, uint32_t id, const char *stream, int timeout_ms);

/* VmRSS of process pid in KiB (from /proc/<pid>/status), or -1. */
long itest_rss_kb(pid_t pid);

/* Copies src to dst (created or truncated in place). Returns 0 or -1. */
int itest_copy_file(const char *src, const char *dst);

/* Writes text to path (created or truncated). Returns 0 or -1. */
int itest_write_text(const char *path, const char *text);

/* Creates a fresh directory /tmp/snnd-itest-<pid>-<tag>-XXXXXX into buf
 * (at least 128 bytes). Returns 0 or -1. */
int itest_mkdtemp(char *buf, size_t n, const char *tag);

/* Removes dir's regular files and dir itself. */
void itest_rmdir(const char *dir);
