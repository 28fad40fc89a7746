/* 8 threads ingest and poll while a ninth shuts the bus down (failure mode 37: the handle must
 * stay valid for threads entering a call during shutdown). Every call ends PR_OK,
 * PR_ERR_SHUTTING_DOWN or, for ingest, PR_ERR_BACKPRESSURE; the stats balance afterwards. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

enum { THREADS = 8 };

typedef struct {
  const pr_bus *bus;
  int index;
  long ok, refused, after_shutdown, unexpected, events_polled;
} worker;

static atomic_int started;

static void note(worker *w, pr_status st, int ingest) {
  if (st == PR_OK) {
    w->ok++;
  } else if (st == PR_ERR_SHUTTING_DOWN) {
    w->after_shutdown++;
  } else if (ingest && st == PR_ERR_BACKPRESSURE) {
    w->refused++;
  } else {
    fprintf(stderr, "  thread %d: unexpected %s: %s\n", w->index, pr_status_name(st),
            pr_last_error_message());
    w->unexpected++;
  }
}

static void *run(void *arg) {
  worker *w = arg;
  atomic_fetch_add(&started, 1);
  char event[64];
  uint8_t packed[64 * 10];
  uint32_t ends[10];
  for (long i = 0; w->after_shutdown < 50; i++) {
    int len = snprintf(event, sizeof event, "{\"t\":%d,\"i\":%ld}", w->index, i);
    switch (i % 4) {
      case 0:
        note(w, pr_ingest(w->bus, (const uint8_t *)event, (size_t)len), 1);
        break;
      case 1:
        note(w, pr_ingest_raw(w->bus, (const uint8_t *)event, (size_t)len), 1);
        break;
      case 2: {
        size_t off = 0;
        for (int k = 0; k < 10; k++) {
          off += (size_t)snprintf((char *)packed + off, 64, "{\"t\":%d,\"k\":%d}", w->index, k);
          ends[k] = (uint32_t)off;
        }
        size_t accepted = 0;
        note(w, pr_ingest_raw_packed(w->bus, packed, off, ends, 10, &accepted), 1);
        break;
      }
      default: {
        pr_poll_result *page = NULL;
        pr_status st = pr_poll(w->bus, "{\"limit\":50}", &page);
        note(w, st, 0);
        if (st == PR_OK) {
          size_t n = pr_poll_result_len(page);
          for (size_t k = 0; k < n; k++) {
            pr_event_view v;
            if (pr_poll_result_event(page, k, &v) == PR_OK && v.payload_len > 0 &&
                v.payload[0] == '{')
              w->events_polled++;
          }
          pr_poll_result_free(page);
        }
        if (i % 64 == 3) {
          pr_stats s;
          note(w, pr_stats_get(w->bus, &s), 0);
        }
      }
    }
  }
  return NULL;
}

static void test_shutdown_while_threads_ingest_and_poll(void) {
  for (int round = 0; round < 3; round++) {
    pr_bus *bus = NULL;
    CHECK_STATUS(pr_bus_new("{\"shards\":4,\"ring_capacity\":256,\"adapter\":{\"type\":\"memory\","
                            "\"max_events_per_shard\":10000}}",
                            &bus),
                 PR_OK);
    if (!bus) return;
    worker workers[THREADS];
    pthread_t threads[THREADS];
    atomic_store(&started, 0);
    for (int i = 0; i < THREADS; i++) {
      memset(&workers[i], 0, sizeof workers[i]);
      workers[i].bus = bus;
      workers[i].index = i;
      pthread_create(&threads[i], NULL, run, &workers[i]);
    }
    while (atomic_load(&started) < THREADS) usleep(100);
    usleep(20000 + 30000 * round);
    CHECK_STATUS(pr_shutdown(bus), PR_OK); /* the ninth thread */
    long ok = 0, unexpected = 0, after = 0, polled = 0;
    for (int i = 0; i < THREADS; i++) {
      pthread_join(threads[i], NULL);
      ok += workers[i].ok;
      unexpected += workers[i].unexpected;
      after += workers[i].after_shutdown;
      polled += workers[i].events_polled;
    }
    CHECK(unexpected == 0);
    CHECK(ok > 0);
    CHECK(after >= 50 * THREADS);
    pr_stats s;
    CHECK_STATUS(pr_stats_get(bus, &s), PR_OK);
    CHECK(s.events_ingested > 0);
    if (s.events_dispatched + s.events_dropped != s.events_ingested) {
      fprintf(stderr, "  unbalanced after shutdown: %llu + %llu != %llu\n",
              (unsigned long long)s.events_dispatched, (unsigned long long)s.events_dropped,
              (unsigned long long)s.events_ingested);
      check_failures_in_test++;
    }
    printf("     round %d: %ld ok calls, %llu ingested, %ld polled, %ld calls after shutdown\n",
           round, ok, (unsigned long long)s.events_ingested, polled, after);
    pr_bus_free(bus);
  }
}

