/* The C ABI against a running broker: errors for bad arguments, 1 000
 * records produced with per-record delivery callbacks, consumed by a group
 * member, committed offsets honoured by the next member. Run by
 * ci/c_bindings.sh under valgrind (no leak, no invalid access), over tcp and,
 * in network namespaces, over af-xdp. One handle at a time: an AF_XDP
 * transport holds its interface queue.
 *   test_neo HOST:PORT TOPIC [TRANSPORT [OPTIONS]]   (TOPIC exists) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "neo.h"

#define N 1000

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                  \
            fprintf(stderr, "\n");                                         \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

static int delivered, delivery_errors;
static int64_t last_offset = -2;

static void on_delivery(void *opaque, const char *topic, uint32_t partition, int64_t offset,
                        const NeoError *err) {
    int *count = opaque;
    (void)topic;
    (void)partition;
    if (err != NULL) {
        delivery_errors++;
        return;
    }
    (*count)++;
    delivered++;
    last_offset = offset;
}

/* Expects `call` to fail with `code`; frees the error. */
static void expect_error(NeoError *err, NeoCode code, const char *what) {
    CHECK(err != NULL, "%s: no error reported", what);
    CHECK(neo_error_code(err) == code, "%s: code %d (%s), wanted %d", what, neo_error_code(err),
          neo_error_message(err), code);
    CHECK(strlen(neo_error_message(err)) > 0, "%s: empty message", what);
    neo_error_free(err);
}

/* Reads until `want` distinct values came or `idle_ms` pass without one. */
static int consume(NeoConsumer *c, char *seen, int want, unsigned idle_ms) {
    int got = 0;
    NeoError *err = NULL;
    while (got < want) {
        NeoMessage *m = neo_consumer_poll(c, idle_ms, &err);
        CHECK(err == NULL, "poll: %s", neo_error_message(err));
        if (m == NULL) break;
        size_t klen = 0, vlen = 0;
        const uint8_t *key = neo_message_key(m, &klen);
        const uint8_t *value = neo_message_value(m, &vlen);
        char kbuf[32] = {0}, vbuf[32] = {0};
        CHECK(key != NULL && klen < sizeof kbuf && vlen < sizeof vbuf, "bad key/value lengths");
        memcpy(kbuf, key, klen);
        memcpy(vbuf, value, vlen);
        int i = -1;
        CHECK(sscanf(vbuf, "value-%d", &i) == 1 && i >= 0 && i < 2 * N, "value `%s`", vbuf);
        char wanted[32];
        snprintf(wanted, sizeof wanted, "key-%d", i);
        CHECK(strcmp(kbuf, wanted) == 0, "key `%s` for value `%s`", kbuf, vbuf);
        CHECK(neo_message_offset(m) >= 0 && neo_message_timestamp(m) > 0, "offset/timestamp");
        CHECK(strlen(neo_message_topic(m)) > 0, "topic");
        if (!seen[i]) got++;
        seen[i] = 1;
        neo_message_free(m);
    }
    return got;
}

static void produce(NeoProducer *p, const char *topic, int from, int to, int *count) {
    NeoError *err = NULL;
    for (int i = from; i < to; i++) {
        char key[32], value[32];
        int kl = snprintf(key, sizeof key, "key-%d", i);
        int vl = snprintf(value, sizeof value, "value-%d", i);
        NeoCode rc = neo_producer_send(p, topic, -1, (const uint8_t *)key, (size_t)kl,
                                       (const uint8_t *)value, (size_t)vl, on_delivery, count,
                                       &err);
        CHECK(rc == NEO_OK, "send %d: %s", i, neo_error_message(err));
    }
    CHECK(neo_producer_flush(p, 30000, &err) == NEO_OK, "flush: %s", neo_error_message(err));
}

