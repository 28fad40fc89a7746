/* The C API as C programs use it: round trips with cursors, batch semantics, every status that
 * bad input can reach, lifecycle, ownership of poll results, and the runtime's footprint.
 *
 * Failure modes (shared/spec/FAILURE-MODES.md) pinned here and in test_threads.c:
 *  37 use-after-free on shutdown ........ test_threads: shutdown_while_threads_ingest_and_poll,
 *                                         results_outlive_the_bus (run under ASan and valgrind)
 *  38 busy-wait while blocked ........... long_poll_waits_without_spinning,
 *                                         test_threads: shutdown_wakes_long_poll
 *  39 panics across extern "C" .......... src/ffi/tests.rs (panic boundary, calls inside a tokio
 *                                         runtime); no call here may abort the process
 *  40 caller-mutable lengths in free .... poll_json (string scribbled before pr_string_free),
 *                                         results_outlive_the_bus (view scribbled)
 *  41 overflow reported as too small .... malformed_batches_are_refused_whole (SIZE_MAX count),
 *                                         every_status_from_bad_input (pr_remove_shards SIZE_MAX)
 *  42 0 for a NULL handle ............... every_status_from_bad_input (pr_shard_count(NULL))
 *  43 batches that skip bad entries ..... batch/packed_stops_at_refused_event
 *  44 error kinds collapsed, no message . every_status_from_bad_input (distinct codes, messages)
 *  45 stale hand-kept header ............ versions, plus tests/header.rs (regenerated, compared)
 *  46 one runtime per handle ............ many_buses_share_one_runtime */
#define _GNU_SOURCE
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "check.h"

#define MEMORY "{\"adapter\":{\"type\":\"memory\"}"

static pr_bus *new_bus(const char *config) {
  pr_bus *bus = NULL;
  CHECK_STATUS(pr_bus_new(config, &bus), PR_OK);
  CHECK(bus != NULL);
  return bus;
}

static pr_stats stats_of(const pr_bus *bus) {
  pr_stats s;
  memset(&s, 0, sizeof s);
  CHECK_STATUS(pr_stats_get(bus, &s), PR_OK);
  return s;
}

static void check_balanced(const pr_bus *bus) {
  pr_stats s = stats_of(bus);
  if (s.events_dispatched + s.events_dropped != s.events_ingested) {
    fprintf(stderr, "  unbalanced: dispatched %llu + dropped %llu != ingested %llu\n",
            (unsigned long long)s.events_dispatched, (unsigned long long)s.events_dropped,
            (unsigned long long)s.events_ingested);
    check_failures_in_test++;
  }
}

/* Parses the n of an event {"n":N}; -1 if the payload is not one. */
static long payload_n(const pr_event_view *v) {
  char buf[64];
  if (v->payload_len >= sizeof buf) return -1;
  memcpy(buf, v->payload, v->payload_len);
  buf[v->payload_len] = 0;
  long n = -1;
  if (sscanf(buf, "{\"n\":%ld}", &n) != 1) return -1;
  return n;
}

static void test_versions(void) {
  CHECK(pr_abi_version() == PR_ABI_VERSION);
  CHECK(strcmp(pr_version(), PR_VERSION) == 0);
  char composed[64];
  snprintf(composed, sizeof composed, "%d.%d.%d", PR_VERSION_MAJOR, PR_VERSION_MINOR,
           PR_VERSION_PATCH);
  CHECK(strncmp(composed, PR_VERSION, strlen(composed)) == 0);
  CHECK(strcmp(pr_status_name(PR_OK), "PR_OK") == 0);
  CHECK(strcmp(pr_status_name(PR_ERR_BACKPRESSURE), "PR_ERR_BACKPRESSURE") == 0);
  CHECK(strcmp(pr_status_name((pr_status)9999), "PR_UNKNOWN_STATUS") == 0);
}

static void test_free_null_is_a_noop(void) {
  pr_bus_free(NULL);
  pr_poll_result_free(NULL);
  pr_string_free(NULL);
  CHECK(pr_poll_result_len(NULL) == 0);
  CHECK(pr_poll_result_cursor(NULL) == NULL);
  CHECK(!pr_poll_result_has_more(NULL));
}

/* Every event comes back exactly once, bytes intact, across many pages and shards. */
/* A loopback port nothing listens on now. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  CHECK(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

/* Long-polls `bus` until it returned `want` events {"n":N}, N < 2 * want; counts each N and
 * records the origin of N = 0 and N = want. */
static void poll_mesh(pr_bus *bus, int want, unsigned char *seen, uint64_t origins[2]) {
  char cursor[1024] = "";
  int total = 0;
  for (int round = 0; round < 600 && total < want; round++) {
    char request[1200];
    snprintf(request, sizeof request, "{\"limit\":1000,\"wait_ms\":100,\"from\":\"%s\"}", cursor);
    pr_poll_result *page = NULL;
    CHECK_STATUS(pr_poll(bus, request, &page), PR_OK);
    if (page == NULL) return;
    for (size_t i = 0; i < pr_poll_result_len(page); i++) {
      pr_event_view v;
      CHECK_STATUS(pr_poll_result_event(page, i, &v), PR_OK);
      long n = payload_n(&v);
      CHECK(n >= 0 && n < 2 * want);
      if (n < 0 || n >= 2 * want) continue;
      seen[n]++;
      if (n == 0) origins[0] = v.origin;
      if (n == want / 2) origins[1] = v.origin;
      total++;
    }
    snprintf(cursor, sizeof cursor, "%s", pr_poll_result_cursor(page));
    pr_poll_result_free(page);
  }
  CHECK(total == want);
}

