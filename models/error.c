#include "model.h"

#include <stdarg.h>
#include <stdio.h>

int snn_err_set(snn_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code > 0 ? -code : code;
}

const char *snn_strerror(int code)
{
    switch (code < 0 ? -code : code) {
    case SNN_OK: return "ok";
    case SNN_EINVAL: return "invalid argument";
    case SNN_ENOMEM: return "out of memory";
    case SNN_EIO: return "i/o error";
    case SNN_EFORMAT: return "bad format";
    case SNN_ESHAPE: return "shape mismatch";
    case SNN_ENOTSUP: return "not supported";
    case SNN_ENOENT: return "not found";
    case SNN_ETIME: return "bad timestamp";
    default: return "unknown error";
    }
}
