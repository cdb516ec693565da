/* catalog.c - publishing and reading a catalog (the list of a broadcast's tracks). */
#include "example_util.h"
#include "moq_ffi.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int catalogs;

/* [read] */
static void on_catalog(void *user_data, const MoqTrackInfo *tracks, size_t count) {
    (void)user_data;
    for (size_t i = 0; i < count; i++) /* strings valid during the call; NULL when absent */
        printf("track %s codec %s %ux%u\n", tracks[i].name, tracks[i].codec ? tracks[i].codec : "-",
               tracks[i].width, tracks[i].height);
    atomic_fetch_add(&catalogs, 1);
}
/* [/read] */

int main(void) {
    MoqRelay *relay = moq_relay_start("127.0.0.1:0");
    MoqClient *client = example_connect(relay);
    MoqResult r;

    /* [publish] */
    MoqPublisher *catalog = moq_create_publisher(client, "show", "catalog.json");
    MoqTrackInfo tracks[2];
    memset(tracks, 0, sizeof tracks);
    tracks[0].name = "video";
    tracks[0].codec = "avc1.64001f";
    tracks[0].width = 1280;
    tracks[0].height = 720;
    tracks[1].name = "audio";
    tracks[1].codec = "opus";
    tracks[1].sample_rate = 48000;
    r = moq_publish_catalog(catalog, tracks, 2, MOQ_CATALOG_FORMAT_SEED); /* again on changes */
    /* [/publish] */
    int ok = r.code == MOQ_OK;
    moq_free_str(r.message);

    /* [subscribe] */
    MoqSubscriber *sub = moq_subscribe_catalog(client, "show", "catalog.json", on_catalog, NULL);
    /* [/subscribe] */
    for (int i = 0; i < 500 && atomic_load(&catalogs) == 0; i++) sleep_ms(10);
    ok &= atomic_load(&catalogs) > 0;
    /* [json] */
    const char *json = moq_catalog_json(sub); /* the raw JSON: a copy the caller frees */
    if (json) printf("%s\n", json);
    /* [/json] */
    ok &= json != NULL && strstr(json, "avc1.64001f") != NULL;
    moq_free_str(json);
    moq_subscriber_destroy(sub);
    moq_publisher_destroy(catalog);
    moq_client_destroy(client);
    moq_relay_stop(relay);
    return ok ? 0 : 1;
}