/* Two buses joined by the Net adapter through the JSON config: each holds both nodes' events
 * once, with the ingesting node as origin. */
static void test_net_two_nodes(void) {
  enum { N = 1000 };
  const char *key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  int pa = free_port(), pb = free_port();
  char config[512];
  snprintf(config, sizeof config,
           "{\"adapter\":{\"type\":\"net\",\"listen\":\"127.0.0.1:%d\",\"key\":\"%s\"}}", pa, key);
  pr_bus *a = new_bus(config);
  snprintf(config, sizeof config,
           "{\"adapter\":{\"type\":\"net\",\"listen\":\"127.0.0.1:%d\",\"peers\":[\"127.0.0.1:%d\"],"
           "\"key\":\"%s\"}}",
           pb, pa, key);
  pr_bus *b = new_bus(config);
  for (int i = 0; i < 2 * N; i++) {
    char event[32];
    int len = snprintf(event, sizeof event, "{\"n\":%d}", i);
    CHECK_STATUS(pr_ingest(i < N ? a : b, (const uint8_t *)event, (size_t)len), PR_OK);
  }
  CHECK_STATUS(pr_flush(a), PR_OK);
  CHECK_STATUS(pr_flush(b), PR_OK);
  static unsigned char seen_a[2 * N], seen_b[2 * N];
  uint64_t origins_a[2] = {0, 0}, origins_b[2] = {0, 0};
  poll_mesh(a, 2 * N, seen_a, origins_a);
  poll_mesh(b, 2 * N, seen_b, origins_b);
  for (int n = 0; n < 2 * N; n++) CHECK(seen_a[n] == 1 && seen_b[n] == 1);
  /* Origins: A's events carry A's id on both nodes, B's carry B's, and the two differ. */
  CHECK(origins_a[0] != 0 && origins_a[1] != 0 && origins_a[0] != origins_a[1]);
  CHECK(origins_a[0] == origins_b[0] && origins_a[1] == origins_b[1]);
  pr_bus_free(a);
  pr_bus_free(b);
}

static void test_round_trip_with_cursors(void) {
  enum { N = 5000 };
  pr_bus *bus = new_bus("{\"shards\":4,\"adapter\":{\"type\":\"memory\"}}");
  for (int i = 0; i < N; i++) {
    char event[32];
    int len = snprintf(event, sizeof event, "{\"n\":%d}", i);
    if (i % 2 == 0) {
      CHECK_STATUS(pr_ingest(bus, (const uint8_t *)event, (size_t)len), PR_OK);
    } else {
      CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)event, (size_t)len), PR_OK);
    }
  }
  CHECK_STATUS(pr_flush(bus), PR_OK);
  check_balanced(bus);

  static unsigned char seen[N];
  memset(seen, 0, sizeof seen);
  uint64_t last_seq[4] = {0, 0, 0, 0};
  int have_seq[4] = {0, 0, 0, 0};
  char cursor[1024] = "";
  size_t total = 0;
  int pages = 0;
  for (;;) {
    char request[1200];
    snprintf(request, sizeof request, "{\"limit\":97,\"from\":\"%s\"}", cursor);
    pr_poll_result *page = NULL;
    CHECK_STATUS(pr_poll(bus, request, &page), PR_OK);
    if (page == NULL) break;
    pages++;
    size_t len = pr_poll_result_len(page);
    CHECK(len <= 97);
    for (size_t i = 0; i < len; i++) {
      pr_event_view v;
      CHECK_STATUS(pr_poll_result_event(page, i, &v), PR_OK);
      long n = payload_n(&v);
      CHECK(n >= 0 && n < N);
      if (n >= 0 && n < N) {
        CHECK(seen[n] == 0);
        seen[n] = 1;
      }
      CHECK(v.shard < 4);
      if (v.shard < 4) {
        CHECK(!have_seq[v.shard] || v.sequence > last_seq[v.shard]);
        last_seq[v.shard] = v.sequence;
        have_seq[v.shard] = 1;
      }
      CHECK(v.id != NULL && strlen(v.id) > 0);
      CHECK(v.timestamp_ns > 1600000000000000000ull);
    }
    total += len;
    const char *next = pr_poll_result_cursor(page);
    CHECK(next != NULL && strlen(next) < sizeof cursor);
    snprintf(cursor, sizeof cursor, "%s", next);
    int more = pr_poll_result_has_more(page);
    pr_poll_result_free(page);
    if (!more) break;
    if (pages > 10 * N) break; /* a wedged cursor must fail, not hang */
  }
  CHECK(total == N);
  CHECK(pages >= N / 97);
  for (int i = 0; i < N; i++) CHECK(seen[i] == 1);

  /* Past the end: empty page, same position, no repeats. */
  char request[1200];
  snprintf(request, sizeof request, "{\"limit\":10,\"from\":\"%s\"}", cursor);
  pr_poll_result *page = NULL;
  CHECK_STATUS(pr_poll(bus, request, &page), PR_OK);
  CHECK(pr_poll_result_len(page) == 0);
  CHECK(!pr_poll_result_has_more(page));
  pr_poll_result_free(page);
  pr_stats s = stats_of(bus);
  CHECK(s.events_ingested == N && s.events_dispatched == N && s.events_dropped == 0);
  pr_bus_free(bus);
}

