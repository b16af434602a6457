/*
 * log.h -- one line per event worth knowing, to stderr, with a level.
 *
 *   2026-11-23T18:50:01.123Z info  listen tcp:127.0.0.1:7878
 */
#ifndef SNND_LOG_H
#define SNND_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

/* Sets the least severe level that is printed. */
void log_set_level(log_level l);

/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_parse_level(const char *s);

void log_msg(log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
