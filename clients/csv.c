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

/* Trims spaces and tabs at both ends of s (in place) and returns it. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Splits line at commas into at most max cells (pointers into line).
 * Returns the number of cells, or max + 1 if there are more. */
static size_t split(char *line, char **cells, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (n == max)
            return max + 1;
        cells[n++] = trim(p);
        if (!comma)
            return n;
        p = comma + 1;
    }
}

/* Parses a whole cell as a finite number. */
static int parse_double(const char *s, double *v)
{
    if (*s == '\0')
        return -1;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return (*end == '\0' && errno == 0 && isfinite(*v)) ? 0 : -1;
}

static int parse_float(const char *s, float *v)
{
    if (*s == '\0')
        return -1;
    char *end;
    errno = 0;
    *v = strtof(s, &end);
    return (*end == '\0' && errno == 0 && isfinite(*v)) ? 0 : -1;
}

static int is_bookkeeping(const char *name)
{
    static const char *const skip[] = {"label", "sample", "letter", "repetition", "t_index",
                                       "t_s",   "step",   "index",  "id"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(name, skip[i]) == 0)
            return 1;
    return 0;
}

static int is_channel_name(const char *name)
{
    return strncmp(name, "taxel_", 6) == 0 || strncmp(name, "ch", 2) == 0 ||
           strncmp(name, "unit_", 5) == 0;
}

/* Returns the next line of buf (NUL-terminated in place, CR stripped) and
 * advances *pos; NULL at the end. */
static char *next_line(char *buf, size_t len, size_t *pos)
{
    if (*pos >= len)
        return NULL;
    char *line = buf + *pos;
    char *nl = memchr(line, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - line) : len - *pos;
    line[n] = '\0';
    *pos += n + 1;
    if (n > 0 && line[n - 1] == '\r')
        line[n - 1] = '\0';
    return line;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
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

int snn_csv_parse(const char *text, size_t len, const char *name, uint32_t n_expected,
                  snn_csv *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = -1;
    char *buf = malloc(len + 1);
    char **cells = NULL, **header = NULL;
    int *col_ch = NULL; /* per column: channel index, -2 = t, -1 = ignored */
    size_t cap_rows = 0;
    if (!buf)
        return fail(err, errlen, "%s: out of memory", name);
    memcpy(buf, text, len);
    buf[len] = '\0';

    size_t pos = 0, lineno = 0;
    char *line;
    do {
        line = next_line(buf, len, &pos);
        lineno++;
    } while (line && blank(line));
    if (!line) {
        fail(err, errlen, "%s: empty file, expected a header line", name);
        goto done;
    }
    size_t n_cols = 1;
    for (const char *p = line; *p; p++)
        n_cols += *p == ',';
    header = calloc(n_cols, sizeof *header);
    cells = calloc(n_cols + 1, sizeof *cells);
    col_ch = calloc(n_cols, sizeof *col_ch);
    if (!header || !cells || !col_ch) {
        fail(err, errlen, "%s: out of memory", name);
        goto done;
    }
    split(line, header, n_cols);
    int t_col = -1, any_named = 0;
    for (size_t j = 0; j < n_cols; j++) {
        if (header[j][0] == '\0') {
            fail(err, errlen, "%s:%zu: column %zu has an empty name", name, lineno, j + 1);
            goto done;
        }
        for (size_t k = 0; k < j; k++)
            if (strcmp(header[j], header[k]) == 0) {
                fail(err, errlen, "%s:%zu: column '%s' appears twice", name, lineno, header[j]);
                goto done;
            }
        if (strcmp(header[j], "t") == 0)
            t_col = (int)j;
        else if (is_channel_name(header[j]))
            any_named = 1;
    }
    size_t header_line = lineno;

    /* Rule 3 looks at the first data row to tell numeric columns apart; it
     * reads a copy of it from the untouched text. */
    size_t first_pos = pos;
    char *first = NULL;
    if (!any_named) {
        size_t p = pos;
        while (p < len) {
            const char *nl = memchr(text + p, '\n', len - p);
            size_t n = nl ? (size_t)(nl - (text + p)) : len - p;
            first = strndup(text + p, n);
            if (!first) {
                fail(err, errlen, "%s: out of memory", name);
                goto done;
            }
            size_t fl = strlen(first); /* < n when the line holds a NUL byte */
            if (fl > 0 && first[fl - 1] == '\r')
                first[fl - 1] = '\0';
            if (!blank(first))
                break;
            free(first);
            first = NULL;
            p += n + 1;
        }
    }
    uint32_t n_ch = 0;
    {
        size_t nf = 0;
        if (first)
            nf = split(first, cells, n_cols);
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
                take = !is_bookkeeping(header[j]) && first && j < nf && nf <= n_cols &&
                       parse_double(cells[j], &v) == 0;
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
    if (n_expected > 0 && n_ch != n_expected) {
        const char *firstname = NULL, *lastname = NULL;
        for (size_t j = 0; j < n_cols; j++)
            if (col_ch[j] >= 0) {
                if (!firstname)
                    firstname = header[j];
                lastname = header[j];
            }
        fail(err, errlen, "%s: %u input columns (%s..%s), the model has %u inputs", name, n_ch,
             firstname, lastname, n_expected);
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

    lineno = header_line;
    while ((line = next_line(buf, len, &pos))) {
        lineno++;
        if (blank(line))
            continue;
        size_t nc = split(line, cells, n_cols);
        if (nc != n_cols) {
            fail(err, errlen, "%s:%zu: %s%zu cells, the header has %zu columns", name, lineno,
                 nc > n_cols ? "more than " : "", nc > n_cols ? n_cols : nc, n_cols);
            goto done;
        }
        if (out->n_rows == cap_rows) {
            size_t cap = cap_rows ? cap_rows * 2 : 256;
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
            if (col_ch[j] == -2) {
                double t;
                if (parse_double(cells[j], &t) < 0 || t < 0) {
                    fail(err, errlen, "%s:%zu: column t: '%s' is not a time in seconds >= 0",
                         name, lineno, cells[j]);
                    goto done;
                }
                out->t[out->n_rows] = t;
            } else if (col_ch[j] >= 0 && parse_float(cells[j], &row[col_ch[j]]) < 0) {
                fail(err, errlen, "%s:%zu: column %s: '%s' is not a number", name, lineno,
                     header[j], cells[j]);
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
    free(buf);
    free(cells);
    free(header);
    free(col_ch);
    if (rc < 0)
        snn_csv_free(out);
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
        size_t k = fread(text + len, 1, cap - len, f);
        len += k;
        if (k == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return fail(err, errlen, "%s: read error", path);
    }
    int rc = snn_csv_parse(text ? text : "", len, path, n_expected, out, err, errlen);
    free(text);
    return rc;
}