/* A refused event in the middle of a batch stops it: the count is exact and so is the status. */
static void check_partial_batch(int packed) {
  enum { N = 1000 };
  pr_bus *bus = new_bus(
      "{\"shards\":1,\"ring_capacity\":2,\"batch\":{\"max_events\":1},"
      "\"backpressure\":\"drop_newest\",\"adapter\":{\"type\":\"memory\"}}");
  static uint8_t data[N * 16];
  static uint32_t ends[N];
  static const uint8_t *ptrs[N];
  static size_t lens[N];
  size_t off = 0;
  for (int i = 0; i < N; i++) {
    int len = snprintf((char *)data + off, 16, "{\"n\":%d}", i);
    ptrs[i] = data + off;
    lens[i] = (size_t)len;
    off += (size_t)len;
    ends[i] = (uint32_t)off;
  }
  size_t accepted = 12345;
  pr_status status = packed ? pr_ingest_raw_packed(bus, data, off, ends, N, &accepted)
                            : pr_ingest_raw_batch(bus, ptrs, lens, N, &accepted);
  CHECK_STATUS(status, PR_ERR_BACKPRESSURE);
  CHECK(accepted >= 2 && accepted < N);
  char needle[64];
  snprintf(needle, sizeof needle, "event %zu of the batch", accepted);
  CHECK_MESSAGE(needle);
  pr_stats s = stats_of(bus);
  CHECK(s.events_ingested == accepted);
  CHECK(s.rejected_backpressure == 1);
  CHECK_STATUS(pr_flush(bus), PR_OK);
  check_balanced(bus);
  /* Exactly the first `accepted` events, in order (one shard). */
  pr_poll_result *page = NULL;
  CHECK_STATUS(pr_poll(bus, "{\"limit\":2000}", &page), PR_OK);
  CHECK(pr_poll_result_len(page) == accepted);
  for (size_t i = 0; i < pr_poll_result_len(page); i++) {
    pr_event_view v;
    CHECK_STATUS(pr_poll_result_event(page, i, &v), PR_OK);
    CHECK(payload_n(&v) == (long)i);
  }
  pr_poll_result_free(page);
  pr_bus_free(bus);
}

static void test_batch_stops_at_refused_event(void) { check_partial_batch(0); }
static void test_packed_stops_at_refused_event(void) { check_partial_batch(1); }

/* Malformed batches are refused whole, before any event goes in; count 0 is fine. */
static void test_malformed_batches_are_refused_whole(void) {
  pr_bus *bus = new_bus(MEMORY "}");
  const uint8_t *ptrs[4] = {(const uint8_t *)"a", (const uint8_t *)"b", NULL,
                            (const uint8_t *)"d"};
  size_t lens[4] = {1, 1, 1, 1};
  size_t accepted = 99;
  CHECK_STATUS(pr_ingest_raw_batch(bus, ptrs, lens, 4, &accepted), PR_ERR_NULL_ARGUMENT);
  CHECK(accepted == 0);
  CHECK_MESSAGE("events[2]");
  lens[2] = 0; /* NULL with length 0 is an empty event */
  CHECK_STATUS(pr_ingest_raw_batch(bus, ptrs, lens, 4, &accepted), PR_OK);
  CHECK(accepted == 4);

  const uint8_t data[] = "aabbccdd";
  uint32_t bad_order[4] = {2, 4, 3, 8};
  accepted = 99;
  CHECK_STATUS(pr_ingest_raw_packed(bus, data, 8, bad_order, 4, &accepted),
               PR_ERR_INVALID_ARGUMENT);
  CHECK(accepted == 0);
  CHECK_MESSAGE("ends[2] = 3");
  uint32_t past_end[4] = {2, 4, 6, 9};
  CHECK_STATUS(pr_ingest_raw_packed(bus, data, 8, past_end, 4, &accepted),
               PR_ERR_INVALID_ARGUMENT);
  CHECK(accepted == 0);
  CHECK_MESSAGE("ends[3] = 9");
  uint32_t good[4] = {2, 4, 4, 8}; /* an empty event is fine */
  CHECK_STATUS(pr_ingest_raw_packed(bus, data, 8, good, 4, &accepted), PR_OK);
  CHECK(accepted == 4);

  accepted = 99;
  CHECK_STATUS(pr_ingest_raw_batch(bus, NULL, NULL, 0, &accepted), PR_OK);
  CHECK(accepted == 0);
  accepted = 99;
  CHECK_STATUS(pr_ingest_raw_packed(bus, NULL, 0, NULL, 0, &accepted), PR_OK);
  CHECK(accepted == 0);
  /* A count whose byte size overflows is an invalid argument, not "buffer too small". */
  CHECK_STATUS(pr_ingest_raw_batch(bus, ptrs, lens, SIZE_MAX, &accepted),
               PR_ERR_INVALID_ARGUMENT);
  CHECK_MESSAGE("overflows");
  CHECK_STATUS(pr_flush(bus), PR_OK);
  pr_stats s = stats_of(bus);
  CHECK(s.events_ingested == 8);
  pr_bus_free(bus);
}

