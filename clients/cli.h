/*
 * cli.h -- what the `snn` subcommands share.
 *
 * The bit-exactness contract between `snn model run` (offline) and
 * `snn replay` (through snnd) rests on two things here: both cut the input
 * into the same feed plan (the same batches, timestamps, flush), and both
 * print with the same writer (%.6f seconds, %.9g values: a float printed with
 * 9 significant digits reads back to the same float).
 */
#ifndef SNN_CLI_H
#define SNN_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "csv.h"
#include "wav.h"

/* The longest --silence-ms, as snnd's segment_silence_ms option takes it. */
#define SILENCE_MS_MAX 3600000
/* The widest --bin-us: 60 s, the widest bin a session takes. */
#define BIN_US_MAX 60000000

/* Exit statuses. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Prints "snn: " + the message + newline on stderr; returns CLI_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, for a command line mistake: returns CLI_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 if arg is "--help" or "-h". */
int cli_is_help(const char *arg);

/* Parses a whole decimal unsigned number (no sign, no trailing text) into
 * *v; returns 0, or -1 when arg is not one or exceeds max. */
int cli_parse_u64(const char *arg, uint64_t max, uint64_t *v);

/* The daemon's address from --socket / --host / --port (any may be NULL):
 * --socket PATH gives unix:PATH; --host/--port give tcp:HOST:PORT (port
 * 7878 by default); otherwise $SNN_SOCKET, else the daemon's default socket
 * ($XDG_RUNTIME_DIR or /tmp)/snnd.sock if it exists, else tcp:127.0.0.1:7878.
 * Writes into buf. */
const char *cli_address(const char *sock, const char *host, const char *port, char *buf,
                        size_t len);

/* How the input rows are fed, the same way offline and through snnd. */
typedef enum feed_kind { FEED_BINNED = 1, FEED_FRAME = 2, FEED_AUDIO = 3 } feed_kind;

/* One call / one message: BINNED rows [first, first + n) starting at t_us
 * (0: right after the previous bin); FRAME row `first` at t_us; AUDIO
 * samples [first, first + n). */
typedef struct feed_op {
    feed_kind kind;
    size_t first, n;
    uint64_t t_us;
} feed_op;

#define FEED_BINS_PER_MSG 64     /* bins per BinnedCounts */
#define FEED_AUDIO_SAMPLES 4000  /* samples per AudioChunk */

/* Builds the plan for csv rows fed to a stream of input kind `kind`
 * (snn_input_kind: SPIKES and BINNED take rows as bins, TACTILE and ANALOG as
 * frames) with bins of bin_us. Rows with a t column start a new batch when
 * their t is not the previous row's t + bin_us; frames without a t column
 * are at row * bin_us. Returns the number of ops (malloc'd in *ops), or -1
 * with err set. */
long feed_plan_csv(const snn_csv *csv, int kind, uint32_t bin_us, feed_op **ops, char *err,
                   size_t errlen);

/* 1 if path is a directory (following symbolic links), else 0. */
int cli_is_dir(const char *path);

/* 1 if paths a and b name the same existing file (one inode), else 0: an --out that would
 * overwrite an input is refused with it. */
int cli_same_file(const char *a, const char *b);

/* Reads the WAVE file at path into *w (wav.h). An unreadable or malformed
 * file, or one without samples (nothing to score), is reported by cli_fail
 * naming the file; returns -1 then (*w holds nothing), 0 on success. */
int cli_read_wav(const char *path, snn_wav *w);

struct snn_model;
/* Loads MODEL: an existing file, or NAME in dir_opt (NULL: --models' default, $SNN_MODELS,
 * else the zoo the build knows) as NAME.safetensors, .onnx or .nir (first found). Prints the
 * error and returns NULL on failure. (cmd_model.c, built with the snn tool's SNN_ZOO_DIR.) */
struct snn_model *cli_load_model(const char *name, const char *dir_opt);

/* 1 if path names an audio file by its extension (.wav, .w64 or .rf64, any case: the
 * formats wav.h reads), 0 for anything else (CSV). */
int cli_is_audio_path(const char *path);

/* The plan for n audio samples: chunks of FEED_AUDIO_SAMPLES. */
long feed_plan_audio(size_t n, feed_op **ops);

/* Microseconds of a time in seconds, rounded to nearest. */
uint64_t cli_t_us(double t_s);

/* Output of run/replay: CSV of predictions, or decisions as JSON lines. */
typedef struct out_writer {
    FILE *f;
    int decisions_only;
    uint32_t n_out;
    const char *const *names; /* n_out output names */
    int header_done;
    uint64_t rows, decisions;
    struct cli_progress *pg; /* optional: its line is erased before a write (progress.h) */
} out_writer;

/* Writes one prediction row (the header "step,t,<names>" first). Ignored
 * in decisions-only mode. */
void out_prediction(out_writer *w, uint64_t step, uint64_t t_us, const float *v, uint32_t n);

/* Writes one decision line in decisions-only mode (ignored otherwise):
 * classifiers (label not NULL/"" or index >= 0) as
 * {"label":"A","index":1,"scores":[...]}, scorers as {"SIG":3.1,...} using
 * names (or w->names when names is NULL). */
void out_decision(out_writer *w, const char *label, int32_t index, const float *v, uint32_t n,
                  const char *const *names);

/* Writes the header if no row came (so an empty run is still valid CSV). */
void out_finish(out_writer *w);

/* Prints s as a JSON string (quotes and escapes). */
void cli_json_string(FILE *f, const char *s);

/* Subcommands: argc/argv start at the subcommand's own arguments. */
int cmd_model_info(int argc, char **argv);
int cmd_model_run(int argc, char **argv);
/* snn dnsmos PATH...: dnsmos_local.py's clip CSV (cmd_dnsmos.c). */
int cmd_dnsmos(int argc, char **argv);
int cmd_model_train(int argc, char **argv); /* cmd_train.c */
int cmd_model_create(int argc, char **argv); /* cmd_create.c */
int cmd_model_save(int argc, char **argv);  /* cmd_remote.c */
int cmd_replay(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_models(int argc, char **argv);

#endif
