/* C side of the Go binding: small wrappers that make each library call and, when it fails,
 * copy pr_last_error_message() in the same call. The message is thread-local in the library and
 * a goroutine may move to another OS thread between two cgo calls, so reading it in a second
 * crossing could return another call's message; doing both in one C function cannot.
 *
 * Everything here is plain C over include/purple_rain.h; no Go pointers are stored.
 *
 * The bus handle crosses as a uintptr_t: cgo cannot see inside the opaque pr_bus, so a
 * `pr_bus *` argument would be run through its Go-pointer check (and boxed) on every call,
 * which costs more than a whole ingest. It is C memory, never a Go pointer. */
#ifndef PURPLERAIN_GO_SHIM_H
#define PURPLERAIN_GO_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "purple_rain.h"

#define GOPR_BUS(b) ((const pr_bus *)(b))

/* What every wrapper returns: the status, one count or pointer result (accepted events, shard
 * count, the new bus, a page) and, on failure only, a malloc'd copy of the library's message
 * that the caller frees. */
typedef struct gopr_ret {
  pr_status status;
  size_t n;
  void *ptr;
  char *msg;
} gopr_ret;

/* One event of a page, as gopr_poll lays it out: the library's view plus the id's length, so
 * Go copies ids without scanning for the NUL. */
typedef struct gopr_event {
  const uint8_t *payload;
  size_t payload_len;
  const char *id;
  size_t id_len;
  uint64_t sequence;
  uint64_t timestamp_ns;
  uint64_t origin;
  uint16_t shard;
} gopr_event;

/* A page read in one crossing: the library's result (kept alive until gopr_page_free, since the
 * views borrow from it), its events, and the byte totals Go needs to allocate once per page.
 * `events` points into the same allocation as the page. */
typedef struct gopr_page {
  pr_poll_result *result;
  gopr_event *events;
  size_t len;
  size_t payload_bytes;
  size_t id_bytes;
  const char *cursor;
  size_t cursor_len;
  bool has_more;
  uint64_t missed;
} gopr_page;

/* Every status of the header (pr_status_ALL) in *out; returns how many. Static storage. */
size_t gopr_statuses(const pr_status **out);

gopr_ret gopr_bus_new(const char *config_json);
void gopr_bus_free(uintptr_t bus);
gopr_ret gopr_flush(uintptr_t bus);
gopr_ret gopr_flush_timeout(uintptr_t bus, uint64_t timeout_ms, pr_flush_report *out);
gopr_ret gopr_shutdown(uintptr_t bus);

gopr_ret gopr_ingest(uintptr_t bus, const uint8_t *json, size_t len);
gopr_ret gopr_ingest_raw(uintptr_t bus, const uint8_t *bytes, size_t len);
gopr_ret gopr_ingest_raw_with_key(uintptr_t bus, const uint8_t *bytes, size_t len,
                                  const uint8_t *key, size_t key_len);
gopr_ret gopr_ingest_raw_packed(uintptr_t bus, const uint8_t *data, size_t data_len,
                                const uint32_t *ends, size_t count);

/* pr_poll, then every event view into one malloc'd gopr_page (returned in ptr). */
gopr_ret gopr_poll(uintptr_t bus, const char *request_json);
void gopr_page_free(uintptr_t page);

gopr_ret gopr_stats(uintptr_t bus, pr_stats *out);
gopr_ret gopr_stats_text(uintptr_t bus, int prometheus);
gopr_ret gopr_shard_ids(uintptr_t bus, uint16_t *out_ids, size_t capacity);
gopr_ret gopr_add_shards(uintptr_t bus, uint16_t count, uint16_t *out_ids, size_t capacity);
gopr_ret gopr_remove_shards(uintptr_t bus, const uint16_t *ids, size_t count);
gopr_ret gopr_suggest_scaling(uintptr_t bus, pr_scaling_decision *out);

#endif
