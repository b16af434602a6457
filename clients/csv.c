/*
 * csv.c -- reads the CSV input files of the CLI (rules in csv.h).
 */
#include "csv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Splits line at the commas outside double quotes into at most max cells
 * (pointers into line, each NUL-terminated in place). Spaces and tabs around a
 * cell are removed; a cell in double quotes loses its quotes and "" inside it
 * is one quote, so "a,b" is the one cell a,b. Returns the number of cells,
 * max + 1 if there are more, or 0 with *bad = the 1-based cell when a quote
 * is not closed on the line or text follows the closing quote. */
static size_t split(char *line, char **cells, size_t max, size_t *bad)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *cell = p, *end;
        if (*p == '"') {
            char *w = p++; /* the unquoted text is copied down over the quote */
            for (;;) {
                if (*p == '\0') {
                    *bad = n + 1;
                    return 0;
                }
                if (*p == '"' && p[1] != '"')
                    break;
                if (*p == '"')
                    p++;
                *w++ = *p++;
            }
            end = w;
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ',' && *p != '\0') {
                *bad = n + 1;
                return 0;
            }
        } else {
            while (*p != ',' && *p != '\0')
                p++;
            end = p;
            while (end > cell && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        }
        int more = *p == ',';
        *end = '\0';
        if (n == max)
            return max + 1;
        cells[n++] = cell;
        if (!more)
            return n;
        p++;
    }
}

/* Returns 1 if s is a decimal number as numpy, pandas and spreadsheets write
 * them: an optional sign, digits with at most one '.', then optionally e or E,
 * a sign and digits. Hex, inf and nan, which strtod would also take, are not. */
static int is_decimal(const char *s)
{
    size_t digits = 0;
    if (*s == '+' || *s == '-')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    if (digits == 0)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (*s < '0' || *s > '9')
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* Parses a whole cell as a finite decimal number (is_decimal()). Returns 0,
 * -1 if it is not a number, -2 if it is one but overflows a double. A number
 * too small for a double reads as the nearest one (0 or subnormal). */
static int parse_double(const char *s, double *v)
{
    if (!is_decimal(s))
        return -1;
    char *end;
    *v = strtod(s, &end);
    if (*end != '\0')
        return -1;
    return isfinite(*v) ? 0 : -2;
}

/* As parse_double() for a float; plain integers of up to 7 digits (exact in
 * a float, the usual spike counts and raw sensor values) skip strtof. */
static int parse_float(const char *s, float *v)
{
    const char *p = s + (*s == '-' || *s == '+');
    uint32_t x = 0;
    size_t k = 0;
    while (k < 8 && p[k] >= '0' && p[k] <= '9')
        x = x * 10 + (uint32_t)(p[k++] - '0');
    if (k > 0 && k < 8 && p[k] == '\0') {
        *v = *s == '-' ? -(float)x : (float)x;
        return 0;
    }
    if (!is_decimal(s))
        return -1;
    char *end;
    *v = strtof(s, &end);
    if (*end != '\0')
        return -1;
    return isfinite(*v) ? 0 : -2;
}

/* Returns 1 for the bookkeeping column names rule 3 (csv.h) skips. */
static int is_bookkeeping(const char *name)
{
    static const char *const skip[] = {"label", "sample", "letter", "repetition", "t_index",
                                       "t_s",   "step",   "index",  "id"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(name, skip[i]) == 0)
            return 1;
    return 0;
}

/* Returns the length of the channel prefix (taxel_, ch or unit_) name starts
 * with, 0 if none. */
static size_t channel_prefix(const char *name)
{
    if (strncmp(name, "taxel_", 6) == 0)
        return 6;
    if (strncmp(name, "unit_", 5) == 0)
        return 5;
    return strncmp(name, "ch", 2) == 0 ? 2 : 0;
}

/* Returns 1 for the channel names of rule 2 (csv.h). */
static int is_channel_name(const char *name) { return channel_prefix(name) > 0; }

/* Finds the line that starts at buf[pos] (pos < len): its length without the
 * line end (LF, CRLF or a lone CR) in *n. Returns where the next line starts,
 * len after the last line. */
static size_t line_end(const char *buf, size_t len, size_t pos, size_t *n)
{
    const char *line = buf + pos;
    size_t rest = len - pos;
    const char *nl = memchr(line, '\n', rest);
    *n = nl ? (size_t)(nl - line) : rest;
    const char *cr = memchr(line, '\r', *n);
    if (!cr)
        return nl ? pos + *n + 1 : len;
    *n = (size_t)(cr - line);
    return pos + *n + (*n + 1 < rest && line[*n + 1] == '\n' ? 2 : 1);
}

/* Returns the next line of buf (NUL-terminated in place, without its line
 * end) and advances *pos; NULL at the end. */
static char *next_line(char *buf, size_t len, size_t *pos)
{
    if (*pos >= len)
        return NULL;
    size_t n, next = line_end(buf, len, *pos, &n);
    char *line = buf + *pos;
    line[n] = '\0';
    *pos = next;
    return line;
}

/* Returns 1 if s holds only spaces and tabs. */
static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
}

