/*
 * fuzz.h -- the entry points of snnd's fuzz targets.
 *
 * Each target is one function that takes one input and returns 0; it must
 * never crash, hang, leak or trip a sanitizer whatever the bytes are. The same
 * functions are driven by libFuzzer (fuzz_main.c, one binary per target, built
 * with -Dfuzz=true) and by the plain regression test (test_regress.c), which
 * replays every file in tests/fuzz/regress/<target>/ in the normal build.
 */
#ifndef SNN_FUZZ_H
#define SNN_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* A byte stream sent by one client to a real server (fuzz_frames.c). */
int fuzz_frames_one(const uint8_t *data, size_t n);
/* A configuration file (server/config.c). */
int fuzz_config_one(const uint8_t *data, size_t n);
/* A safetensors RSNN model: parse, load, one state, 10 zero-input steps. */
int fuzz_model_one(const uint8_t *data, size_t n);
/* An ONNX graph: load from memory, run once if small; then as a DNSMOS model. */
int fuzz_onnx_one(const uint8_t *data, size_t n);
/* A NIR (HDF5) graph: load, one state, 10 zero-input steps. */
int fuzz_nir_one(const uint8_t *data, size_t n);
/* A WAVE file (models/wav.h). */
int fuzz_wav_one(const uint8_t *data, size_t n);
/* A CSV input file (clients/csv.h). */
int fuzz_csv_one(const uint8_t *data, size_t n);

/* Helpers (fuzz_util.c). Writes data to an anonymous memory file and returns
 * its descriptor (or -1); *path gets "/proc/self/fd/N". */
int fuzz_memfd(const uint8_t *data, size_t n, char *path, size_t pathlen);

/* Runs a loaded model: one state, `steps` steps with zero input. Aborts if a
 * step fails in a way the model interface forbids (allocation in a step is not
 * checked here). */
/* Writes data to this process's scratch file (/dev/shm, or /tmp) named
 * ...<suffix> and returns its path (static), or NULL. For readers that need a
 * real path: libhdf5 resolves /proc/self/fd links and fails on memory files.
 * The file is removed at exit. */
const char *fuzz_tmpfile(const uint8_t *data, size_t n, const char *suffix);

/* Prints "target: msg" to stderr when $FUZZ_VERBOSE is set (why an input
 * was rejected: for checking that seeds get where they should). */
void fuzz_note(const char *target, const char *msg);

struct snn_model;
void fuzz_run_model(const struct snn_model *m, int steps);

#endif