static void expect_poll(const pr_bus *bus, const char *request, pr_status want,
                        const char *mention) {
  pr_poll_result *page = (pr_poll_result *)0x1; /* must stay untouched on failure */
  CHECK_STATUS(pr_poll(bus, request, &page), want);
  if (want != PR_OK) {
    CHECK(page == (pr_poll_result *)0x1);
    if (mention) CHECK_MESSAGE(mention);
  } else {
    pr_poll_result_free(page);
  }
}

/* pr_flush_timeout: a report on success, NULL `out` allowed, `out` untouched on errors other
 * than the timeout (the timeout itself is pinned against a stopped broker in tests/flush.rs). */
static void test_flush_timeout(void) {
  pr_bus *bus = new_bus(MEMORY "}");
  CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)"{}", 2), PR_OK);
  pr_flush_report report;
  memset(&report, 0xAB, sizeof report);
  CHECK_STATUS(pr_flush_timeout(bus, 10000, &report), PR_OK);
  CHECK(report.undelivered == 0 && report.dropped == 0 && !report.lossy);
  CHECK_STATUS(pr_flush_timeout(bus, UINT64_MAX, NULL), PR_OK);
  CHECK_STATUS(pr_flush_timeout(NULL, 10, &report), PR_ERR_NULL_ARGUMENT);
  CHECK_MESSAGE("`bus`");
  CHECK_STATUS(pr_shutdown(bus), PR_OK);
  memset(&report, 0xAB, sizeof report);
  CHECK_STATUS(pr_flush_timeout(bus, 10, &report), PR_ERR_SHUTTING_DOWN);
  CHECK(report.undelivered == 0xABABABABABABABABull);
  pr_bus_free(bus);
}

