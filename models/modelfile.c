/*
 * modelfile.c -- loading a model file by its extension, and the fields every
 * model kind shares.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rsnn.h"
#include "safetensors.h"
#ifdef SNN_HAVE_ONNX
#include "dnsmos.h"
#endif
#ifdef SNN_HAVE_NIR
#include "nir.h"
#endif

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

int snn_model_load(const char *path, const snn_allocator *a, snn_model **out, snn_err *err)
{
    a = snn_alloc_or_default(a);
    *out = NULL;
    if (ends_with(path, ".safetensors")) {
        snn_st st;
        int rc = snn_st_open(&st, path, a, err);
        if (rc < 0)
            return rc;
        const char *fmt = snn_st_meta(&st, "format");
#ifdef SNN_HAVE_ONNX
        if (fmt && !strcmp(fmt, "snnd-dnsmos-bam"))
            rc = snn_dnsmos_bam_model_load(&st, path, a, out, err);
        else
#endif
            rc = snn_rsnn_load(&st, path, a, out, err);
        (void)fmt;
        snn_st_close(&st);
        return rc;
    }
#ifdef SNN_HAVE_ONNX
    if (ends_with(path, ".onnx"))
        return snn_onnx_model_load(path, a, out, err);
#endif
#ifdef SNN_HAVE_NIR
    if (ends_with(path, ".nir"))
        return snn_nir_model_load(path, a, out, err);
#endif
    return snn_err_set(err, SNN_ENOTSUP, "%s: unknown model file type (expected .safetensors%s%s)", path,
#ifdef SNN_HAVE_ONNX
                       ", .onnx"
#else
                       ""
#endif
                       ,
#ifdef SNN_HAVE_NIR
                       ", .nir"
#else
                       ""
#endif
    );
}

void snn_model_free(snn_model *m)
{
    if (m)
        m->ops->free(m);
}

int snn_model_set_path(snn_model *m, const char *path)
{
    size_t len = strlen(path);
    if (len >= sizeof m->path)
        return -SNN_EINVAL;
    memcpy(m->path, path, len + 1);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n >= sizeof m->name)
        n = sizeof m->name - 1;
    memcpy(m->name, base, n);
    m->name[n] = 0;
    return 0;
}

int snn_model_set_names(snn_model *m, char ***dst, const char *const *names, uint32_t n)
{
    const snn_allocator *a = snn_alloc_or_default(m->alloc);
    char **v = a->calloc(n ? n : 1, sizeof *v);
    if (!v)
        return -SNN_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        size_t k = strlen(names[i]);
        v[i] = a->malloc(k + 1);
        if (!v[i]) {
            for (uint32_t j = 0; j < i; j++)
                a->free(v[j]);
            a->free(v);
            return -SNN_ENOMEM;
        }
        memcpy(v[i], names[i], k + 1);
    }
    *dst = v;
    return 0;
}

static void free_names(const snn_allocator *a, char **v, uint32_t n)
{
    if (!v)
        return;
    for (uint32_t i = 0; i < n; i++)
        a->free(v[i]);
    a->free(v);
}

void snn_model_free_common(snn_model *m)
{
    const snn_allocator *a = snn_alloc_or_default(m->alloc);
    free_names(a, m->out_names, m->n_out);
    free_names(a, m->labels, m->n_out);
    m->out_names = m->labels = NULL;
}

static const char *decision_name(snn_decision d)
{
    switch (d) {
    case SNN_DECISION_ARGMAX_SUM: return "argmax_sum";
    case SNN_DECISION_ARGMAX_LAST: return "argmax_last";
    case SNN_DECISION_ARGMAX_MAX: return "argmax_max";
    case SNN_DECISION_MEAN: return "mean";
    default: return "none";
    }
}

int snn_model_describe(const snn_model *m, json_t *o)
{
    json_t *outs = json_array();
    for (uint32_t i = 0; i < m->n_out; i++)
        json_array_append_new(outs, json_string(m->out_names ? m->out_names[i] : ""));
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "kind", json_string(m->ops->kind));
    json_object_set_new(o, "path", json_string(m->path));
    json_object_set_new(o, "inputs", json_pack("{s:I, s:s, s:f}", "size", (json_int_t)m->n_in, "kind", m->input_kind,
                                               "dt", m->dt));
    json_object_set_new(o, "outputs", json_pack("{s:I, s:o}", "size", (json_int_t)m->n_out, "names", outs));
    if (m->labels) {
        json_t *l = json_array();
        for (uint32_t i = 0; i < m->n_out; i++)
            json_array_append_new(l, json_string(m->labels[i]));
        json_object_set_new(o, "labels", l);
    }
    json_object_set_new(o, "decision", json_string(decision_name(m->decision)));
    json_object_set_new(o, "parameters", json_integer((json_int_t)m->n_params));
    json_object_set_new(o, "footprint_bytes", json_integer((json_int_t)m->footprint));
    return m->ops->describe ? m->ops->describe(m, o) : 0;
}
