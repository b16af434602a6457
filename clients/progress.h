/*
 * progress.h -- a progress line on stderr for long offline work (`snn model run`,
 * `snn replay`).
 *
 * Shown only on a terminal (or when asked for), only once the work has taken more than
 * PROGRESS_AFTER_S seconds, and redrawn at most every PROGRESS_EVERY_S seconds:
 *   snn: 42% of long.wav (141.0 of 337.3 s of input, 12.3x real time)
 * On a terminal the line is rewritten in place ("\r") and erased at the end and before
 * each write to stdout when stdout is that terminal too, so the output is unchanged; when forced onto a non-terminal (--progress), each update
 * is a line of its own, every PROGRESS_EVERY_FILE_S seconds.
 */
#ifndef SNN_CLI_PROGRESS_H
#define SNN_CLI_PROGRESS_H

#include <stdio.h>

#define PROGRESS_AFTER_S 1.0
#define PROGRESS_EVERY_S 0.25
#define PROGRESS_EVERY_FILE_S 5.0

typedef enum progress_mode { PROGRESS_AUTO = 0, PROGRESS_ON, PROGRESS_OFF } progress_mode;

typedef struct cli_progress {
    FILE *f;          /* stderr, or NULL when off */
    int tty;          /* 1: redraw in place */
    int stdout_tty;   /* 1: stdout shares the terminal: erase the line before output */
    const char *what; /* the input's name */
    double total;     /* units of input to do */
    const char *unit; /* "rows", "clips", ...; NULL: seconds of input */
    double t0, last;  /* monotonic seconds: start, last redraw */
    int drawn;        /* a line is on the terminal */
} cli_progress;

/* Starts tracking work over total units of input named what (both strings borrowed: they
 * must outlive p): unit NULL for seconds of input (the line then gives the real-time
 * factor), else the unit's name ("rows", "clips"). PROGRESS_AUTO shows the line only when
 * stderr is a terminal. */
void cli_progress_start(cli_progress *p, progress_mode mode, const char *what, double total,
                        const char *unit);

/* Reports done units of input so far; draws the line when it is due. Cheap when not due. */
void cli_progress_update(cli_progress *p, double done);

/* Erases the line from the terminal before the command writes to stdout, where stdout is
 * that terminal too; the next due update draws it again. p may be NULL. */
void cli_progress_clear(cli_progress *p);

/* Erases the line from the terminal before the command writes a message to stderr; the
 * next due update draws it again. p may be NULL. */
void cli_progress_erase(cli_progress *p);

/* Erases the line from the terminal (a non-terminal keeps its lines) and stops. Call before
 * the command prints an error or finishes. p may be NULL. */
void cli_progress_end(cli_progress *p);

#endif