/* Each status that bad input can reach, with a message that says where. */
static void test_every_status_from_bad_input(void) {
  pr_bus *out = (pr_bus *)0x1;
  /* NULL out-pointers and handles */
  CHECK_STATUS(pr_bus_new(NULL, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_MESSAGE("`out`");
  CHECK_STATUS(pr_ingest_raw(NULL, (const uint8_t *)"1", 1), PR_ERR_NULL_ARGUMENT);
  CHECK_MESSAGE("`bus`");
  CHECK_STATUS(pr_flush(NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_shutdown(NULL), PR_ERR_NULL_ARGUMENT);
  pr_stats s;
  CHECK_STATUS(pr_stats_get(NULL, &s), PR_ERR_NULL_ARGUMENT);
  size_t n;
  CHECK_STATUS(pr_shard_count(NULL, &n), PR_ERR_NULL_ARGUMENT);
  pr_poll_result *page;
  CHECK_STATUS(pr_poll(NULL, NULL, &page), PR_ERR_NULL_ARGUMENT);

  /* config: invalid UTF-8, invalid JSON, unknown key, bad value */
  CHECK_STATUS(pr_bus_new("{\"adapter\":\"\xff\"}", &out), PR_ERR_INVALID_UTF8);
  CHECK_MESSAGE("byte 12");
  CHECK_STATUS(pr_bus_new("{\"shards\": 4,", &out), PR_ERR_INVALID_JSON);
  CHECK_MESSAGE("byte");
  CHECK_STATUS(pr_bus_new("{\"shardz\": 4}", &out), PR_ERR_CONFIG);
  CHECK_MESSAGE("shardz");
  CHECK_STATUS(pr_bus_new("{\"shards\": 0}", &out), PR_ERR_CONFIG);
  CHECK_MESSAGE("shards");
  CHECK_STATUS(pr_bus_new("{\"ring_capacity\": 3}", &out), PR_ERR_CONFIG);
  CHECK_MESSAGE("ring_capacity");
  CHECK_STATUS(pr_bus_new("{\"adapter\":{\"type\":\"memory\",\"max_events\":1}}", &out),
               PR_ERR_CONFIG);
  CHECK_MESSAGE("max_events");
  CHECK_STATUS(pr_bus_new("{\"batch\":{\"max_events\":\"x\"}}", &out), PR_ERR_CONFIG);
  CHECK_MESSAGE("key `batch.max_events`, byte 25");
  CHECK_STATUS(pr_bus_new("{\"backpressure\":\"sample\"}", &out), PR_ERR_CONFIG);
  CHECK_MESSAGE("`backpressure`");
  CHECK(out == (pr_bus *)0x1); /* never written on failure */

  pr_bus *bus = new_bus(MEMORY ",\"shards\":2}");
  CHECK_STATUS(pr_bus_new("", &out), PR_OK); /* "" = defaults */
  pr_bus_free(out);
  CHECK_STATUS(pr_stats_get(bus, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_shard_count(bus, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_poll(bus, NULL, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_ingest_raw(bus, NULL, 3), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_ingest_raw(bus, NULL, 0), PR_OK); /* an empty event */

  /* events */
  const char bad_utf8[] = "\"ab\xc3\x28\"";
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)bad_utf8, strlen(bad_utf8)), PR_ERR_INVALID_UTF8);
  CHECK_MESSAGE("byte 3");
  const char truncated[] = "{\"a\":[1,2";
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)truncated, strlen(truncated)),
               PR_ERR_INVALID_JSON);
  CHECK_MESSAGE("byte 8");
  const char two_values[] = "{} {}";
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)two_values, strlen(two_values)),
               PR_ERR_INVALID_JSON);
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)"", 0), PR_ERR_INVALID_JSON);

  /* requests, filters, cursors */
  expect_poll(bus, "{\"limit\":\xfe}", PR_ERR_INVALID_UTF8, "byte 9");
  expect_poll(bus, "{\"limit\":", PR_ERR_INVALID_JSON, "byte");
  expect_poll(bus, "{\"filter\":{\"$eq\":}}", PR_ERR_INVALID_JSON, "byte 17");
  expect_poll(bus, "{\"limitt\":3}", PR_ERR_INVALID_REQUEST, "limitt");
  expect_poll(bus, "{\"limit\":\"ten\"}", PR_ERR_INVALID_REQUEST, "key `limit`");
  expect_poll(bus, "{\"shards\":[0,7]}", PR_ERR_INVALID_REQUEST, "shard 7");
  expect_poll(bus, "{\"filter\":{\"$and\":[]}}", PR_ERR_INVALID_FILTER, NULL);
  expect_poll(bus, "{\"filter\":{\"$regex\":{\"path\":\"a\",\"value\":1}}}",
              PR_ERR_INVALID_FILTER, "$regex");
  expect_poll(bus, "{\"from\":\"not a cursor!\"}", PR_ERR_INVALID_CURSOR, NULL);
  expect_poll(bus, "{\"from\":\"AAAA\"}", PR_ERR_INVALID_CURSOR, NULL);
  expect_poll(bus, NULL, PR_OK, NULL);
  expect_poll(bus, "null", PR_OK, NULL);
  char *json = (char *)0x1;
  CHECK_STATUS(pr_poll_json(bus, "{\"limit\":", &json, NULL), PR_ERR_INVALID_JSON);
  CHECK(json == (char *)0x1);

  /* result accessors */
  CHECK_STATUS(pr_poll(bus, NULL, &page), PR_OK);
  pr_event_view v;
  CHECK_STATUS(pr_poll_result_event(page, 1000, &v), PR_ERR_INVALID_ARGUMENT);
  CHECK_MESSAGE("index 1000");
  CHECK_STATUS(pr_poll_result_event(page, 0, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_poll_result_event(NULL, 0, &v), PR_ERR_NULL_ARGUMENT);
  pr_poll_result_free(page);

  /* scaling */
  uint16_t ids[4];
  size_t len = 77;
  CHECK_STATUS(pr_add_shards(bus, 3, ids, 2, &len), PR_ERR_BUFFER_TOO_SMALL);
  CHECK(len == 77);
  CHECK_STATUS(pr_shard_count(bus, &n), PR_OK);
  CHECK(n == 2); /* nothing was added */
  CHECK_STATUS(pr_add_shards(bus, 0, ids, 4, &len), PR_ERR_SCALING);
  uint16_t unknown = 999;
  CHECK_STATUS(pr_remove_shards(bus, &unknown, 1), PR_ERR_SCALING);
  CHECK_MESSAGE("999");
  CHECK_STATUS(pr_remove_shards(bus, NULL, 1), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_remove_shards(bus, ids, SIZE_MAX), PR_ERR_INVALID_ARGUMENT);
  uint16_t one_id[1];
  CHECK_STATUS(pr_shard_ids(bus, one_id, 1, &len), PR_ERR_BUFFER_TOO_SMALL);
  CHECK_MESSAGE("2 shards");
  pr_bus_free(bus);
}

/* drop_newest with a ring of 2: a burst is refused in part, every refusal is counted, and the
 * stats balance after flush. */
static void test_backpressure_burst(void) {
  enum { N = 20000 };
  pr_bus *bus = new_bus(
      "{\"shards\":1,\"ring_capacity\":2,\"batch\":{\"max_events\":1},"
      "\"backpressure\":\"drop_newest\",\"adapter\":{\"type\":\"memory\"}}");
  int refused = 0, accepted = 0;
  for (int i = 0; i < N; i++) {
    char event[32];
    int len = snprintf(event, sizeof event, "{\"n\":%d}", i);
    pr_status st = pr_ingest_raw(bus, (const uint8_t *)event, (size_t)len);
    if (st == PR_OK) {
      accepted++;
    } else {
      CHECK_STATUS(st, PR_ERR_BACKPRESSURE);
      refused++;
    }
  }
  CHECK(refused >= 1);
  CHECK_STATUS(pr_flush(bus), PR_OK);
  pr_stats s = stats_of(bus);
  CHECK(s.events_ingested == (uint64_t)accepted);
  CHECK(s.rejected_backpressure == (uint64_t)refused);
  check_balanced(bus);
  pr_bus_free(bus);
}

