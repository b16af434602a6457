/*
 * fuzz_util.c -- helpers shared by the fuzz targets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "model.h"

int fuzz_memfd(const uint8_t *data, size_t n, char *path, size_t pathlen)
{
    int fd = memfd_create("snnd-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

static char tmp_path[128];

static void tmp_remove(void)
{
    if (tmp_path[0])
        unlink(tmp_path);
}

const char *fuzz_tmpfile(const uint8_t *data, size_t n, const char *suffix)
{
    if (!tmp_path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(tmp_path, sizeof tmp_path, "%s/snnd-fuzz-%ld%s", dir, (long)getpid(), suffix);
        atexit(tmp_remove);
    }
    FILE *f = fopen(tmp_path, "wb");
    if (!f)
        return NULL;
    size_t w = fwrite(data, 1, n, f);
    if (fclose(f) != 0 || w != n)
        return NULL;
    return tmp_path;
}

void fuzz_note(const char *target, const char *msg)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "%s: %s\n", target, msg);
}

void fuzz_run_model(const snn_model *m, int steps)
{
    snn_state *s = NULL;
    snn_err err = {{0}};
    /* Guard the zero-input vectors against absurd sizes: a loader that
     * accepted them would have allocated that much already. */
    if (m->n_in > (1u << 24) || m->n_out > (1u << 24))
        return;
    if (m->ops->state_new(m, &s, &err) < 0) {
        fuzz_note("state_new", err.msg);
        return;
    }
    float *in = calloc(m->n_in ? m->n_in : 1, sizeof *in);
    float *out = calloc(m->n_out ? m->n_out : 1, sizeof *out);
    if (in && out) {
        for (int t = 0; t < steps; t++) {
            snn_step_info info = {0};
            if (m->ops->step(m, s, in, out, &info) < 0) {
                fuzz_note("step", "failed");
                break;
            }
        }
        if (m->ops->finish) {
            snn_step_info info = {0};
            m->ops->finish(m, s, out, &info);
        }
        m->ops->state_reset(m, s);
        fuzz_note("run", "model stepped");
    }
    free(in);
    free(out);
    m->ops->state_free(m, s);
}
