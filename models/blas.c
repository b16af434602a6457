/*
 * blas.c -- OpenBLAS's kernel choice (blas.h).
 */
#include "blas.h"

#include <stddef.h>

static const char *changed_from; /* the OPENBLAS_CORETYPE replaced, or NULL */

/* The rest of s after prefix p, or NULL. No libc: this runs before libc (and a sanitizer's
 * interceptors) are initialised. */
static const char *after(const char *s, const char *p)
{
    for (; *p; s++, p++)
        if (*s != *p)
            return NULL;
    return s;
}

/* 1 if a and b are equal ignoring ASCII case. */
static int same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if ((*a | 0x20) != (*b | 0x20))
            return 0;
    return *a == *b;
}

/* 1 if OpenBLAS core type name t runs AVX-512 kernels. */
static int avx512_core(const char *t)
{
    static const char *const names[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (same_name(t, names[i]))
            return 1;
    return 0;
}

void snn_blas_preinit(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv;
#if defined(__x86_64__) && defined(__GNUC__)
    static char skx[] = "OPENBLAS_CORETYPE=SkylakeX";
    /* libc is not initialised yet and will take envp as the environment: edit it in place */
    for (char **e = envp; e && *e; e++) {
        const char *v = after(*e, "SNN_BLAS_CORETYPE=");
        if (v && same_name(v, "keep"))
            return;
    }
    __builtin_cpu_init(); /* libgcc's constructor has not run yet either */
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))
        return;
    for (char **e = envp; e && *e; e++) {
        const char *v = after(*e, "OPENBLAS_CORETYPE=");
        if (v && !avx512_core(v)) {
            changed_from = v;
            *e = skx;
        }
    }
#else
    (void)envp;
#endif
}

const char *snn_blas_changed_from(void) { return changed_from; }
