/* Result helpers shared by test_objects.c and test_reach.c: a MoqResult taken apart (message
 * copied, original freed) and priming the last error before a check; names.h names the codes. */
#ifndef MOQ_FFI_TEST_RESULTS_H
#define MOQ_FFI_TEST_RESULTS_H

#include "moq_ffi.h"
#include "names.h"

#include <stdio.h>
#include <string.h>

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
