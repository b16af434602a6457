/*
 * test_blas.c -- OpenBLAS's kernel choice (models/blas.h): this binary includes
 * SNN_BLAS_PREINIT, runs itself again with chosen environments and checks which core type
 * OpenBLAS initialised with in each.
 */
#include <cblas.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "blas.h"

SNN_BLAS_PREINIT

char *openblas_get_corename(void);

static int cpu_avx512(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

/* Runs this binary as "child" with environment env; out gets its line:
 * "<OPENBLAS_CORETYPE or -> <openblas corename> <replaced value or ->". */
static void run_child(char *const env[], char *out, size_t n)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        char *argv[] = {"test_blas", "child", NULL};
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    close(fd[1]);
    ssize_t k = read(fd[0], out, n - 1);
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    out[k > 0 ? k : 0] = '\0';
}

static void test_haswell_env(void **state)
{
    (void)state;
    char *env[] = {"OPENBLAS_CORETYPE=Haswell", "OPENBLAS_NUM_THREADS=1", NULL}, line[256];
    run_child(env, line, sizeof line);
    if (cpu_avx512())
        assert_string_equal(line, "SkylakeX SkylakeX Haswell\n");
    else
        assert_string_equal(line, "Haswell Haswell -\n");
}

static void test_keep(void **state)
{
    (void)state;
    char *env[] = {"OPENBLAS_CORETYPE=Haswell", "SNN_BLAS_CORETYPE=keep", "OPENBLAS_NUM_THREADS=1", NULL};
    char line[256];
    run_child(env, line, sizeof line);
    assert_string_equal(line, "Haswell Haswell -\n");
}

static void test_avx512_name_kept(void **state)
{
    (void)state;
    if (!cpu_avx512())
        skip();
    char *env[] = {"OPENBLAS_CORETYPE=Cooperlake", "OPENBLAS_NUM_THREADS=1", NULL}, line[256];
    run_child(env, line, sizeof line);
    assert_string_equal(line, "Cooperlake Cooperlake -\n");
}

static void test_unset_untouched(void **state)
{
    (void)state;
    char *env[] = {"OPENBLAS_NUM_THREADS=1", NULL}, line[256];
    run_child(env, line, sizeof line);
    assert_true(strncmp(line, "- ", 2) == 0); /* OpenBLAS chooses by itself */
    assert_non_null(strstr(line, " -\n"));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0) {
        const char *e = getenv("OPENBLAS_CORETYPE"), *from = snn_blas_changed_from();
        printf("%s %s %s\n", e ? e : "-", openblas_get_corename(), from ? from : "-");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_haswell_env),
        cmocka_unit_test(test_keep),
        cmocka_unit_test(test_avx512_name_kept),
        cmocka_unit_test(test_unset_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
