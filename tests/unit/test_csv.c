/*
 * test_csv.c -- the CLI's CSV reader picks the documented columns, reads
 * every number exactly, and names the line and column of every bad cell.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "csv.h"
#include "testutil.h"

static int parse(const char *text, uint32_t n_expected, snn_csv *c, char *err)
{
    return snn_csv_parse(text, strlen(text), "in.csv", n_expected, c, err, 256);
}

/* Expects a parse failure whose message contains want. */
static void expect_error(const char *text, uint32_t n_expected, const char *want)
{
    snn_csv c;
    char err[256] = "";
    int rc = parse(text, n_expected, &c, err);
    if (rc >= 0 || !strstr(err, want))
        fail_msg("expected error containing \"%s\", got rc %d: \"%s\"", want, rc, err);
    assert_null(c.values);
    assert_int_equal(c.n_rows, 0);
}

/* A t column and ch* columns: t read as seconds, channels in file order. */
static void header_with_t_and_channels(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("t,ch0,ch1,ch2\n0,1,0,2\n0.004,0,3,0.5\n", 3, &c, err), 0);
    assert_int_equal(c.n_ch, 3);
    assert_int_equal(c.n_rows, 2);
    assert_true(c.has_t);
    assert_string_equal(c.ch_names[0], "ch0");
    assert_string_equal(c.ch_names[2], "ch2");
    assert_true(c.t[0] == 0.0 && c.t[1] == 0.004);
    const float want[6] = {1, 0, 2, 0, 3, 0.5f};
    assert_memory_equal(c.values, want, sizeof want);
    snn_csv_free(&c);
    assert_null(c.values);
}

/* Without a t column has_t is 0 and t is NULL. */
static void t_column_is_optional(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("ch0,ch1\n1,2\n", 2, &c, err), 0);
    assert_false(c.has_t);
    assert_null(c.t);
    assert_int_equal(c.n_rows, 1);
    snn_csv_free(&c);
}

/* Named channel columns win: label, sample, t_s etc. are ignored, even when
 * numeric, and channels keep their file order around them. */
static void bookkeeping_columns_are_ignored(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    const char *text = "sample,letter,label,repetition,t_index,t_s,taxel_0,taxel_1\n"
                       "0,A,1,0,0,0,255,254\n0,A,1,0,1,0.025,250,12\n";
    assert_int_equal(parse(text, 2, &c, err), 0);
    assert_int_equal(c.n_ch, 2);
    assert_false(c.has_t);
    const float want[4] = {255, 254, 250, 12};
    assert_memory_equal(c.values, want, sizeof want);
    snn_csv_free(&c);
}

/* unit_* columns of a neural recording are the channels; timestamp is not. */
static void unit_columns_are_channels(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("timestamp,hand_vel_x,unit_1,unit_7\n0.001,3.5,0,1\n", 0, &c, err), 0);
    assert_int_equal(c.n_ch, 2);
    assert_string_equal(c.ch_names[1], "unit_7");
    assert_true(c.values[0] == 0.0f && c.values[1] == 1.0f);
    snn_csv_free(&c);
}

/* Without named channels, every numeric column except bookkeeping ones is a
 * channel; a text column is skipped. */
static void unnamed_numeric_columns_are_channels(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("t,label,name,a,b\n0.5,3,foo,1.5,-2\n", 2, &c, err), 0);
    assert_int_equal(c.n_ch, 2);
    assert_string_equal(c.ch_names[0], "a");
    assert_string_equal(c.ch_names[1], "b");
    assert_true(c.values[0] == 1.5f && c.values[1] == -2.0f);
    assert_true(c.t[0] == 0.5);
    snn_csv_free(&c);
}

/* A channel count other than the model's names both counts and the columns. */
static void wrong_column_count_error(void **u)
{
    (void)u;
    expect_error("t,ch0,ch1,ch2\n0,1,1,1\n", 4, "in.csv: 3 input columns (ch0..ch2), the model has 4 inputs");
    /* a dropped column is named (numbers missing between the lowest and the highest) */
    expect_error("t,taxel_0,taxel_1,taxel_3\n0,1,1,1\n", 4,
                 "in.csv: 3 input columns (taxel_0..taxel_3; missing taxel_2), the model has 4 inputs");
    expect_error("ch1,ch3,ch5,ch7,ch9,ch11\n1,1,1,1,1,1\n", 12,
                 "in.csv: 6 input columns (ch1..ch11; missing ch2, ch4, ch6, ...), the model has 12 inputs");
    expect_error("taxel_0,taxel_1,taxel_2,taxel_3,taxel_4\n1,1,1,1,1\n", 12,
                 "in.csv: 5 input columns (taxel_0..taxel_4), the model has 12 inputs");
}

/* A non-numeric cell is reported with its line number and column name. */
static void non_numeric_cell_names_row_and_column(void **u)
{
    (void)u;
    expect_error("t,ch0,ch1\n0,1,2\n0.004,1,x\n", 2, "in.csv:3: column ch1: 'x' is not a number");
    expect_error("t,ch0\n0,1\nsoon,1\n", 1, "in.csv:3: column t: 'soon' is not a time");
    expect_error("t,ch0\n0,1\n0.004,\n", 1, "in.csv:3: column ch0: '' is not a number");
    expect_error("t,ch0\n0,nan\n", 1, "in.csv:2: column ch0: 'nan' is not a number");
}