/* A channel column and the number in its name. */
typedef struct {
    long num;
    size_t col;
} numbered;

/* qsort() order of numbered by number. */
static int cmp_numbered(const void *a, const void *b)
{
    const numbered *x = a, *y = b;
    return (x->num > y->num) - (x->num < y->num);
}

/* qsort() order of long. */
static int cmp_long(const void *a, const void *b)
{
    const long *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

/* Rule 2 of csv.h: when every channel column is the same prefix followed by
 * a decimal number (taxel_0..taxel_11, ch1..ch96, unit_1011..), numbers all
 * different, renumbers col_ch[0..n_cols) so that channels follow those
 * numbers, whatever the column order (taxel_10 after taxel_9 even in a file
 * sorted as text). Otherwise channels stay in file order. Returns -1 only
 * when out of memory. */
static int order_by_number(char **header, size_t n_cols, int *col_ch, uint32_t n_ch)
{
    numbered *v = malloc(n_ch * sizeof *v);
    if (!v)
        return -1;
    const char *prefix = NULL;
    size_t plen = 0, k = 0;
    for (size_t j = 0; j < n_cols; j++) {
        if (col_ch[j] < 0)
            continue;
        const char *name = header[j];
        size_t pl = channel_prefix(name);
        if (!prefix) {
            prefix = name;
            plen = pl;
        }
        if (pl != plen || strncmp(name, prefix, plen) != 0)
            goto keep;
        const char *d = name + pl;
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || nd > 9 || d[nd] != '\0')
            goto keep;
        v[k++] = (numbered){strtol(d, NULL, 10), j};
    }
    qsort(v, k, sizeof *v, cmp_numbered);
    for (size_t i = 1; i < k; i++)
        if (v[i].num == v[i - 1].num)
            goto keep;
    for (size_t i = 0; i < k; i++)
        col_ch[v[i].col] = (int)i;
keep:
    free(v);
    return 0;
}

/* For the channel count error: when every channel column is one prefix and a
 * number (rule 2 of csv.h), writes the numbers missing between the lowest and
 * the highest to buf as "; missing taxel_5" (at most 3 names, then ", ..."),
 * so a dropped column is named; otherwise (or with no gap) buf is "". */
static void missing_channels(char **header, size_t n_cols, const int *col_ch, uint32_t n_ch, char *buf,
                             size_t len)
{
    buf[0] = '\0';
    long *num = malloc(n_ch * sizeof *num);
    if (!num)
        return;
    const char *prefix = NULL;
    size_t plen = 0, k = 0;
    for (size_t j = 0; j < n_cols; j++) {
        if (col_ch[j] < 0)
            continue;
        size_t pl = channel_prefix(header[j]);
        if (!prefix) {
            prefix = header[j];
            plen = pl;
        }
        const char *d = header[j] + pl;
        size_t nd = strspn(d, "0123456789");
        if (pl == 0 || pl != plen || strncmp(header[j], prefix, plen) != 0 || nd == 0 || nd > 9 || d[nd] != '\0')
            goto done;
        num[k++] = strtol(d, NULL, 10);
    }
    qsort(num, k, sizeof *num, cmp_long);
    size_t used = 0, listed = 0;
    for (size_t i = 1; i < k && listed <= 3; i++)
        for (long v = num[i - 1] + 1; v < num[i] && listed <= 3; v++, listed++) {
            int w = listed == 3 ? snprintf(buf + used, len - used, ", ...")
                                : snprintf(buf + used, len - used, "%s%.*s%ld", listed ? ", " : "; missing ",
                                           (int)plen, prefix, v);
            if (w < 0 || (size_t)w >= len - used) {
                buf[used] = '\0';
                goto done;
            }
            used += (size_t)w;
        }
done:
    free(num);
}

void snn_csv_free(snn_csv *csv)
{
    if (csv->ch_names)
        for (uint32_t i = 0; i < csv->n_ch; i++)
            free(csv->ch_names[i]);
    free(csv->ch_names);
    free(csv->t);
    free(csv->values);
    memset(csv, 0, sizeof *csv);
}

/* snn_csv_parse() on buf[0..len), which it may change; buf[len] must be a
 * byte it may write (snn_csv_load() parses its read buffer without a copy). */
