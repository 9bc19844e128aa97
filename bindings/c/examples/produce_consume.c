/* Produce three records and read them back as a group member, over the
 * transport named on the command line (tcp, rdma, auto).
 *   cc produce_consume.c -I bindings/c/include -L target/release -lneo_c
 *   ./a.out 127.0.0.1:7400 orders tcp */
#include <stdio.h>
#include <string.h>

#include "neo.h"

static void delivered(void *opaque, const char *topic, uint32_t partition, int64_t offset,
                      const NeoError *err) {
    (void)opaque;
    if (err) fprintf(stderr, "not delivered: %s\n", neo_error_message(err));
    else printf("delivered to %s/%u at offset %lld\n", topic, partition, (long long)offset);
}

int main(int argc, char **argv) {
    const char *boot = argc > 1 ? argv[1] : "127.0.0.1:7400";
    const char *topic = argc > 2 ? argv[2] : "orders";
    const char *transport = argc > 3 ? argv[3] : "tcp";
    NeoError *err = NULL;

    NeoProducer *p = neo_producer_new(boot, transport, NULL, &err);
    if (!p) goto fail;
    const char *values[] = {"apple", "pear", "plum"};
    for (int i = 0; i < 3; i++) {
        if (neo_producer_send(p, topic, -1, (const uint8_t *)"k", 1, (const uint8_t *)values[i],
                              strlen(values[i]), delivered, NULL, &err) != NEO_OK)
            goto fail;
    }
    if (neo_producer_flush(p, 10000, &err) != NEO_OK) goto fail;
    neo_producer_free(p);

    const char *topics[] = {topic};
    NeoConsumer *c = neo_consumer_new(boot, transport, NULL, "example", topics, 1, &err);
    if (!c) goto fail;
    for (int n = 0; n < 3;) {
        NeoMessage *m = neo_consumer_poll(c, 5000, &err);
        if (!m) {
            if (err) goto fail;
            break;
        }
        size_t len;
        const uint8_t *v = neo_message_value(m, &len);
        printf("read %.*s at offset %lld\n", (int)len, (const char *)v,
               (long long)neo_message_offset(m));
        neo_message_free(m);
        n++;
    }
    return neo_consumer_free(c, NULL) == NEO_OK ? 0 : 1;
fail:
    fprintf(stderr, "error %d: %s\n", neo_error_code(err), neo_error_message(err));
    neo_error_free(err);
    return 1;
}
