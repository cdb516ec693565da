/* Names of result codes and subscription statuses, for the C tests' messages. */
#ifndef MOQ_FFI_TEST_NAMES_H
#define MOQ_FFI_TEST_NAMES_H

#include "moq_ffi.h"

static inline const char *code_name(MoqResultCode code) {
    switch (code) {
    case MOQ_OK: return "OK";
    case MOQ_ERROR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case MOQ_ERROR_CONNECTION_FAILED: return "CONNECTION_FAILED";
    case MOQ_ERROR_NOT_CONNECTED: return "NOT_CONNECTED";
    case MOQ_ERROR_TIMEOUT: return "TIMEOUT";
    case MOQ_ERROR_INTERNAL: return "INTERNAL";
    case MOQ_ERROR_UNSUPPORTED: return "UNSUPPORTED";
    case MOQ_ERROR_BUFFER_TOO_SMALL: return "BUFFER_TOO_SMALL";
    case MOQ_ERROR_INVALID_HANDLE: return "INVALID_HANDLE";
    case MOQ_ERROR_PANIC: return "PANIC";
    case MOQ_ERROR_REFUSED: return "REFUSED";
    case MOQ_ERROR_NOT_FOUND: return "NOT_FOUND";
    case MOQ_ERROR_CLOSED: return "CLOSED";
    case MOQ_ERROR_INVALID_STATE: return "INVALID_STATE";
    case MOQ_ERROR_WOULD_BLOCK: return "WOULD_BLOCK";
    default: break; /* codes appended later (the enum only grows) */
    }
    return "(other code)";
}

static inline const char *status_name(MoqSubscriptionStatus s) {
    switch (s) {
    case MOQ_SUBSCRIPTION_SUBSCRIBED: return "SUBSCRIBED";
    case MOQ_SUBSCRIPTION_NOT_FOUND: return "NOT_FOUND";
    case MOQ_SUBSCRIPTION_ENDED: return "ENDED";
    case MOQ_SUBSCRIPTION_ERROR: return "ERROR";
    }
    return "(unknown status)";
}

#endif
