/*
 * blas.c -- OpenBLAS's kernel choice (blas.h).
 */
#include "blas.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *changed_from; /* the OPENBLAS_CORETYPE replaced, or NULL */

/* 1 if OpenBLAS core type name t runs AVX-512 kernels. */
static int avx512_core(const char *t)
{
    static const char *const names[] = {"SkylakeX", "Cooperlake", "SapphireRapids"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(t, names[i]) == 0)
            return 1;
    return 0;
}

void snn_blas_preinit(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv;
#if defined(__x86_64__) && defined(__GNUC__)
    static const char var[] = "OPENBLAS_CORETYPE=";
    static char skx[] = "OPENBLAS_CORETYPE=SkylakeX";
    /* libc is not initialised yet and will take envp as the environment: edit it in place */
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "SNN_BLAS_CORETYPE=keep", 22) == 0 && (*e)[22] == '\0')
            return;
    __builtin_cpu_init(); /* libgcc's constructor has not run yet either */
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")))
        return;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, var, sizeof var - 1) == 0 && !avx512_core(*e + sizeof var - 1)) {
            changed_from = *e + sizeof var - 1;
            *e = skx;
        }
#else
    (void)envp;
#endif
}

const char *snn_blas_changed_from(void) { return changed_from; }
