/* errors.c - the guide's error-handling patterns: MoqResult, NULL/false returns with
 * moq_last_error / moq_last_error_code, and background failures via moq_client_last_error. */
#include "moq_ffi.h"

#include <stdio.h>
#include <string.h>

/* [result] */
/* Functions returning MoqResult: check code, print and free message. */
static int check(MoqResult r, const char *what) {
    if (r.code == MOQ_OK) return 1;
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)r.code, r.message ? r.message : "");
    moq_free_str(r.message);
    return 0;
}
/* [/result] */

int main(void) {
    int ok = 1;
    MoqClient *client = moq_client_create();

    /* An invalid URL: the MoqResult carries the code and a message naming the parameter. */
    ok &= !check(moq_connect(client, "not a url", NULL, NULL), "moq_connect");

    /* [pointer] */
    /* Functions returning a pointer (or bool) report failure as NULL (false); the reason is the
     * calling thread's last error, valid until its next failing call. Never free it. */
    MoqPublisher *pub = moq_create_publisher(client, "", "track");
    if (!pub) {
        MoqResultCode code = moq_last_error_code();
        fprintf(stderr, "moq_create_publisher: %s (code %d)\n", moq_last_error(), (int)code);
        if (code == MOQ_ERROR_INVALID_ARGUMENT) { /* our bug: fix the name */ }
    }
    /* [/pointer] */
    ok &= pub == NULL && moq_last_error_code() == MOQ_ERROR_INVALID_ARGUMENT;

    /* [background] */
    /* Failures that happen later (session lost, connect_async failed) show up as state; the
     * reason is kept per client. */
    char reason[256];
    MoqResult r = moq_client_last_error(client, reason, sizeof reason);
    if (r.code == MOQ_OK && reason[0] != '\0') fprintf(stderr, "client: %s\n", reason);
    moq_free_str(r.message);
    /* [/background] */

    /* Stale handles are errors, never crashes. */
    moq_client_destroy(client);
    MoqResult stale = moq_disconnect(client);
    ok &= stale.code == MOQ_ERROR_INVALID_HANDLE;
    moq_free_str(stale.message);
    return ok ? 0 : 1;
}
