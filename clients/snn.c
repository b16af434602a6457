/*
 * snn.c -- the `snn` command line tool: dispatches to the subcommands.
 */
#include <stdio.h>
#include <cblas.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "blas.h"

SNN_BLAS_PREINIT

static const char *const help =
    "usage: snn COMMAND [ARGS]   (snn COMMAND --help for details)\n"
    "\n"
    "Offline (no daemon):\n"
    "  model info MODEL             the model's description as JSON\n"
    "  model run MODEL INPUT        run a model over a .csv or .wav input, print predictions\n"
    "  model train MODEL IN TARGETS train an RSNN model with e-prop, write a new model\n"
    "  model create OUT ...         a new trainable RSNN model with random weights\n"
    "  dnsmos PATH...               DNSMOS clip scores of .wav files, as dnsmos_local.py's CSV\n"
    "Through a running snnd:\n"
    "  replay MODEL INPUT           the same through the daemon (identical output)\n"
    "  sub STREAM                   print a stream's predictions as JSON lines\n"
    "  stats [STREAM]               server and stream statistics\n"
    "  models                       the models the server serves\n"
    "  model save STREAM NAME       write a learning stream's weights as model NAME\n"
    "\n"
    "  --version                    print the version\n"
    "\n"
    "Exit status: 0 on success, 1 on failure, 2 for a command line mistake; the\n"
    "error is one line on stderr.\n";

/* Opens /dev/null read-only on whichever of fds 0-2 the caller closed, so that no file or
 * socket the command opens later becomes its stdout (a closed stdout would otherwise take
 * the daemon's socket and print into it), and writes to a closed stdout fail. */
static void hold_std_fds(void)
{
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDONLY) < 0)
            return;
}

/* Runs the command; then stdout must have been written whole: a write error (a full disk,
 * a closed stdout) fails the command with a message, whatever it printed. */
static int run(int argc, char **argv);

int main(int argc, char **argv)
{
    hold_std_fds();
    int rc = run(argc, argv);
    if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CLI_OK)
        rc = cli_fail("stdout: write error");
    return rc;
}

static int run(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage("missing COMMAND");
    /* One OpenBLAS thread, as in snnd (server/main.c): sgemm's rounding depends on how many
     * threads split it, so this makes `snn model run` print the daemon's numbers bit for bit. */
    openblas_set_num_threads(1);
    const char *cmd = argv[1];
    if (cli_is_help(cmd) || strcmp(cmd, "help") == 0) {
        fputs(help, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("snn %s\n", SNND_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "dnsmos") == 0)
        return cmd_dnsmos(argc - 2, argv + 2);
    if (strcmp(cmd, "model") == 0) {
        if (argc < 3)
            return cli_usage("model: expected info, run, train, create or save");
        if (cli_is_help(argv[2])) {
            fputs("usage: snn model info MODEL [--models DIR]\n"
                  "       snn model run MODEL INPUT [options]\n"
                  "       snn model train MODEL INPUT.csv TARGETS.csv [options]\n"
                  "       snn model create OUT.safetensors --inputs N --hidden H --outputs O [options]\n"
                  "       snn model save STREAM NAME [--socket PATH | --host H --port P]\n",
                  stdout);
            return CLI_OK;
        }
        if (strcmp(argv[2], "info") == 0)
            return cmd_model_info(argc - 3, argv + 3);
        if (strcmp(argv[2], "run") == 0)
            return cmd_model_run(argc - 3, argv + 3);
        if (strcmp(argv[2], "train") == 0)
            return cmd_model_train(argc - 3, argv + 3);
        if (strcmp(argv[2], "create") == 0)
            return cmd_model_create(argc - 3, argv + 3);
        if (strcmp(argv[2], "save") == 0)
            return cmd_model_save(argc - 3, argv + 3);
        return cli_usage("model: unknown subcommand '%s' (expected info, run, train, create or save)", argv[2]);
    }
    if (strcmp(cmd, "replay") == 0)
        return cmd_replay(argc - 2, argv + 2);
    if (strcmp(cmd, "sub") == 0)
        return cmd_sub(argc - 2, argv + 2);
    if (strcmp(cmd, "stats") == 0)
        return cmd_stats(argc - 2, argv + 2);
    if (strcmp(cmd, "models") == 0)
        return cmd_models(argc - 2, argv + 2);
    return cli_usage("unknown command '%s'", cmd);
}
