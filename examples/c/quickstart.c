/* Quickstart: create a bus with the in-memory adapter, ingest, flush, poll every event page by
 * page with the cursor, read the counters, shut down. Build and run: `make run` here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "purple_rain.h"

/* Prints the failed call's status and this thread's detailed message, then exits. */
static void check(pr_status status, const char *what) {
  if (status != PR_OK) {
    fprintf(stderr, "%s failed: %s: %s\n", what, pr_status_name(status), pr_last_error_message());
    exit(1);
  }
}

int main(void) {
  if (pr_abi_version() != PR_ABI_VERSION) {
    fprintf(stderr, "header/library mismatch: ABI %u vs %u\n", pr_abi_version(), PR_ABI_VERSION);
    return 1;
  }
  printf("purple_rain %s\n", pr_version());

  pr_bus *bus = NULL;
  check(pr_bus_new("{\"shards\":2,\"adapter\":{\"type\":\"memory\"}}", &bus), "pr_bus_new");

  /* One JSON event (validated), then raw bytes in one packed call. */
  const char *hello = "{\"kind\":\"hello\"}";
  check(pr_ingest(bus, (const uint8_t *)hello, strlen(hello)), "pr_ingest");
  const char packed[] = "{\"n\":1}{\"n\":2}{\"n\":3}";
  const uint32_t ends[] = {7, 14, 21};
  size_t accepted = 0;
  check(pr_ingest_raw_packed(bus, (const uint8_t *)packed, sizeof packed - 1, ends, 3, &accepted),
        "pr_ingest_raw_packed");

  check(pr_flush(bus), "pr_flush"); /* barrier: everything above reached the adapter */

  /* Poll two events per page, resuming from each page's cursor. */
  char request[512] = "{\"limit\":2}";
  for (;;) {
    pr_poll_result *page = NULL;
    check(pr_poll(bus, request, &page), "pr_poll");
    for (size_t i = 0; i < pr_poll_result_len(page); i++) {
      pr_event_view ev;
      check(pr_poll_result_event(page, i, &ev), "pr_poll_result_event");
      printf("shard %u seq %llu id %s: %.*s\n", ev.shard, (unsigned long long)ev.sequence, ev.id,
             (int)ev.payload_len, (const char *)ev.payload);
    }
    bool more = pr_poll_result_has_more(page);
    snprintf(request, sizeof request, "{\"limit\":2,\"from\":\"%s\"}", pr_poll_result_cursor(page));
    pr_poll_result_free(page); /* views and cursor are invalid from here */
    if (!more) break;
  }

  check(pr_shutdown(bus), "pr_shutdown");
  pr_stats stats;
  check(pr_stats_get(bus, &stats), "pr_stats_get");
  printf("ingested %llu, dispatched %llu, dropped %llu\n",
         (unsigned long long)stats.events_ingested, (unsigned long long)stats.events_dispatched,
         (unsigned long long)stats.events_dropped);
  pr_bus_free(bus);
  return 0;
}
