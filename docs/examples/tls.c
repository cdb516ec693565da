/* tls.c - the three TLS configurations and the embedded relay's fingerprint flow. */
#include "moq_ffi.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    int ok = 1;
    /* [fingerprint] */
    /* The embedded relay makes a self-signed certificate; clients pin its SHA-256. Across
     * processes, hand the fingerprint over with the URL (moq-relay-lite prints both). */
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    const char *url = moq_relay_url(relay);                 /* owned by the relay */
    const char *fingerprint = moq_relay_fingerprint(relay); /* 64 hex digits */

    MoqClientConfig config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    config.tls_fingerprint_sha256 = fingerprint; /* copied by moq_client_create_ex */
    MoqClient *client = moq_client_create_ex(&config);
    MoqResult r = moq_connect(client, url, NULL, NULL);
    /* [/fingerprint] */
    ok &= r.code == MOQ_OK;
    moq_free_str(r.message);
    moq_client_destroy(client);

    /* [roots] */
    /* Your own CA (PEM text, not a path) replaces the system roots: */
    static const char my_ca_pem[] = "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n";
    MoqClientConfig with_ca;
    memset(&with_ca, 0, sizeof with_ca);
    with_ca.struct_size = sizeof with_ca;
    with_ca.tls_root_ca_pem = my_ca_pem;
    /* Development only, logged as a warning: no verification at all. */
    MoqClientConfig insecure;
    memset(&insecure, 0, sizeof insecure);
    insecure.struct_size = sizeof insecure;
    insecure.tls_insecure_skip_verify = true;
    /* [/roots] */

    /* The placeholder PEM above is refused (no parseable certificate), as documented. */
    MoqClient *bad = moq_client_create_ex(&with_ca);
    ok &= bad == NULL && moq_last_error_code() == MOQ_ERROR_INVALID_ARGUMENT;
    MoqClient *dev = moq_client_create_ex(&insecure);
    r = moq_connect(dev, url, NULL, NULL);
    ok &= r.code == MOQ_OK;
    moq_free_str(r.message);
    moq_client_destroy(dev);
    moq_relay_stop(relay);
    return ok ? 0 : 1;
}
