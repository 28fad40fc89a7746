/* Throughput of the C ABI, built with -O2 against the release library (tests/c/bench.sh runs it
 * next to the Rust baseline, benches/ffi_baseline.rs, which does the same work through the
 * Rust API).
 *
 * Ingest: 100-byte events, Noop adapter, 4 shards, ring_capacity 65536, "backpressure":"block",
 * timed from the first call to the end of pr_flush (every event handed to the adapter):
 * pr_ingest_raw one by one, pr_ingest_raw_batch and pr_ingest_raw_packed in batches of 1000.
 * Poll: Memory adapter backlog of 1M events, pages of 1000 read through views.
 *
 * Usage: bench [ingest_events] [poll_backlog] [repeats]; the best of `repeats` runs is printed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "purple_rain.h"

enum { EVENT_BYTES = 100, POOL = 1000, BATCH = 1000 };

static uint8_t pool[POOL * EVENT_BYTES];
static const uint8_t *pool_ptrs[POOL];
static size_t pool_lens[POOL];
static uint32_t pool_ends[POOL];

static void check(pr_status s, const char *what) {
  if (s != PR_OK) {
    fprintf(stderr, "%s: %s: %s\n", what, pr_status_name(s), pr_last_error_message());
    exit(1);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_pool(void) {
  for (int i = 0; i < POOL; i++) {
    char *e = (char *)pool + i * EVENT_BYTES;
    int n = snprintf(e, EVENT_BYTES, "{\"n\":%d,\"pad\":\"", i);
    memset(e + n, 'x', EVENT_BYTES - n - 2);
    e[EVENT_BYTES - 2] = '"';
    e[EVENT_BYTES - 1] = '}';
    pool_ptrs[i] = (const uint8_t *)e;
    pool_lens[i] = EVENT_BYTES;
    pool_ends[i] = (uint32_t)((i + 1) * EVENT_BYTES);
  }
}

static const char *NOOP =
    "{\"shards\":4,\"ring_capacity\":65536,\"backpressure\":\"block\",\"adapter\":{\"type\":\"noop\"}}";

typedef enum { SINGLE, BATCHED, PACKED } mode;

static double ingest_run(mode m, long n) {
  pr_bus *bus = NULL;
  check(pr_bus_new(NOOP, &bus), "pr_bus_new");
  double start = now();
  if (m == SINGLE) {
    for (long i = 0; i < n; i++) {
      check(pr_ingest_raw(bus, pool_ptrs[i % POOL], EVENT_BYTES), "pr_ingest_raw");
    }
  } else {
    for (long i = 0; i < n; i += BATCH) {
      size_t accepted = 0;
      if (m == BATCHED) {
        check(pr_ingest_raw_batch(bus, pool_ptrs, pool_lens, BATCH, &accepted), "batch");
      } else {
        check(pr_ingest_raw_packed(bus, pool, sizeof pool, pool_ends, BATCH, &accepted), "packed");
      }
    }
  }
  check(pr_flush(bus), "pr_flush");
  double elapsed = now() - start;
  pr_stats s;
  check(pr_stats_get(bus, &s), "pr_stats_get");
  if (s.events_dispatched != (uint64_t)n) {
    fprintf(stderr, "dispatched %llu of %ld\n", (unsigned long long)s.events_dispatched, n);
    exit(1);
  }
  pr_bus_free(bus);
  return (double)n / elapsed;
}

static double poll_run(long backlog) {
  pr_bus *bus = NULL;
  char config[256];
  snprintf(config, sizeof config,
           "{\"shards\":4,\"ring_capacity\":65536,\"backpressure\":\"block\","
           "\"adapter\":{\"type\":\"memory\",\"max_events_per_shard\":%ld}}",
           backlog);
  check(pr_bus_new(config, &bus), "pr_bus_new");
  for (long i = 0; i < backlog; i += BATCH) {
    size_t accepted = 0;
    check(pr_ingest_raw_packed(bus, pool, sizeof pool, pool_ends, BATCH, &accepted), "packed");
  }
  check(pr_flush(bus), "pr_flush");
  char request[1024] = "{\"limit\":1000}";
  long events = 0;
  uint64_t checksum = 0;
  double start = now();
  for (;;) {
    pr_poll_result *page = NULL;
    check(pr_poll(bus, request, &page), "pr_poll");
    size_t len = pr_poll_result_len(page);
    for (size_t i = 0; i < len; i++) {
      pr_event_view v;
      check(pr_poll_result_event(page, i, &v), "pr_poll_result_event");
      checksum += v.payload_len + v.payload[v.payload_len - 1] + v.sequence;
    }
    events += (long)len;
    int more = pr_poll_result_has_more(page);
    snprintf(request, sizeof request, "{\"limit\":1000,\"from\":\"%s\"}",
             pr_poll_result_cursor(page));
    pr_poll_result_free(page);
    if (!more) break;
  }
  double elapsed = now() - start;
  if (events != backlog || checksum == 0) {
    fprintf(stderr, "polled %ld of %ld\n", events, backlog);
    exit(1);
  }
  pr_bus_free(bus);
  return (double)events / elapsed;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 5000000;
  long backlog = argc > 2 ? atol(argv[2]) : 1000000;
  int repeats = argc > 3 ? atoi(argv[3]) : 3;
  n -= n % BATCH;
  backlog -= backlog % BATCH;
  make_pool();
  const char *names[] = {"pr_ingest_raw", "pr_ingest_raw_batch", "pr_ingest_raw_packed"};
  for (int m = SINGLE; m <= PACKED; m++) {
    double best = 0;
    for (int r = 0; r < repeats; r++) {
      double rate = ingest_run((mode)m, n);
      if (rate > best) best = rate;
    }
    printf("c    %-22s %12.0f events/s  %7.1f ns/event  (%ld events x %d, best)\n", names[m],
           best, 1e9 / best, n, repeats);
  }
  double best = 0;
  for (int r = 0; r < repeats; r++) {
    double rate = poll_run(backlog);
    if (rate > best) best = rate;
  }
  printf("c    %-22s %12.0f events/s  %7.1f ns/event  (backlog %ld, pages of 1000, views)\n",
         "pr_poll", best, 1e9 / best, backlog);
  return 0;
}
