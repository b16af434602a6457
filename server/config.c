#include "config.h"

#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#ifndef SNND_MODELS_DIR
#define SNND_MODELS_DIR "models/zoo"
#endif

const char *snnd_default_socket(void)
{
    static char buf[512];
    const char *e = getenv("SNN_SOCKET");
    if (e && *e)
        return e;
    const char *x = getenv("XDG_RUNTIME_DIR");
    snprintf(buf, sizeof buf, "%s/snnd.sock", x && *x ? x : "/tmp");
    return buf;
}

void snnd_config_defaults(snnd_config *c)
{
    memset(c, 0, sizeof *c);
    char u[600];
    snprintf(u, sizeof u, "unix:%s", snnd_default_socket());
    c->listen[c->n_listen++] = strdup(u);
    c->listen[c->n_listen++] = strdup("tcp:127.0.0.1:7878");
    c->unix_mode = 0660;
    c->models_dir = strdup(SNND_MODELS_DIR);
    c->workers = 2;
    c->log_level = LOG_INFO;
    c->max_frame_bytes = 1u << 20;
    c->max_connections = 10000;
    c->max_streams = 4096;
    c->max_streams_per_connection = 64;
    c->max_subscriptions_per_connection = 256;
    c->input_queue_bytes = 4u << 20;
    c->subscriber_hard_bytes = 8u << 20;
    c->subscriber_soft_bytes = 1u << 20;
    c->subscriber_soft_seconds = 10;
    c->shutdown_grace_seconds = 5;
    c->trim_interval_seconds = 10;
    c->inline_step_us = 100;
}

static void tokens_free(snnd_config *c)
{
    for (int i = 0; i < c->n_tokens; i++) {
        snnd_token *t = &c->tokens[i];
        free(t->token);
        for (int k = 0; k < t->n_models; k++)
            free(t->models[k]);
        for (int k = 0; k < t->n_streams; k++)
            free(t->streams[k]);
    }
    c->n_tokens = 0;
}

void snnd_config_free(snnd_config *c)
{
    tokens_free(c);
    for (int i = 0; i < c->n_listen; i++)
        free(c->listen[i]);
    free(c->models_dir);
    memset(c, 0, sizeof *c);
}

int snnd_config_check_listen(const char *a, char *err, size_t errlen)
{
    if (!strncmp(a, "unix:", 5)) {
        if (strlen(a + 5) == 0 || strlen(a + 5) > 100) {
            snprintf(err, errlen, "listen \"%s\": Unix socket path must be 1 to 100 characters", a);
            return -1;
        }
        return 0;
    }
    if (!strncmp(a, "tcp:", 4)) {
        const char *colon = strrchr(a + 4, ':');
        if (!colon || colon == a + 4) {
            snprintf(err, errlen, "listen \"%s\": expected tcp:HOST:PORT", a);
            return -1;
        }
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 0 || port > 65535) {
            snprintf(err, errlen, "listen \"%s\": port must be 0..65535", a);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "listen \"%s\": expected unix:PATH or tcp:HOST:PORT", a);
    return -1;
}

void snnd_config_set_listen(snnd_config *c, char **addrs, int n)
{
    for (int i = 0; i < c->n_listen; i++)
        free(c->listen[i]);
    c->n_listen = 0;
    for (int i = 0; i < n && i < SNND_MAX_LISTEN; i++)
        c->listen[c->n_listen++] = strdup(addrs[i]);
}

void snnd_config_set_models(snnd_config *c, const char *dir)
{
    free(c->models_dir);
    c->models_dir = strdup(dir);
}

