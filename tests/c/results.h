/* Result helpers shared by test_objects.c and test_reach.c: code and status names, a MoqResult
 * taken apart (message copied, original freed), and priming the last error before a check. */
#ifndef MOQ_FFI_TEST_RESULTS_H
#define MOQ_FFI_TEST_RESULTS_H

#include "moq_ffi.h"

#include <stdio.h>
#include <string.h>

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

/* A MoqResult taken apart: its message copied, the original freed with moq_free_str. */
typedef struct {
    MoqResultCode code;
    int had_message;
    char message[320];
} Res;

static inline Res take(MoqResult r) {
    Res out;
    out.code = r.code;
    out.had_message = r.message != NULL;
    snprintf(out.message, sizeof out.message, "%s", r.message ? r.message : "");
    moq_free_str(r.message);
    return out;
}

/* Sets this thread's last error to a code other than `want`, so that a check of
 * moq_last_error_code() afterwards proves the call under test set it. */
static inline void prime_last_error(MoqResultCode want) {
    if (want != MOQ_ERROR_INVALID_ARGUMENT) {
        MoqClientConfig bad;
        memset(&bad, 0, sizeof bad);
        bad.struct_size = 3; /* INVALID_ARGUMENT */
        MoqClient *c = moq_client_create_ex(&bad);
        if (c) moq_client_destroy(c);
    } else {
        MoqResult r = moq_disconnect(NULL); /* INVALID_HANDLE */
        moq_free_str(r.message);
    }
}

#endif