/* A row with too few or too many cells is an error naming its line. */
static void ragged_rows_are_errors(void **u)
{
    (void)u;
    expect_error("ch0,ch1\n1,2\n3\n", 2, "in.csv:3: 1 cells, the header has 2 columns");
    expect_error("ch0,ch1\n1,2,3\n", 2, "in.csv:2: more than 2 cells");
}

/* CRLF line ends give the same numbers and names as LF. */
static void crlf_lines(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("t,ch0,ch1\r\n0,1,2\r\n0.004,3,4\r\n", 2, &c, err), 0);
    assert_string_equal(c.ch_names[1], "ch1");
    assert_int_equal(c.n_rows, 2);
    const float want[4] = {1, 2, 3, 4};
    assert_memory_equal(c.values, want, sizeof want);
    assert_true(c.t[1] == 0.004);
    snn_csv_free(&c);
}

/* Empty and blank lines (also before the header, and at the end) are skipped
 * and line numbers in errors still count them. */
static void empty_lines_are_skipped(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("\nch0,ch1\n\n1,2\n  \n3,4\n\n", 2, &c, err), 0);
    assert_int_equal(c.n_rows, 2);
    assert_true(c.values[2] == 3.0f && c.values[3] == 4.0f);
    snn_csv_free(&c);
    expect_error("ch0\n\n1\nbad\n", 1, "in.csv:4: column ch0");
}

/* Files without data or channels, and duplicate names, are refused. */
static void degenerate_files(void **u)
{
    (void)u;
    expect_error("", 0, "empty file");
    expect_error("ch0,ch1\n", 2, "no data rows");
    expect_error("t,label\n0,1\n", 0, "no input columns");
    expect_error("ch0,ch0\n1,2\n", 0, "column 'ch0' appears twice");
}

/* Values round-trip exactly: the reader uses correctly rounded strtof. */
static void values_are_exact_floats(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("ch0,ch1\n0.1,-0.00964747462\n", 2, &c, err), 0);
    assert_true(c.values[0] == 0.1f);
    assert_true(c.values[1] == -0.00964747462f);
    snn_csv_free(&c);
}

/* The committed tinyRSNN fixture reads as 2500 bins of 96 channels. */
static void loads_fixture_file(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    int rc = snn_csv_load(snn_test_src("tests/fixtures/tinyrsnn/input_indy.csv"), 96, &c, err, sizeof err);
    if (rc < 0)
        fail_msg("%s", err);
    assert_int_equal(c.n_rows, 2500);
    assert_int_equal(c.n_ch, 96);
    assert_true(c.t[2499] == 9.996);
    snn_csv_free(&c);
    assert_int_equal(snn_csv_load("/nonexistent/x.csv", 0, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/x.csv: No such file"));
}

/* A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the first
 * name: t is still the time column. */
static void utf8_bom_is_skipped(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("\xef\xbb\xbft,taxel_0\n0.025,7\n", 1, &c, err), 0);
    assert_true(c.has_t);
    assert_true(c.t[0] == 0.025);
    assert_true(c.values[0] == 7.0f);
    snn_csv_free(&c);
    expect_error("\xff\xfet\0,\0c\0h\0", 0, "in.csv: the file is UTF-16 text");
}

/* Quoted names and cells (R's write.csv, pandas' QUOTE_ALL) read as
 * unquoted ones; a quoted comma does not split, "" is one quote. */
static void quoted_names_and_cells(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    const char *text = "\"t\",\"ch0\",\"note\",\"ch1\"\n"
                       "\"0.5\", \"1\" ,\"a, \"\"b\"\"\",2\n";
    assert_int_equal(parse(text, 2, &c, err), 0);
    assert_true(c.has_t && c.t[0] == 0.5);
    assert_string_equal(c.ch_names[0], "ch0");
    const float want[2] = {1, 2};
    assert_memory_equal(c.values, want, sizeof want);
    snn_csv_free(&c);
    expect_error("ch0,note\n1,\"open\n", 1, "in.csv:2: column note: a quote is not closed");
    expect_error("ch0,note\n1,\"a\"b\n", 1, "in.csv:2: column note: a quote is not closed, or text follows");
}

/* Columns without a name are ignored: the index pandas' to_csv writes first
 * (also in rule 3, where it is numeric) and the one a trailing ',' makes. */
static void unnamed_columns_are_ignored(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse(",t,ch0,ch1\n0,0,1,2\n1,0.004,3,4\n", 2, &c, err), 0);
    const float want[4] = {1, 2, 3, 4};
    assert_memory_equal(c.values, want, sizeof want);
    assert_true(c.t[1] == 0.004);
    snn_csv_free(&c);
    assert_int_equal(parse("ch0,ch1,\n1,2,\n", 2, &c, err), 0);
    assert_int_equal(c.n_rows, 1);
    snn_csv_free(&c);
    assert_int_equal(parse(",a,b\n0,1.5,2\n", 2, &c, err), 0);
    assert_string_equal(c.ch_names[0], "a");
    snn_csv_free(&c);
}