static int parse_in_place(char *buf, size_t len, const char *name, uint32_t n_expected,
                          snn_csv *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = -1;
    char **cells = NULL, **header = NULL;
    int *col_ch = NULL; /* per column: channel index, -2 = t, -1 = ignored */
    size_t cap_rows = 0, bad = 0;
    buf[len] = '\0';

    if (len >= 2 && ((buf[0] == '\xff' && buf[1] == '\xfe') || (buf[0] == '\xfe' && buf[1] == '\xff')))
        return fail(err, errlen, "%s: the file is UTF-16 text, expected UTF-8 or ASCII", name);
    size_t pos = len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0 ? 3 : 0; /* UTF-8 BOM */
    size_t lineno = 0;
    char *line;
    do {
        line = next_line(buf, len, &pos);
        lineno++;
    } while (line && blank(line));
    if (!line)
        return fail(err, errlen, "%s: empty file, expected a header line", name);
    if (!strchr(line, ',') && strpbrk(line, ";\t"))
        return fail(err, errlen, "%s:%zu: the header has no ',' but '%s': columns must be "
                    "separated by ','", name, lineno, strchr(line, ';') ? ";" : "\\t");
    size_t n_cols = 1;
    for (const char *p = line; *p; p++)
        n_cols += *p == ','; /* at least the cells, fewer when quotes hold commas */
    header = calloc(n_cols, sizeof *header);
    cells = calloc(n_cols + 1, sizeof *cells);
    col_ch = calloc(n_cols, sizeof *col_ch);
    if (!header || !cells || !col_ch) {
        fail(err, errlen, "%s: out of memory", name);
        goto done;
    }
    n_cols = split(line, header, n_cols, &bad);
    if (n_cols == 0) {
        fail(err, errlen, "%s:%zu: column %zu: a quote is not closed, or text follows the "
             "closing quote", name, lineno, bad);
        goto done;
    }
    int t_col = -1, any_named = 0;
    for (size_t j = 0; j < n_cols; j++) {
        if (strcmp(header[j], "t") == 0) {
            if (t_col >= 0) {
                fail(err, errlen, "%s:%zu: column 't' appears twice", name, lineno);
                goto done;
            }
            t_col = (int)j;
        } else if (is_channel_name(header[j])) {
            any_named = 1;
        }
    }
    size_t header_line = lineno;

    /* Rule 3 looks at the first data row to tell numeric columns apart; it
     * reads a copy of it, the buffer is still untouched there. */
    size_t first_pos = pos;
    char *first = NULL;
    if (!any_named) {
        size_t p = pos, n;
        while (p < len) {
            size_t next = line_end(buf, len, p, &n);
            first = strndup(buf + p, n);
            if (!first) {
                fail(err, errlen, "%s: out of memory", name);
                goto done;
            }
            if (!blank(first))
                break;
            free(first);
            first = NULL;
            p = next;
        }
    }
    uint32_t n_ch = 0;
    {
        size_t nf = 0;
        if (first)
            nf = split(first, cells, n_cols, &bad);
        for (size_t j = 0; j < n_cols; j++) {
            col_ch[j] = -1;
            if ((int)j == t_col) {
                col_ch[j] = -2;
                continue;
            }
            int take;
            if (any_named) {
                take = is_channel_name(header[j]);
            } else {
                double v;
                take = header[j][0] != '\0' && !is_bookkeeping(header[j]) && first && j < nf &&
                       nf <= n_cols && parse_double(cells[j], &v) == 0;
            }
            if (take)
                col_ch[j] = (int)n_ch++;
        }
        free(first);
    }
    pos = first_pos;
    if (n_ch == 0) {
        fail(err, errlen, "%s:%zu: no input columns (expected columns named taxel_*, ch* or "
             "unit_*, or numeric columns)", name, header_line);
        goto done;
    }
    for (size_t j = 0; j < n_cols; j++)
        for (size_t k = 0; k < j && col_ch[j] >= 0; k++)
            if (col_ch[k] >= 0 && strcmp(header[j], header[k]) == 0) {
                fail(err, errlen, "%s:%zu: column '%s' appears twice", name, header_line,
                     header[j]);
                goto done;
            }
    if (n_expected > 0 && n_ch != n_expected) {
        const char *firstname = NULL, *lastname = NULL;
        for (size_t j = 0; j < n_cols; j++)
            if (col_ch[j] >= 0) {
                if (!firstname)
                    firstname = header[j];
                lastname = header[j];
            }
        char gaps[160];
        missing_channels(header, n_cols, col_ch, n_ch, gaps, sizeof gaps);
        fail(err, errlen, "%s: %u input columns (%s..%s%s), the model has %u inputs", name, n_ch,
             firstname, lastname, gaps, n_expected);
        goto done;
    }
    if (any_named && order_by_number(header, n_cols, col_ch, n_ch) < 0) {
        fail(err, errlen, "%s: out of memory", name);
        goto done;
    }
    out->n_ch = n_ch;
    out->has_t = t_col >= 0;
    out->ch_names = calloc(n_ch, sizeof *out->ch_names);
    if (!out->ch_names) {
        fail(err, errlen, "%s: out of memory", name);
        goto done;
    }
    for (size_t j = 0; j < n_cols; j++)
        if (col_ch[j] >= 0 && !(out->ch_names[col_ch[j]] = strdup(header[j]))) {
            fail(err, errlen, "%s: out of memory", name);
            goto done;
        }

    /* A data row takes at least n_cols - 1 commas and a line end, so this
     * bounds the rows; the arrays are allocated once for big files. */
    size_t lines = 1;
    for (const char *p = buf + pos; (p = memchr(p, '\n', len - (size_t)(p - buf))); p++)
        lines++;
    size_t bound = (len - pos) / n_cols + 1;
    size_t want_rows = lines < bound ? lines : bound;
    lineno = header_line;
    while ((line = next_line(buf, len, &pos))) {
        lineno++;
        if (blank(line))
            continue;
        size_t nc = split(line, cells, n_cols, &bad);
        if (nc == 0) {
            if (bad <= n_cols)
                fail(err, errlen, "%s:%zu: column %s: a quote is not closed, or text follows "
                     "the closing quote", name, lineno, header[bad - 1]);
            else
                fail(err, errlen, "%s:%zu: more than %zu cells, the header has %zu columns",
                     name, lineno, n_cols, n_cols);
            goto done;
        }
        if (nc != n_cols) {
            fail(err, errlen, "%s:%zu: %s%zu cells, the header has %zu columns", name, lineno,
                 nc > n_cols ? "more than " : "", nc > n_cols ? n_cols : nc, n_cols);
            goto done;
        }
        if (out->n_rows == cap_rows) {
            size_t cap = cap_rows ? cap_rows * 2 : want_rows > 256 ? want_rows : 256;
            float *v = realloc(out->values, cap * n_ch * sizeof *v);
            if (v)
                out->values = v;
            double *t = out->has_t ? realloc(out->t, cap * sizeof *t) : NULL;
            if (t)
                out->t = t;
            if (!v || (out->has_t && !t)) {
                fail(err, errlen, "%s: out of memory at row %zu", name, lineno);
                goto done;
            }
            cap_rows = cap;
        }
        float *row = out->values + out->n_rows * n_ch;
        for (size_t j = 0; j < n_cols; j++) {
            int r = 0;
            if (col_ch[j] == -2) {
                double t;
                if (parse_double(cells[j], &t) < 0 || t < 0) {
                    fail(err, errlen, "%s:%zu: column t: '%s' is not a time in seconds >= 0",
                         name, lineno, cells[j]);
                    goto done;
                }
                out->t[out->n_rows] = t;
            } else if (col_ch[j] >= 0 && (r = parse_float(cells[j], &row[col_ch[j]])) < 0) {
                fail(err, errlen, "%s:%zu: column %s: '%s' is %s", name, lineno, header[j],
                     cells[j], r == -2 ? "beyond the range of a float" : "not a number");
                goto done;
            }
        }
        out->n_rows++;
    }
    if (out->n_rows == 0) {
        fail(err, errlen, "%s: no data rows after the header", name);
        goto done;
    }
    rc = 0;
done:
    free(cells);
    free(header);
    free(col_ch);
    if (rc < 0)
        snn_csv_free(out);
    return rc;
}

int snn_csv_parse(const char *text, size_t len, const char *name, uint32_t n_expected,
                  snn_csv *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *buf = malloc(len + 1);
    if (!buf)
        return fail(err, errlen, "%s: out of memory", name);
    memcpy(buf, text, len);
    int rc = parse_in_place(buf, len, name, n_expected, out, err, errlen);
    free(buf);
    return rc;
}

int snn_csv_load(const char *path, uint32_t n_expected, snn_csv *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return fail(err, errlen, "%s: out of memory", path);
            }
            text = t;
        }
        errno = 0;
        size_t k = fread(text + len, 1, cap - len, f);
        len += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f) ? (errno ? errno : EIO) : 0; /* a directory: EISDIR */
    fclose(f);
    if (bad) {
        free(text);
        return fail(err, errlen, "%s: %s", path, strerror(bad));
    }
    int rc = parse_in_place(text, len, path, n_expected, out, err, errlen); /* len < cap */
    free(text);
    return rc;
}
