#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "snnd.pb-c.h"

static const char *const exts[] = {".safetensors", ".onnx", ".nir"};

void registry_init(registry *r, const char *dir)
{
    memset(r, 0, sizeof *r);
    r->dir = strdup(dir);
}

static void ref_free(model_ref *ref)
{
    snn_model_free(ref->m);
    free(ref);
}

void registry_release(model_ref *ref)
{
    if (ref && --ref->refs == 0)
        ref_free(ref);
}

static int valid_name(const char *n)
{
    size_t k = strlen(n);
    if (k == 0 || k > 100 || n[0] == '.')
        return 0;
    for (size_t i = 0; i < k; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static model_ref *find(registry *r, const char *name, model_ref ***link)
{
    model_ref **pp = &r->head;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->m->name, name)) {
            if (link)
                *link = pp;
            return *pp;
        }
    return NULL;
}

static int same_file(const model_ref *ref, const struct stat *sb)
{
    return ref->dev == sb->st_dev && ref->ino == sb->st_ino && ref->size == sb->st_size &&
           ref->mtime.tv_sec == sb->st_mtim.tv_sec && ref->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

/* Drops the current entry for name (streams using it keep it alive). */
static void retire(registry *r, const char *name)
{
    model_ref **link;
    model_ref *old = find(r, name, &link);
    if (old) {
        *link = old->next;
        old->current = 0;
        registry_release(old);
    }
}

/* Makes path (stat sb) the current model for its name. */
static model_ref *load(registry *r, const char *path, const struct stat *sb, int *code, char *err, size_t errlen)
{
    snn_model *m = NULL;
    snn_err e = {{0}};
    int rc = snn_model_load(path, NULL, &m, &e);
    if (rc < 0) {
        snprintf(err, errlen, "%s", e.msg);
        if (code)
            *code = SNND__V1__ERROR_CODE__MODEL_ERROR;
        return NULL;
    }
    model_ref *ref = calloc(1, sizeof *ref);
    if (!ref) {
        snn_model_free(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ref->m = m;
    ref->refs = 1;
    ref->current = 1;
    ref->dev = sb->st_dev;
    ref->ino = sb->st_ino;
    ref->size = sb->st_size;
    ref->mtime = sb->st_mtim;
    retire(r, m->name);
    ref->next = r->head;
    r->head = ref;
    return ref;
}

model_ref *registry_open(registry *r, const char *name, int *code, char *err, size_t errlen)
{
    *code = SNND__V1__ERROR_CODE__UNKNOWN_MODEL;
    if (!valid_name(name)) {
        snprintf(err, errlen, "model name \"%.100s\" is not valid (letters, digits, . _ -; no leading dot)", name);
        return NULL;
    }
    char path[4096];
    struct stat sb;
    int found = 0;
    for (size_t i = 0; i < sizeof exts / sizeof *exts && !found; i++) {
        snprintf(path, sizeof path, "%s/%s%s", r->dir, name, exts[i]);
        found = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    }
    if (!found) {
        retire(r, name);
        snprintf(err, errlen, "unknown model \"%s\" (no %s/%s.safetensors, .onnx or .nir)", name, r->dir, name);
        return NULL;
    }
    model_ref *ref = find(r, name, NULL);
    if (!ref || !same_file(ref, &sb) || strcmp(ref->m->path, path)) {
        ref = load(r, path, &sb, code, err, errlen);
        if (!ref) {
            retire(r, name); /* the file on disk no longer loads: no stale serving */
            log_warn("model %s: %s", name, err);
            return NULL;
        }
        log_info("model %s loaded from %s (%s, %llu bytes of parameters)", name, path, ref->m->ops->kind,
                 (unsigned long long)ref->m->footprint);
    }
    ref->refs++;
    return ref;
}

int registry_scan(registry *r)
{
    DIR *d = opendir(r->dir);
    if (!d) {
        log_error("model directory %s: %s", r->dir, strerror(errno));
        return 0;
    }
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        /* A save killed mid-write leaves NAME.safetensors.tmp.<pid>.<n>: remove
         * those of other processes (this one's may be in progress). */
        const char *tmp = strstr(de->d_name, ".tmp.");
        if (tmp && atol(tmp + 5) != (long)getpid()) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", r->dir, de->d_name);
            if (unlink(p) == 0)
                log_info("removed %s (left by an interrupted save)", p);
            continue;
        }
        for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
            size_t k = strlen(de->d_name), e = strlen(exts[i]);
            if (k <= e || strcmp(de->d_name + k - e, exts[i]))
                continue;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(k - e), de->d_name);
            int code;
            char err[512];
            model_ref *ref = registry_open(r, name, &code, err, sizeof err);
            if (ref) {
                registry_release(ref);
                n++;
            }
        }
    }
    closedir(d);
    /* Drop entries whose file is gone. */
    for (model_ref *ref = r->head, *next; ref; ref = next) {
        next = ref->next;
        struct stat sb;
        if (stat(ref->m->path, &sb) != 0)
            retire(r, ref->m->name);
    }
    return n;
}

size_t registry_count(const registry *r)
{
    size_t n = 0;
    for (model_ref *ref = r->head; ref; ref = ref->next)
        n++;
    return n;
}

void registry_free(registry *r)
{
    while (r->head) {
        model_ref *ref = r->head;
        r->head = ref->next;
        ref->current = 0;
        registry_release(ref);
    }
    free(r->dir);
    memset(r, 0, sizeof *r);
}
