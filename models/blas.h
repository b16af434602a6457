/*
 * blas.h -- which OpenBLAS kernels snnd's programs run.
 *
 * OpenBLAS picks its kernels for the CPU once, when the library initialises, from a
 * table of the CPUs its version knows. Debian 12's OpenBLAS 0.3.21 predates AMD Zen 4 and
 * Zen 5 and gives them its AVX2 ("Haswell") kernels although they run AVX-512: its
 * single-precision GEMM then takes ~1.4x as long per DNSMOS P.835 window (measured on Zen 5;
 * tests/bench/README.md), and machines set OPENBLAS_CORETYPE=Haswell so that it does not fall
 * back further; without it, this OpenBLAS picks its AVX-512 kernels on Zen 5 itself. A program
 * that includes SNN_BLAS_PREINIT replaces an OPENBLAS_CORETYPE that names a core without
 * AVX-512 by SkylakeX (the AVX-512 kernels) where the CPU has AVX-512 F, BW, DQ and VL. This
 * happens before any library initialises (an ELF .preinit_array entry editing the environment
 * libc is about to adopt; no re-exec). SNN_BLAS_CORETYPE=keep leaves OPENBLAS_CORETYPE as it
 * is. Child processes inherit the choice, so snnd and the tools that check it bit for bit
 * (snn model run, test_audio) run the same kernels.
 */
#ifndef SNN_BLAS_H
#define SNN_BLAS_H

/* Replaces OPENBLAS_CORETYPE in envp as above; the arguments are those of a .preinit_array
 * function. Only meaningful before libc initialises. */
void snn_blas_preinit(int argc, char **argv, char **envp);

/* The OPENBLAS_CORETYPE value snn_blas_preinit() replaced, or NULL (for a log line). */
const char *snn_blas_changed_from(void);

/* Put once in a program's main file, at file scope. */
#if defined(__ELF__)
#define SNN_BLAS_PREINIT                                                                            \
    __attribute__((section(".preinit_array"), used)) static void (*const snn_blas_preinit_entry)( \
        int, char **, char **) = snn_blas_preinit;
#else
#define SNN_BLAS_PREINIT
#endif

#endif
