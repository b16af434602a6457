/*
 * progress.c -- the progress line of progress.h.
 */
#include "progress.h"

#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void cli_progress_start(cli_progress *p, progress_mode mode, const char *what, double total,
                        const char *unit)
{
    int tty = isatty(STDERR_FILENO);
    *p = (cli_progress){.f = NULL, .tty = tty, .stdout_tty = tty && isatty(STDOUT_FILENO), .what = what,
                        .total = total, .unit = unit};
    if (mode == PROGRESS_OFF || (mode == PROGRESS_AUTO && !tty) || total <= 0)
        return;
    p->f = stderr;
    p->t0 = p->last = now_s();
}

void cli_progress_update(cli_progress *p, double done)
{
    if (!p->f)
        return;
    double t = now_s();
    if (t - p->t0 < PROGRESS_AFTER_S || t - p->last < (p->tty ? PROGRESS_EVERY_S : PROGRESS_EVERY_FILE_S))
        return;
    p->last = t;
    double pct = 100.0 * done / p->total;
    if (!p->unit)
        fprintf(p->f, "%ssnn: %.0f%% of %s (%.1f of %.1f s of input, %.1fx real time)%s", p->tty ? "\r" : "",
                pct, p->what, done, p->total, done / (t - p->t0), p->tty ? "\033[K" : "\n");
    else
        fprintf(p->f, "%ssnn: %.0f%% of %s (%.0f of %.0f %s)%s", p->tty ? "\r" : "", pct, p->what, done,
                p->total, p->unit, p->tty ? "\033[K" : "\n");
    fflush(p->f);
    p->drawn = p->tty;
}

static void erase(cli_progress *p)
{
    fputs("\r\033[K", p->f);
    fflush(p->f);
    p->drawn = 0;
}

void cli_progress_clear(cli_progress *p)
{
    if (p && p->f && p->drawn && p->stdout_tty)
        erase(p);
}

void cli_progress_erase(cli_progress *p)
{
    if (p && p->f && p->drawn)
        erase(p);
}

void cli_progress_end(cli_progress *p)
{
    if (!p)
        return;
    if (p->f && p->drawn)
        erase(p);
    p->f = NULL;
}