/* An ignored name may repeat (pandas reads such files); t or a channel
 * twice stays an error. */
static void repeated_ignored_names(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("label,ch0,label,note,note\nx,1,y,,\n", 1, &c, err), 0);
    assert_true(c.values[0] == 1.0f);
    snn_csv_free(&c);
    expect_error("t,ch0,t\n0,1,0\n", 1, "in.csv:1: column 't' appears twice");
    expect_error("a,b,a\n1,2,3\n", 0, "in.csv:1: column 'a' appears twice");
}

/* Numbered channels are ordered by their numbers, not by file position
 * (shuffled columns, or names sorted as text: taxel_10 before taxel_2). */
static void channels_follow_their_numbers(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("taxel_10,taxel_2,t,taxel_1\n10,2,0.5,1\n", 3, &c, err), 0);
    const float want[3] = {1, 2, 10};
    assert_memory_equal(c.values, want, sizeof want);
    assert_string_equal(c.ch_names[0], "taxel_1");
    assert_string_equal(c.ch_names[2], "taxel_10");
    assert_true(c.t[0] == 0.5);
    snn_csv_free(&c);
    /* Not all "prefix + number": file order. */
    assert_int_equal(parse("ch2,chx,ch1\n2,9,1\n", 3, &c, err), 0);
    const float keep[3] = {2, 9, 1};
    assert_memory_equal(c.values, keep, sizeof keep);
    snn_csv_free(&c);
}

/* Cells are decimal numbers: exponents in both cases, underflow reads as the
 * nearest float; hex is refused (strtod takes it), overflow says so. */
static void numbers_are_decimal(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("t,ch0,ch1,ch2\n1E-3,1.5E+02,1e-50,-1e-40\n", 3, &c, err), 0);
    assert_true(c.t[0] == 1e-3);
    assert_true(c.values[0] == 150.0f && c.values[1] == 0.0f && c.values[2] == -1e-40f);
    snn_csv_free(&c);
    expect_error("ch0\n0x10\n", 1, "in.csv:2: column ch0: '0x10' is not a number");
    expect_error("ch0\n1e\n", 1, "in.csv:2: column ch0: '1e' is not a number");
    expect_error("ch0\ninfinity\n", 1, "in.csv:2: column ch0: 'infinity' is not a number");
    expect_error("ch0\n1e39\n", 1, "in.csv:2: column ch0: '1e39' is beyond the range of a float");
    expect_error("t,ch0\n0x1,1\n", 1, "in.csv:2: column t: '0x1' is not a time");
}

/* A ';' or tab separated file is refused at its header, saying why. */
static void separator_must_be_comma(void **u)
{
    (void)u;
    expect_error("t;ch0;ch1\n0,5;1;2\n", 2, "in.csv:1: the header has no ',' but ';'");
    expect_error("\nt\tch0\n0\t1\n", 1, "in.csv:2: the header has no ',' but '\\t'");
}

/* Lines ending in a lone CR (old Mac exports) are lines; a header without
 * a line end and no rows is "no data rows". */
static void cr_line_ends(void **u)
{
    (void)u;
    snn_csv c;
    char err[256];
    assert_int_equal(parse("t,ch0\r0,1\r\r0.004,2", 1, &c, err), 0);
    assert_int_equal(c.n_rows, 2);
    assert_true(c.t[1] == 0.004 && c.values[1] == 2.0f);
    snn_csv_free(&c);
    expect_error("ch0,ch1", 2, "in.csv: no data rows");
    expect_error("ch0\r1\rx\r", 1, "in.csv:3: column ch0: 'x'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_with_t_and_channels),
        cmocka_unit_test(t_column_is_optional),
        cmocka_unit_test(bookkeeping_columns_are_ignored),
        cmocka_unit_test(unit_columns_are_channels),
        cmocka_unit_test(unnamed_numeric_columns_are_channels),
        cmocka_unit_test(wrong_column_count_error),
        cmocka_unit_test(non_numeric_cell_names_row_and_column),
        cmocka_unit_test(ragged_rows_are_errors),
        cmocka_unit_test(crlf_lines),
        cmocka_unit_test(empty_lines_are_skipped),
        cmocka_unit_test(degenerate_files),
        cmocka_unit_test(values_are_exact_floats),
        cmocka_unit_test(loads_fixture_file),
        cmocka_unit_test(utf8_bom_is_skipped),
        cmocka_unit_test(quoted_names_and_cells),
        cmocka_unit_test(unnamed_columns_are_ignored),
        cmocka_unit_test(repeated_ignored_names),
        cmocka_unit_test(channels_follow_their_numbers),
        cmocka_unit_test(numbers_are_decimal),
        cmocka_unit_test(separator_must_be_comma),
        cmocka_unit_test(cr_line_ends),
    };
    return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
