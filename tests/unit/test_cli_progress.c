/*
 * test_cli_progress.c -- the progress line of `snn model run` and `snn replay`
 * (clients/progress.h): when it is drawn, what it says, and that it stays silent when off
 * or before PROGRESS_AFTER_S.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "progress.h"

/* Starts p forced on, writing into a temporary file instead of stderr, as a non-terminal. */
static FILE *start_into_file(cli_progress *p, double total, const char *unit)
{
    cli_progress_start(p, PROGRESS_ON, "in.wav", total, unit);
    assert_non_null(p->f);
    FILE *f = tmpfile();
    assert_non_null(f);
    p->f = f;
    p->tty = 0;
    return f;
}

static void contents(FILE *f, char *buf, size_t len)
{
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
}

static void test_silent_at_first_then_drawn(void **st)
{
    (void)st;
    cli_progress p;
    FILE *f = start_into_file(&p, 300.0, NULL);
    char buf[512];
    cli_progress_update(&p, 10.0); /* right after the start: not yet */
    contents(f, buf, sizeof buf);
    assert_string_equal(buf, "");
    p.t0 -= 2.0; /* two seconds into the work */
    p.last -= 2.0 * PROGRESS_EVERY_FILE_S;
    cli_progress_update(&p, 150.0);
    contents(f, buf, sizeof buf);
    assert_non_null(strstr(buf, "snn: 50% of in.wav (150.0 of 300.0 s of input, "));
    assert_non_null(strstr(buf, "x real time)\n"));
    /* the next update comes only after PROGRESS_EVERY_FILE_S */
    cli_progress_update(&p, 160.0);
    contents(f, buf, sizeof buf);
    assert_null(strstr(buf, "160.0"));
    cli_progress_end(&p);
    fclose(f);
}

static void test_rows(void **st)
{
    (void)st;
    cli_progress p;
    FILE *f = start_into_file(&p, 4000.0, "rows");
    p.t0 -= 2.0;
    p.last -= 2.0 * PROGRESS_EVERY_FILE_S;
    cli_progress_update(&p, 1000.0);
    char buf[512];
    contents(f, buf, sizeof buf);
    assert_string_equal(buf, "snn: 25% of in.wav (1000 of 4000 rows)\n");
    cli_progress_end(&p);
    fclose(f);
}

static void test_off(void **st)
{
    (void)st;
    cli_progress p;
    cli_progress_start(&p, PROGRESS_OFF, "in.wav", 10.0, NULL);
    assert_null(p.f);
    cli_progress_update(&p, 5.0); /* no stream to write to: must not crash */
    cli_progress_end(&p);
    cli_progress_start(&p, PROGRESS_ON, "in.wav", 0.0, NULL); /* nothing to track */
    assert_null(p.f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_silent_at_first_then_drawn),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_off),
    };
    return cmocka_run_group_tests_name("cli_progress", tests, NULL, NULL);
}