static int get_uint(json_t *v, const char *path, const char *key, uint64_t lo, uint64_t hi, uint64_t *out, char *err,
                    size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo || (uint64_t)json_integer_value(v) > hi) {
        snprintf(err, errlen, "%s: %s: expected an integer in [%llu, %llu]", path, key, (unsigned long long)lo,
                 (unsigned long long)hi);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_num(json_t *v, const char *path, const char *key, double lo, double hi, double *out, char *err,
                   size_t errlen)
{
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi) {
        snprintf(err, errlen, "%s: %s: expected a number in [%g, %g]", path, key, lo, hi);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

static int load_limits(snnd_config *c, json_t *lim, const char *path, char *err, size_t errlen)
{
    if (!json_is_object(lim)) {
        snprintf(err, errlen, "%s: limits: expected an object", path);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(lim, k, v) {
        uint64_t u = 0;
        double d = 0;
        char key[80];
        snprintf(key, sizeof key, "limits.%s", k);
        if (!strcmp(k, "max_frame_bytes")) {
            if (get_uint(v, path, key, 64, 256u << 20, &u, err, errlen))
                return -1;
            c->max_frame_bytes = (uint32_t)u;
        } else if (!strcmp(k, "max_connections")) {
            if (get_uint(v, path, key, 1, 1000000, &u, err, errlen))
                return -1;
            c->max_connections = (uint32_t)u;
        } else if (!strcmp(k, "max_streams")) {
            if (get_uint(v, path, key, 1, 1000000, &u, err, errlen))
                return -1;
            c->max_streams = (uint32_t)u;
        } else if (!strcmp(k, "max_streams_per_connection")) {
            if (get_uint(v, path, key, 1, 1000000, &u, err, errlen))
                return -1;
            c->max_streams_per_connection = (uint32_t)u;
        } else if (!strcmp(k, "max_subscriptions_per_connection")) {
            if (get_uint(v, path, key, 1, 1000000, &u, err, errlen))
                return -1;
            c->max_subscriptions_per_connection = (uint32_t)u;
        } else if (!strcmp(k, "input_queue_bytes")) {
            if (get_uint(v, path, key, 1024, 1ull << 34, &u, err, errlen))
                return -1;
            c->input_queue_bytes = u;
        } else if (!strcmp(k, "subscriber_hard_limit_bytes")) {
            if (get_uint(v, path, key, 1024, 1ull << 34, &u, err, errlen))
                return -1;
            c->subscriber_hard_bytes = u;
        } else if (!strcmp(k, "subscriber_soft_limit_bytes")) {
            if (get_uint(v, path, key, 1024, 1ull << 34, &u, err, errlen))
                return -1;
            c->subscriber_soft_bytes = u;
        } else if (!strcmp(k, "subscriber_soft_limit_seconds")) {
            if (get_num(v, path, key, 0, 86400, &d, err, errlen))
                return -1;
            c->subscriber_soft_seconds = d;
        } else if (k[0] != '_') { /* "_..." keys are comments */
            snprintf(err, errlen, "%s: unknown option %s", path, key);
            return -1;
        }
    }
    return 0;
}

static int load_patterns(json_t *v, const char *path, int i, const char *key, char **out, int *n, char *err,
                         size_t errlen)
{
    *n = 0;
    if (!v) {
        out[(*n)++] = strdup("*");
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > SNND_MAX_PATTERNS) {
        snprintf(err, errlen, "%s: tokens[%d].%s: expected an array of at most %d patterns", path, i, key,
                 SNND_MAX_PATTERNS);
        return -1;
    }
    size_t k;
    json_t *p;
    json_array_foreach(v, k, p) {
        if (!json_is_string(p)) {
            snprintf(err, errlen, "%s: tokens[%d].%s[%zu]: expected a string", path, i, key, k);
            return -1;
        }
        out[(*n)++] = strdup(json_string_value(p));
    }
    return 0;
}

static int load_tokens(snnd_config *c, json_t *v, const char *path, char *err, size_t errlen)
{
    static const char *names[] = {"stream", "subscribe", "learn", "save", "admin"};
    tokens_free(c);
    if (!json_is_array(v) || json_array_size(v) > SNND_MAX_TOKENS) {
        snprintf(err, errlen, "%s: tokens: expected an array of at most %d tokens", path, SNND_MAX_TOKENS);
        return -1;
    }
    size_t i;
    json_t *tj;
    json_array_foreach(v, i, tj) {
        snnd_token *t = &c->tokens[c->n_tokens++];
        memset(t, 0, sizeof *t);
        const char *k;
        json_t *x;
        json_object_foreach(tj, k, x) {
            if (strcmp(k, "token") && strcmp(k, "actions") && strcmp(k, "models") && strcmp(k, "streams") &&
                k[0] != '_') {
                snprintf(err, errlen, "%s: tokens[%zu]: unknown key %s (token, actions, models, streams)", path, i,
                         k);
                return -1;
            }
        }
        const char *secret = json_string_value(json_object_get(tj, "token"));
        if (!secret || strlen(secret) < 8) {
            snprintf(err, errlen, "%s: tokens[%zu].token: expected a string of at least 8 characters", path, i);
            return -1;
        }
        t->token = strdup(secret);
        json_t *acts = json_object_get(tj, "actions");
        if (!json_is_array(acts)) {
            snprintf(err, errlen, "%s: tokens[%zu].actions: expected an array of stream, subscribe, learn, save, admin",
                     path, i);
            return -1;
        }
        size_t a;
        json_t *aj;
        json_array_foreach(acts, a, aj) {
            const char *n = json_string_value(aj);
            int found = 0;
            for (int b = 0; n && b < 5; b++)
                if (!strcmp(n, names[b])) {
                    t->actions |= 1u << b;
                    found = 1;
                }
            if (!found) {
                snprintf(err, errlen, "%s: tokens[%zu].actions[%zu]: \"%s\" is not one of stream, subscribe, learn, "
                         "save, admin", path, i, a, n ? n : "(not a string)");
                return -1;
            }
        }
        if (load_patterns(json_object_get(tj, "models"), path, (int)i, "models", t->models, &t->n_models, err,
                          errlen) ||
            load_patterns(json_object_get(tj, "streams"), path, (int)i, "streams", t->streams, &t->n_streams, err,
                          errlen))
            return -1;
    }
    return 0;
}

const snnd_token *snnd_config_token(const snnd_config *c, const char *tok)
{
    size_t n = strlen(tok);
    const snnd_token *hit = NULL;
    for (int i = 0; i < c->n_tokens; i++) {
        const char *s = c->tokens[i].token;
        size_t m = strlen(s);
        unsigned char diff = (unsigned char)(n != m);
        for (size_t k = 0; k < m; k++)
            diff |= (unsigned char)(s[k] ^ (k < n ? tok[k] : 0));
        if (!diff)
            hit = &c->tokens[i];
    }
    return hit;
}

static int match_any(char *const *pats, int n, const char *name)
{
    if (!name)
        return 1;
    for (int i = 0; i < n; i++)
        if (fnmatch(pats[i], name, 0) == 0)
            return 1;
    return 0;
}

int snnd_token_allows(const snnd_token *t, unsigned action, const char *model, const char *stream)
{
    return t && (t->actions & action) && match_any(t->models, t->n_models, model) &&
           match_any(t->streams, t->n_streams, stream);
}

int snnd_config_load(snnd_config *c, const char *path, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: expected a JSON object at the top", path);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        uint64_t u;
        double d;
        if (!strcmp(k, "listen")) {
            if (!json_is_array(v) || json_array_size(v) > SNND_MAX_LISTEN) {
                snprintf(err, errlen, "%s: listen: expected an array of at most %d addresses", path, SNND_MAX_LISTEN);
                goto out;
            }
            char *addrs[SNND_MAX_LISTEN];
            size_t i;
            json_t *a;
            json_array_foreach(v, i, a) {
                const char *s = json_string_value(a);
                if (!s) {
                    snprintf(err, errlen, "%s: listen[%zu]: expected a string", path, i);
                    goto out;
                }
                char e2[256];
                if (snnd_config_check_listen(s, e2, sizeof e2)) {
                    snprintf(err, errlen, "%s: %s", path, e2);
                    goto out;
                }
                addrs[i] = (char *)s;
            }
            snnd_config_set_listen(c, addrs, (int)json_array_size(v));
        } else if (!strcmp(k, "unix_socket_mode")) {
            const char *s = json_string_value(v);
            char *end = NULL;
            long mode = s ? strtol(s, &end, 8) : -1;
            if (!s || *end || mode < 0 || mode > 0777) {
                snprintf(err, errlen, "%s: unix_socket_mode: expected an octal string such as \"0660\"", path);
                goto out;
            }
            c->unix_mode = (unsigned)mode;
        } else if (!strcmp(k, "models")) {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "%s: models: expected a directory path", path);
                goto out;
            }
            snnd_config_set_models(c, json_string_value(v));
        } else if (!strcmp(k, "workers")) {
            if (get_uint(v, path, "workers", 1, 128, &u, err, errlen))
                goto out;
            c->workers = (int)u;
        } else if (!strcmp(k, "log_level")) {
            int l = json_is_string(v) ? log_parse_level(json_string_value(v)) : -1;
            if (l < 0) {
                snprintf(err, errlen, "%s: log_level: expected debug, info, warn or error", path);
                goto out;
            }
            c->log_level = l;
        } else if (!strcmp(k, "shutdown_grace_seconds")) {
            if (get_num(v, path, k, 0, 3600, &d, err, errlen))
                goto out;
            c->shutdown_grace_seconds = d;
        } else if (!strcmp(k, "trim_interval_seconds")) {
            if (get_num(v, path, k, 0, 86400, &d, err, errlen))
                goto out;
            c->trim_interval_seconds = d;
        } else if (!strcmp(k, "inline_step_us")) {
            if (get_num(v, path, k, 0, SNND_INLINE_STEP_US_MAX, &d, err, errlen))
                goto out;
            c->inline_step_us = d;
        } else if (!strcmp(k, "tokens")) {
            if (load_tokens(c, v, path, err, errlen))
                goto out;
        } else if (!strcmp(k, "limits")) {
            if (load_limits(c, v, path, err, errlen))
                goto out;
        } else if (k[0] == '_') {
            /* "_comment" keys document the file itself */
        } else {
            snprintf(err, errlen, "%s: unknown option %s", path, k);
            goto out;
        }
    }
    if (c->subscriber_soft_bytes > c->subscriber_hard_bytes) {
        snprintf(err, errlen, "%s: limits.subscriber_soft_limit_bytes exceeds subscriber_hard_limit_bytes", path);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