/* Many threads calling pr_shutdown at once all return after the one shutdown. */
static pr_bus *shared_bus;

static void *shutdown_thread(void *arg) {
  pr_status *st = arg;
  *st = pr_shutdown(shared_bus);
  return NULL;
}

static void test_concurrent_shutdowns(void) {
  CHECK_STATUS(pr_bus_new("{\"adapter\":{\"type\":\"memory\"}}", &shared_bus), PR_OK);
  for (int i = 0; i < 1000; i++) {
    char event[32];
    int len = snprintf(event, sizeof event, "{\"n\":%d}", i);
    CHECK_STATUS(pr_ingest_raw(shared_bus, (const uint8_t *)event, (size_t)len), PR_OK);
  }
  pthread_t threads[THREADS];
  pr_status results[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, shutdown_thread, &results[i]);
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    CHECK_STATUS(results[i], PR_OK);
  }
  pr_stats s;
  CHECK_STATUS(pr_stats_get(shared_bus, &s), PR_OK);
  CHECK(s.events_ingested == 1000 && s.events_dispatched == 1000);
  pr_bus_free(shared_bus);
}

/* pr_shutdown wakes a thread parked in a long poll instead of leaving it to its timer, and the
 * waiter burns no CPU meanwhile (failure mode 38). */
typedef struct {
  const pr_bus *bus;
  pr_status status;
  double seconds;
} long_poll;

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *long_poll_thread(void *arg) {
  long_poll *lp = arg;
  double start = mono();
  pr_poll_result *page = NULL;
  lp->status = pr_poll(lp->bus, "{\"wait_ms\":5000}", &page);
  lp->seconds = mono() - start;
  pr_poll_result_free(page);
  return NULL;
}

static void test_shutdown_wakes_long_poll(void) {
  pr_bus *bus = NULL;
  CHECK_STATUS(pr_bus_new("{\"adapter\":{\"type\":\"memory\"}}", &bus), PR_OK);
  long_poll lp = {bus, PR_OK, 0};
  pthread_t thread;
  pthread_create(&thread, NULL, long_poll_thread, &lp);
  usleep(200000);
  CHECK_STATUS(pr_shutdown(bus), PR_OK);
  pthread_join(thread, NULL);
  CHECK(lp.status == PR_OK || lp.status == PR_ERR_SHUTTING_DOWN);
  if (lp.seconds > 2.0) {
    fprintf(stderr, "  long poll returned %.2fs after start, not at shutdown (%s)\n", lp.seconds,
            pr_status_name(lp.status));
    check_failures_in_test++;
  }
  pr_bus_free(bus);
}

int main(int argc, char **argv) {
  const test_case tests[] = {
      {"shutdown_while_threads_ingest_and_poll", test_shutdown_while_threads_ingest_and_poll},
      {"concurrent_shutdowns", test_concurrent_shutdowns},
      {"shutdown_wakes_long_poll", test_shutdown_wakes_long_poll},
  };
  return run_tests(tests, sizeof tests / sizeof tests[0], argc, argv);
}
