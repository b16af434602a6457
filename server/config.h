/*
 * config.h -- snnd's configuration: JSON file (jansson) plus command line.
 *
 * Every option is documented where users read it: deploy/snnd.example.json.
 * Command-line --listen options replace the configured listeners; --models
 * replaces the model directory.
 */
#ifndef SNND_CONFIG_H
#define SNND_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define SNND_MAX_LISTEN 16

/* Actions a token may allow. */
enum {
    SNND_ACT_STREAM = 1,    /* open, feed and close streams */
    SNND_ACT_SUBSCRIBE = 2, /* subscribe to streams */
    SNND_ACT_LEARN = 4,     /* open streams that learn */
    SNND_ACT_SAVE = 8,      /* save learned weights as a model */
    SNND_ACT_ADMIN = 16,    /* server-wide stats */
};

#define SNND_MAX_TOKENS 64
#define SNND_MAX_PATTERNS 16

/* One access token: the actions it allows on the models and streams whose
 * names match one of its glob patterns (fnmatch; "*" matches everything). */
typedef struct snnd_token {
    char *token;
    unsigned actions;
    char *models[SNND_MAX_PATTERNS];
    int n_models;
    char *streams[SNND_MAX_PATTERNS];
    int n_streams;
} snnd_token;

typedef struct snnd_config {
    char *listen[SNND_MAX_LISTEN]; /* "unix:PATH", "tcp:HOST:PORT" (v4 or [v6]) */
    int n_listen;
    unsigned unix_mode;            /* permission bits of Unix sockets */
    char *models_dir;
    int workers;                   /* model-step worker threads */
    int log_level;
    /* limits */
    uint32_t max_frame_bytes;
    uint32_t max_connections;
    uint32_t max_streams;
    uint32_t max_streams_per_connection;
    uint32_t max_subscriptions_per_connection;
    uint64_t input_queue_bytes;       /* per connection: reading pauses above this */
    uint64_t subscriber_hard_bytes;   /* output queue: dropped at once above this */
    uint64_t subscriber_soft_bytes;   /* output queue: dropped if above this ... */
    double subscriber_soft_seconds;   /* ... for this long */
    double shutdown_grace_seconds;    /* SIGTERM: at most this long to flush */
    double trim_interval_seconds;     /* return freed heap pages to the OS this often; 0: never */
    double inline_step_us;            /* streams whose batches take less run on the loop; 0: never */
#define SNND_INLINE_STEP_US_MAX 100000 /* the largest inline_step_us accepted */
    /* access control: with no tokens every client may do everything */
    snnd_token tokens[SNND_MAX_TOKENS];
    int n_tokens;
} snnd_config;

/* Fills c with the embedded defaults (Unix socket + TCP 127.0.0.1:7878, the
 * shipped model directory). */
void snnd_config_defaults(snnd_config *c);

/* Reads a JSON configuration file over c. On error returns -1 and writes one
 * line naming the file, the option and what was wrong into err. Unknown
 * options are errors (a typo must not be silently ignored). */
int snnd_config_load(snnd_config *c, const char *path, char *err, size_t errlen);

/* Validates a listen address; returns 0 or -1 with a message. */
int snnd_config_check_listen(const char *addr, char *err, size_t errlen);

/* Adds/replaces entries; strings are copied. */
void snnd_config_set_listen(snnd_config *c, char **addrs, int n);
void snnd_config_set_models(snnd_config *c, const char *dir);

void snnd_config_free(snnd_config *c);

/* Returns the token entry whose secret equals tok (constant-time compare), or NULL. */
const snnd_token *snnd_config_token(const snnd_config *c, const char *tok);

/* 1 if t allows action on model (NULL: any) and stream (NULL: any). */
int snnd_token_allows(const snnd_token *t, unsigned action, const char *model, const char *stream);

/* The default Unix socket path: $SNN_SOCKET, else $XDG_RUNTIME_DIR/snnd.sock,
 * else /tmp/snnd.sock (static buffer). */
const char *snnd_default_socket(void);

#endif