static void test_calls_after_shutdown(void) {
  pr_bus *bus = new_bus(MEMORY "}");
  CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)"1", 1), PR_OK);
  CHECK_STATUS(pr_shutdown(bus), PR_OK);
  CHECK_STATUS(pr_shutdown(bus), PR_OK); /* idempotent */
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)"1", 1), PR_ERR_SHUTTING_DOWN);
  CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)"1", 1), PR_ERR_SHUTTING_DOWN);
  CHECK_MESSAGE("shutting down");
  const uint8_t *ptrs[1] = {(const uint8_t *)"1"};
  size_t lens[1] = {1};
  size_t accepted = 5;
  CHECK_STATUS(pr_ingest_raw_batch(bus, ptrs, lens, 1, &accepted), PR_ERR_SHUTTING_DOWN);
  CHECK(accepted == 0);
  uint32_t ends[1] = {1};
  CHECK_STATUS(pr_ingest_raw_packed(bus, (const uint8_t *)"1", 1, ends, 1, &accepted),
               PR_ERR_SHUTTING_DOWN);
  pr_poll_result *page = NULL;
  CHECK_STATUS(pr_poll(bus, NULL, &page), PR_ERR_SHUTTING_DOWN);
  char *json = NULL;
  CHECK_STATUS(pr_poll_json(bus, NULL, &json, NULL), PR_ERR_SHUTTING_DOWN);
  CHECK_STATUS(pr_flush(bus), PR_ERR_SHUTTING_DOWN);
  uint16_t ids[2];
  size_t len;
  CHECK_STATUS(pr_add_shards(bus, 1, ids, 2, &len), PR_ERR_SHUTTING_DOWN);
  /* counters stay readable, and balance */
  pr_stats s = stats_of(bus);
  CHECK(s.events_ingested == 1 && s.events_dispatched == 1);
  CHECK(!s.shutdown_was_lossy);
  check_balanced(bus);
  pr_bus_free(bus);
}

/* A result owns its data: views stay valid after the bus is gone, until the result is freed. */
static void test_results_outlive_the_bus(void) {
  pr_bus *bus = new_bus(MEMORY "}");
  const char *payload = "{\"keep\":\"me\"}";
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)payload, strlen(payload)), PR_OK);
  CHECK_STATUS(pr_flush(bus), PR_OK);
  pr_poll_result *a = NULL, *b = NULL;
  CHECK_STATUS(pr_poll(bus, NULL, &a), PR_OK);
  CHECK_STATUS(pr_poll(bus, NULL, &b), PR_OK);
  pr_bus_free(bus);
  pr_event_view va, vb;
  CHECK_STATUS(pr_poll_result_event(a, 0, &va), PR_OK);
  CHECK_STATUS(pr_poll_result_event(b, 0, &vb), PR_OK);
  pr_poll_result_free(a);
  CHECK(vb.payload_len == strlen(payload) && memcmp(vb.payload, payload, vb.payload_len) == 0);
  CHECK(strcmp(vb.id, "0-0") == 0 || strlen(vb.id) > 0);
  /* Scribbling on a view changes nothing the library relies on. */
  vb.payload_len = (size_t)-1;
  vb.payload = NULL;
  pr_poll_result_free(b);
}

static void test_poll_json(void) {
  pr_bus *bus = new_bus(MEMORY ",\"shards\":1}");
  CHECK_STATUS(pr_ingest(bus, (const uint8_t *)"{\"n\":1}", 7), PR_OK);
  CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)"\x01\x02", 2), PR_OK);
  CHECK_STATUS(pr_flush(bus), PR_OK);
  char *json = NULL;
  size_t len = 0;
  CHECK_STATUS(pr_poll_json(bus, "{\"limit\":10}", &json, &len), PR_OK);
  CHECK(json != NULL && len == strlen(json));
  if (json) {
    CHECK(strstr(json, "\"payload\":{\"n\":1}") != NULL);
    CHECK(strstr(json, "\"payload_base64\":\"AQI=\"") != NULL);
    CHECK(strstr(json, "\"has_more\":false") != NULL);
    CHECK(strstr(json, "\"cursor\":\"") != NULL);
    json[0] = 0; /* the free must not depend on the contents */
  }
  pr_string_free(json);
  CHECK_STATUS(pr_poll_json(bus, NULL, &json, NULL), PR_OK);
  pr_string_free(json);
  pr_bus_free(bus);
}

/* The stats exports: a JSON document and a Prometheus exposition, both freed with
 * pr_string_free (their parsing is tested in tests/stats_export.rs); NULL handles and
 * out-parameters are refused. */
