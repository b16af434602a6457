/*
 * registry.h -- the models a server serves, from its model directory.
 *
 * A model is named by its file name without extension (NAME.safetensors,
 * NAME.onnx, NAME.nir). Opening a stream takes a reference on the loaded
 * model; the model is re-read when its file changed (inode, size or mtime),
 * so a model file replaced or truncated on disk never affects streams already
 * open (they keep their reference) while new opens see the new file, or get
 * a clear error if it no longer loads. Loaded models are shared read-only.
 */
#ifndef SNND_REGISTRY_H
#define SNND_REGISTRY_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "model.h"

typedef struct model_ref {
    snn_model *m;
    int refs;          /* streams using it + 1 while current in the registry */
    int current;       /* still the registry's entry for its name */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    struct model_ref *next;
} model_ref;

typedef struct registry {
    char *dir;
    model_ref *head;   /* current entries */
} registry;

void registry_init(registry *r, const char *dir);

/* Loads (or reloads) every model file in the directory; files that fail to
 * load are logged and skipped. Returns the number of models loaded. */
int registry_scan(registry *r);

/* Returns a referenced model for name, loading it if needed. On failure
 * returns NULL and writes one line into err; *code gets UNKNOWN_MODEL (no
 * such file or a bad name) or MODEL_ERROR (the file does not load). */
model_ref *registry_open(registry *r, const char *name, int *code, char *err, size_t errlen);

void registry_release(model_ref *ref);

/* Number of current models and the i-th (for Welcome). */
size_t registry_count(const registry *r);

void registry_free(registry *r);

#endif
