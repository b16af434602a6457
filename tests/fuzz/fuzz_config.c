/*
 * fuzz_config.c -- server/config.c: snnd_config_load() on any bytes.
 */
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

int fuzz_config_one(const uint8_t *data, size_t n)
{
    char path[64];
    int fd = fuzz_memfd(data, n, path, sizeof path);
    if (fd < 0)
        return 0;
    snnd_config c;
    snnd_config_defaults(&c);
    char err[512];
    if (snnd_config_load(&c, path, err, sizeof err) == 0) {
        /* What main.c does next with a loaded configuration. */
        for (int i = 0; i < c.n_listen; i++)
            snnd_config_check_listen(c.listen[i], err, sizeof err);
    } else {
        fuzz_note("config", err);
    }
    snnd_config_free(&c);
    close(fd);
    return 0;
}
