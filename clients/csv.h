/*
 * csv.h -- the CSV input of `snn model run` and `snn replay`.
 *
 * A file is a header line of column names, then one row per bin (spike or
 * binned models: a row holds the counts of one bin) or per timestamped frame
 * (tactile and analog models). UTF-8 (a leading byte order mark is skipped)
 * or ASCII; separator ','; lines end in LF, CRLF or CR; empty lines are
 * skipped; cells may be surrounded by spaces. A cell may be in double quotes
 * ("a,b" is one cell, "" inside quotes is one quote), names and numbers too;
 * a quoted cell ends on its line. A header with no ',' but ';' or a tab is
 * an error that says so.
 *
 * Which columns are read (the rule, in order):
 *   1. A column named exactly "t" is the time in seconds (bin start, or the
 *      frame's time). It is optional.
 *   2. If any column name starts with "taxel_", "ch" or "unit_", the input
 *      channels are exactly those columns. When all of them are one prefix
 *      and a number, all numbers different (taxel_0..taxel_11, ch1..ch96,
 *      unit_1011..), the channels are in the order of those numbers,
 *      whatever the column order; otherwise in file order.
 *   3. Otherwise the channels are every other column whose cell in the first
 *      data row is a number, except the bookkeeping columns label, sample,
 *      letter, repetition, t_index, t_s, step, index and id.
 * Every other column is ignored, so are columns with an empty name (the
 * index pandas writes, a trailing ','), and their names may repeat; t or a
 * channel name twice is an error. Each channel cell (and t) of every row
 * must then be a decimal number (as 12, -0.5, 1e-3 or 1.5E+02; not nan, inf,
 * hex or empty; too small for a float reads as 0 or subnormal, too large is
 * an error); the error names the row (1-based line number) and column.
 */
#ifndef SNN_CSV_H
#define SNN_CSV_H

#include <stddef.h>
#include <stdint.h>

typedef struct snn_csv {
    uint32_t n_ch;       /* input channels per row */
    char **ch_names;     /* n_ch column names */
    int has_t;           /* 1 if the file has a "t" column */
    size_t n_rows;
    double *t;           /* n_rows times in seconds (NULL without a t column) */
    float *values;       /* n_rows * n_ch, row-major */
} snn_csv;

/* Parses text[0..len) (name is used in error messages) into *out. When
 * n_expected > 0, a channel count other than n_expected is an error naming
 * both counts (and, for numbered channels, up to 3 numbers missing between
 * the lowest and the highest: "; missing taxel_5"). Returns 0, or -1 with one line in err (errlen bytes) such as
 * "in.csv:5: column ch3: 'x' is not a number". On error *out is empty. */
int snn_csv_parse(const char *text, size_t len, const char *name, uint32_t n_expected,
                  snn_csv *out, char *err, size_t errlen);

/* Reads the file at path and parses it as snn_csv_parse() does. */
int snn_csv_load(const char *path, uint32_t n_expected, snn_csv *out, char *err, size_t errlen);

/* Frees what a successful parse allocated and zeroes *csv. */
void snn_csv_free(snn_csv *csv);

#endif