int main(int argc, char **argv) {
    CHECK(argc >= 3, "usage: test_neo HOST:PORT TOPIC [TRANSPORT [OPTIONS]]");
    const char *boot = argv[1], *topic = argv[2];
    const char *transport = argc > 3 ? argv[3] : "tcp";
    const char *options = argc > 4 ? argv[4] : NULL;
    NeoError *err = NULL;

    CHECK(strlen(neo_version()) > 0, "version");
    CHECK(neo_producer_new(NULL, "tcp", NULL, &err) == NULL, "NULL bootstrap accepted");
    expect_error(err, NEO_ERR_INVALID_ARGUMENT, "NULL bootstrap");
    err = NULL;
    CHECK(neo_producer_new(boot, "carrier-pigeon", NULL, &err) == NULL, "bad transport accepted");
    expect_error(err, NEO_ERR_INVALID_ARGUMENT, "unknown transport");
    err = NULL;
    CHECK(neo_producer_new("not an address", "tcp", NULL, &err) == NULL, "bad address accepted");
    expect_error(err, NEO_ERR_INVALID_ARGUMENT, "bad address");
    err = NULL;
    CHECK(neo_producer_new(boot, "tcp", "colour=blue", &err) == NULL, "unknown option accepted");
    expect_error(err, NEO_ERR_INVALID_ARGUMENT, "unknown option");
    err = NULL;
    if (strcmp(transport, "tcp") == 0) {
        CHECK(neo_producer_new("127.0.0.1:1", "tcp", NULL, &err) == NULL, "nobody listens on port 1");
        expect_error(err, NEO_ERR_CONNECT, "refused connection");
        err = NULL;
    }

    NeoProducer *p = neo_producer_new(boot, transport, options, &err);
    CHECK(p != NULL, "producer: %s", neo_error_message(err));
    int count = 0;
    produce(p, topic, 0, N, &count);
    CHECK(count == N && delivered == N && delivery_errors == 0 && last_offset >= 0,
          "delivered %d of %d (%d errors)", delivered, N, delivery_errors);
    err = NULL;
    CHECK(neo_producer_send(p, "no-such-topic", -1, NULL, 0, (const uint8_t *)"x", 1, NULL, NULL,
                            &err) == NEO_ERR_BROKER,
          "unknown topic accepted");
    neo_error_free(err);
    err = NULL;
    CHECK(neo_producer_send(NULL, topic, -1, NULL, 0, NULL, 0, NULL, NULL, &err) ==
              NEO_ERR_INVALID_ARGUMENT,
          "NULL producer accepted");
    neo_error_free(err);
    err = NULL;
    neo_producer_free(p);

    char *seen = calloc(2 * N, 1);
    const char *topics[] = {topic};
    NeoConsumer *c = neo_consumer_new(boot, transport, options, "c-abi-group", topics, 1, &err);
    CHECK(c != NULL, "consumer: %s", neo_error_message(err));
    int got = consume(c, seen, N / 2, 5000);
    CHECK(got == N / 2, "first half: %d", got);
    CHECK(neo_consumer_commit(c, &err) == NEO_OK, "commit: %s", neo_error_message(err));
    got += consume(c, seen, N - got, 5000);
    CHECK(got == N, "consumed %d of %d", got, N);
    CHECK(neo_consumer_free(c, &err) == NEO_OK, "close: %s", neo_error_message(err));

    /* The next member of the group starts after what was committed. */
    p = neo_producer_new(boot, transport, options, &err);
    CHECK(p != NULL, "second producer: %s", neo_error_message(err));
    produce(p, topic, N, N + 10, &count);
    neo_producer_free(p);
    c = neo_consumer_new(boot, transport, options, "c-abi-group", topics, 1, &err);
    CHECK(c != NULL, "second consumer: %s", neo_error_message(err));
    char *again = calloc(2 * N, 1);
    got = consume(c, again, 1000, 2000);
    for (int i = 0; i < N; i++) CHECK(!again[i], "record %d delivered again after the commit", i);
    CHECK(got == 10, "the second member read %d new records, wanted 10", got);
    CHECK(neo_consumer_free(c, NULL) == NEO_OK, "close");
    free(seen);
    free(again);
    neo_consumer_free(NULL, NULL);
    neo_message_free(NULL);
    neo_error_free(NULL);
    printf("PASS c abi over %s: %d records produced with per-record callbacks, consumed once by a group member, "
           "commit honoured by the next member (10 new, 0 again); bad arguments answered with codes\n",
           transport, N + 10);
    return 0;
}