static void test_stats_exports(void) {
  pr_bus *bus = new_bus(MEMORY ",\"shards\":2}");
  for (int i = 0; i < 5; i++) CHECK_STATUS(pr_ingest(bus, (const uint8_t *)"{\"n\":1}", 7), PR_OK);
  CHECK_STATUS(pr_flush(bus), PR_OK);
  char *text = NULL;
  size_t len = 0;
  CHECK_STATUS(pr_stats_json(bus, &text, &len), PR_OK);
  CHECK(text != NULL && len == strlen(text));
  if (text) {
    CHECK(strstr(text, "\"events_ingested\":5") != NULL);
    CHECK(strstr(text, "\"shards\":[{\"") != NULL);
    CHECK(strstr(text, "\"name\":\"memory\"") != NULL);
  }
  pr_string_free(text);
  text = NULL;
  CHECK_STATUS(pr_stats_prometheus(bus, &text, NULL), PR_OK);
  CHECK(text != NULL && strstr(text, "\npurple_rain_events_ingested_total 5\n") != NULL);
  CHECK(text != NULL && strstr(text, "# TYPE purple_rain_events_ingested_total counter\n") != NULL);
  pr_string_free(text);
  CHECK_STATUS(pr_stats_json(NULL, &text, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_stats_prometheus(bus, NULL, NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_STATUS(pr_shutdown(bus), PR_OK);
  CHECK_STATUS(pr_stats_json(bus, &text, NULL), PR_OK); /* final figures after shutdown */
  CHECK(text != NULL && strstr(text, "\"workers_running\":0") != NULL);
  pr_string_free(text);
  pr_bus_free(bus);
}

static void test_scaling(void) {
  pr_bus *bus = new_bus(MEMORY ",\"shards\":2}");
  uint16_t ids[PR_MAX_SHARDS];
  size_t len = 0;
  CHECK_STATUS(pr_add_shards(bus, 2, ids, 2, &len), PR_OK);
  CHECK(len == 2 && ids[0] == 2 && ids[1] == 3);
  size_t n = 0;
  CHECK_STATUS(pr_shard_count(bus, &n), PR_OK);
  CHECK(n == 4);
  for (int i = 0; i < 100; i++) {
    char event[32];
    int l = snprintf(event, sizeof event, "{\"n\":%d}", i);
    CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)event, (size_t)l), PR_OK);
  }
  uint16_t remove[2] = {0, 3};
  CHECK_STATUS(pr_remove_shards(bus, remove, 2), PR_OK);
  CHECK_STATUS(pr_shard_ids(bus, ids, PR_MAX_SHARDS, &len), PR_OK);
  CHECK(len == 2 && ids[0] == 1 && ids[1] == 2);
  CHECK_STATUS(pr_flush(bus), PR_OK);
  check_balanced(bus);
  pr_poll_result *page = NULL;
  CHECK_STATUS(pr_poll(bus, "{\"limit\":1000}", &page), PR_OK);
  CHECK(pr_poll_result_len(page) == 100); /* removed shards stay pollable */
  pr_poll_result_free(page);
  pr_scaling_decision decision;
  CHECK_STATUS(pr_suggest_scaling(bus, &decision), PR_OK);
  CHECK(decision.action == PR_SCALING_NONE || decision.action == PR_SCALING_UP ||
        decision.action == PR_SCALING_DOWN);
  pr_bus_free(bus);
}

static double seconds(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A caller waiting in a blocking call costs no CPU (failure mode 38: busy-wait). */
static void test_long_poll_waits_without_spinning(void) {
  pr_bus *bus = new_bus(MEMORY "}");
  double wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
  pr_poll_result *page = NULL;
  CHECK_STATUS(pr_poll(bus, "{\"wait_ms\":400}", &page), PR_OK);
  wall = seconds(CLOCK_MONOTONIC) - wall;
  cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu;
  CHECK(pr_poll_result_len(page) == 0);
  pr_poll_result_free(page);
  CHECK(wall >= 0.35);
  if (cpu > wall / 2) {
    fprintf(stderr, "  long poll burned %.3fs CPU in %.3fs\n", cpu, wall);
    check_failures_in_test++;
  }
  pr_bus_free(bus);
}

static int thread_count(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int threads = -1;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "Threads: %d", &threads) == 1) break;
  }
  fclose(f);
  return threads;
}

/* One runtime for the process: 32 buses do not mean 32 thread pools (failure mode 46). */
static void test_many_buses_share_one_runtime(void) {
  enum { BUSES = 32 };
  pr_bus *buses[BUSES];
  for (int i = 0; i < BUSES; i++) buses[i] = new_bus(MEMORY ",\"shards\":4}");
  int threads = thread_count();
  if (threads > 24) {
    fprintf(stderr, "  %d threads for %d buses\n", threads, BUSES);
    check_failures_in_test++;
  }
  for (int i = 0; i < BUSES; i++) pr_bus_free(buses[i]);
}

static void test_last_error_is_per_thread_and_empty_at_first(void) {
  /* This runs first in its own process only when selected; in the suite the message may be set
   * already, so check the per-call behaviour instead. */
  CHECK_STATUS(pr_bus_new("{\"shardz\":1}", NULL), PR_ERR_NULL_ARGUMENT);
  CHECK_MESSAGE("`out`");
  pr_bus *out = NULL;
  CHECK_STATUS(pr_bus_new("{\"shardz\":1}", &out), PR_ERR_CONFIG);
  CHECK_MESSAGE("shardz");
}

