/*
 * test_regress.c -- replays every fuzz input kept in the source tree through
 * the fuzz targets' entry functions (fuzz.h), without libFuzzer:
 *
 *   tests/fuzz/regress/<target>/<name>   inputs that once crashed or hung
 *   tests/fuzz/corpus/<target>/<name>    the seed corpora
 *
 * Usage: test_regress [TARGET [FILE...]]. Without files it replays both
 * directories of TARGET (or of every target); with files, just those. Each
 * must return without a crash or a sanitizer report (the sanitizer build of
 * deploy/test runs this too); the test fails if a target has no input at all.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#ifndef FUZZ_SOURCE_ROOT
#error "FUZZ_SOURCE_ROOT must name the source tree"
#endif

static const struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
} targets[] = {
    {"frames", fuzz_frames_one}, {"config", fuzz_config_one}, {"model", fuzz_model_one},
    {"onnx", fuzz_onnx_one},     {"nir", fuzz_nir_one},       {"wav", fuzz_wav_one},
    {"csv", fuzz_csv_one},
};

static int replay_file(int (*one)(const uint8_t *, size_t), const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "test_regress: %s: cannot open\n", path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf)
        return -1;
    printf("  %s (%zu bytes)\n", path, n);
    fflush(stdout);
    one(buf, n);
    free(buf);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Replays every regular file of dir (sorted); returns how many, or -1. */
static int replay_dir(int (*one)(const uint8_t *, size_t), const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    char *names[4096];
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)) && k < 4096)
        if (e->d_name[0] != '.')
            names[k++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)k, sizeof *names, cmp);
    int done = 0;
    for (int i = 0; i < k; i++) {
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(one, path) < 0)
                done = -1000000;
            done++;
        }
        free(names[i]);
    }
    return done;
}

int main(int argc, char **argv)
{
    int failed = 0;
    size_t nt = sizeof targets / sizeof targets[0];
    for (size_t t = 0; t < nt; t++) {
        if (argc > 1 && strcmp(argv[1], targets[t].name))
            continue;
        if (argc > 2) {
            for (int i = 2; i < argc; i++)
                failed |= replay_file(targets[t].one, argv[i]) < 0;
            continue;
        }
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", FUZZ_SOURCE_ROOT, targets[t].name);
        int nr = replay_dir(targets[t].one, dir);
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", FUZZ_SOURCE_ROOT, targets[t].name);
        int nc = replay_dir(targets[t].one, dir);
        printf("%s: %d regression inputs, %d seeds replayed\n", targets[t].name, nr, nc);
        if (nr < 0 || nc < 0 || nr + nc == 0) {
            printf("%s: FAILED (no inputs or unreadable files)\n", targets[t].name);
            failed = 1;
        }
    }
    return failed;
}