/* Polls from `cursor` (updated in place) until has_more is false, marking each {"n":N} in
 * `seen`; returns how many events came back. */
static size_t drain_marking(pr_bus *bus, char *cursor, size_t cursor_size, unsigned char *seen, long n_max) {
  size_t total = 0;
  for (;;) {
    char request[1200];
    snprintf(request, sizeof request, "{\"limit\":250,\"from\":\"%s\"}", cursor);
    pr_poll_result *page = NULL;
    CHECK_STATUS(pr_poll(bus, request, &page), PR_OK);
    if (page == NULL) break;
    size_t len = pr_poll_result_len(page);
    for (size_t i = 0; i < len; i++) {
      pr_event_view v;
      CHECK_STATUS(pr_poll_result_event(page, i, &v), PR_OK);
      long n = payload_n(&v);
      CHECK(n >= 0 && n < n_max);
      if (n >= 0 && n < n_max) {
        CHECK(seen[n] == 0);
        seen[n] = 1;
      }
    }
    total += len;
    snprintf(cursor, cursor_size, "%s", pr_poll_result_cursor(page));
    int more = pr_poll_result_has_more(page);
    pr_poll_result_free(page);
    if (!more) break;
  }
  return total;
}

static void ingest_range(pr_bus *bus, long from, long to) {
  for (long i = from; i < to; i++) {
    char event[32];
    int len = snprintf(event, sizeof event, "{\"n\":%ld}", i);
    CHECK_STATUS(pr_ingest_raw(bus, (const uint8_t *)event, (size_t)len), PR_OK);
  }
  CHECK_STATUS(pr_flush(bus), PR_OK);
}

/* The disk adapter: events and a kept cursor survive closing and reopening the bus; a second
 * bus on the same directory is refused with PR_ERR_DISK_LOCKED while the first runs. */
static void test_disk_survives_reopen(void) {
  enum { FIRST = 1000, TOTAL = 1500 };
  char dir[] = "/tmp/purple-rain-c-disk-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  char config[256];
  snprintf(config, sizeof config, "{\"shards\":4,\"adapter\":{\"type\":\"disk\",\"dir\":\"%s\"}}", dir);
  static unsigned char seen[TOTAL];
  memset(seen, 0, sizeof seen);
  char cursor[1024] = "";

  pr_bus *bus = new_bus(config);
  ingest_range(bus, 0, FIRST);
  CHECK(drain_marking(bus, cursor, sizeof cursor, seen, TOTAL) == FIRST);
  pr_bus *second = NULL;
  CHECK_STATUS(pr_bus_new(config, &second), PR_ERR_DISK_LOCKED);
  CHECK(second == NULL);
  CHECK_MESSAGE("pid");
  CHECK_STATUS(pr_shutdown(bus), PR_OK);
  pr_bus_free(bus);

  bus = new_bus(config);
  ingest_range(bus, FIRST, TOTAL);
  CHECK(drain_marking(bus, cursor, sizeof cursor, seen, TOTAL) == TOTAL - FIRST);
  for (long n = 0; n < TOTAL; n++) CHECK(seen[n] == 1);
  CHECK_STATUS(pr_shutdown(bus), PR_OK);
  pr_bus_free(bus);

  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
  CHECK(system(rm) == 0);
}

int main(int argc, char **argv) {
  CHECK(strcmp(pr_last_error_message(), "") == 0); /* nothing failed yet on this thread */
  const test_case tests[] = {
      {"versions", test_versions},
      {"free_null_is_a_noop", test_free_null_is_a_noop},
      {"round_trip_with_cursors", test_round_trip_with_cursors},
      {"net_two_nodes", test_net_two_nodes},
      {"batch_stops_at_refused_event", test_batch_stops_at_refused_event},
      {"packed_stops_at_refused_event", test_packed_stops_at_refused_event},
      {"malformed_batches_are_refused_whole", test_malformed_batches_are_refused_whole},
      {"every_status_from_bad_input", test_every_status_from_bad_input},
      {"flush_timeout", test_flush_timeout},
      {"backpressure_burst", test_backpressure_burst},
      {"calls_after_shutdown", test_calls_after_shutdown},
      {"results_outlive_the_bus", test_results_outlive_the_bus},
      {"poll_json", test_poll_json},
      {"stats_exports", test_stats_exports},
      {"scaling", test_scaling},
      {"long_poll_waits_without_spinning", test_long_poll_waits_without_spinning},
      {"many_buses_share_one_runtime", test_many_buses_share_one_runtime},
      {"last_error_messages", test_last_error_is_per_thread_and_empty_at_first},
      {"disk_survives_reopen", test_disk_survives_reopen},
  };
  int initial_failures = check_failures_in_test;
  int rc = run_tests(tests, sizeof tests / sizeof tests[0], argc, argv);
  return initial_failures ? 1 : rc;
}
