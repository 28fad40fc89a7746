#include "shim.h"

#include <stdlib.h>
#include <string.h>

/* The message of the call that just failed on this thread, copied (NULL if out of memory). */
static char *last_message(void) {
  const char *m = pr_last_error_message();
  return strdup(m != NULL ? m : "");
}

static gopr_ret done(pr_status status, size_t n, void *ptr) {
  gopr_ret r = {status, n, ptr, NULL};
  if (status != PR_OK) r.msg = last_message();
  return r;
}

static const pr_status all_statuses[] = pr_status_ALL;

size_t gopr_statuses(const pr_status **out) {
  *out = all_statuses;
  return sizeof all_statuses / sizeof all_statuses[0];
}

gopr_ret gopr_bus_new(const char *config_json) {
  pr_bus *bus = NULL;
  pr_status s = pr_bus_new(config_json, &bus);
  return done(s, 0, s == PR_OK ? bus : NULL);
}

void gopr_bus_free(uintptr_t bus) { pr_bus_free((pr_bus *)bus); }

gopr_ret gopr_flush(uintptr_t bus) { return done(pr_flush(GOPR_BUS(bus)), 0, NULL); }

gopr_ret gopr_flush_timeout(uintptr_t bus, uint64_t timeout_ms, pr_flush_report *out) {
  return done(pr_flush_timeout(GOPR_BUS(bus), timeout_ms, out), 0, NULL);
}

gopr_ret gopr_shutdown(uintptr_t bus) { return done(pr_shutdown(GOPR_BUS(bus)), 0, NULL); }

gopr_ret gopr_ingest(uintptr_t bus, const uint8_t *json, size_t len) {
  return done(pr_ingest(GOPR_BUS(bus), json, len), 0, NULL);
}

gopr_ret gopr_ingest_raw(uintptr_t bus, const uint8_t *bytes, size_t len) {
  pr_status s = pr_ingest_raw(GOPR_BUS(bus), bytes, len);
  if (s == PR_OK) { /* the hot path: no copy, no branch on the message */
    gopr_ret r = {PR_OK, 0, NULL, NULL};
    return r;
  }
  return done(s, 0, NULL);
}

gopr_ret gopr_ingest_raw_with_key(uintptr_t bus, const uint8_t *bytes, size_t len,
                                  const uint8_t *key, size_t key_len) {
  return done(pr_ingest_raw_with_key(GOPR_BUS(bus), bytes, len, key, key_len), 0, NULL);
}

gopr_ret gopr_ingest_raw_packed(uintptr_t bus, const uint8_t *data, size_t data_len,
                                const uint32_t *ends, size_t count) {
  size_t accepted = 0;
  pr_status s = pr_ingest_raw_packed(GOPR_BUS(bus), data, data_len, ends, count, &accepted);
  return done(s, accepted, NULL);
}

gopr_ret gopr_poll(uintptr_t bus, const char *request_json) {
  pr_poll_result *result = NULL;
  pr_status s = pr_poll(GOPR_BUS(bus), request_json, &result);
  if (s != PR_OK) return done(s, 0, NULL);
  size_t len = pr_poll_result_len(result);
  gopr_page *page = malloc(sizeof(gopr_page) + len * sizeof(gopr_event));
  if (page == NULL) {
    pr_poll_result_free(result);
    gopr_ret r = {PR_ERR_PANIC, 0, NULL, strdup("out of memory for a page of events")};
    return r;
  }
  page->result = result;
  page->events = (gopr_event *)(page + 1);
  page->len = len;
  page->payload_bytes = 0;
  page->id_bytes = 0;
  for (size_t i = 0; i < len; i++) {
    pr_event_view v;
    s = pr_poll_result_event(result, i, &v);
    if (s != PR_OK) { /* only for a library bug: i < len always */
      gopr_ret r = done(s, 0, NULL);
      gopr_page_free((uintptr_t)page);
      return r;
    }
    gopr_event *e = &page->events[i];
    e->payload = v.payload;
    e->payload_len = v.payload_len;
    e->id = v.id;
    e->id_len = strlen(v.id);
    e->sequence = v.sequence;
    e->timestamp_ns = v.timestamp_ns;
    e->origin = v.origin;
    e->shard = v.shard;
    page->payload_bytes += v.payload_len;
    page->id_bytes += e->id_len;
  }
  page->cursor = pr_poll_result_cursor(result);
  page->cursor_len = strlen(page->cursor);
  page->has_more = pr_poll_result_has_more(result);
  page->missed = pr_poll_result_missed(result);
  return done(PR_OK, len, page);
}

void gopr_page_free(uintptr_t p) {
  gopr_page *page = (gopr_page *)p;
  if (page == NULL) return;
  pr_poll_result_free(page->result);
  free(page);
}

gopr_ret gopr_stats(uintptr_t bus, pr_stats *out) { return done(pr_stats_get(GOPR_BUS(bus), out), 0, NULL); }

/* The text (ptr, length n) is the library's; Go copies it and frees it with pr_string_free. */
gopr_ret gopr_stats_text(uintptr_t bus, int prometheus) {
  char *text = NULL;
  size_t len = 0;
  pr_status s = prometheus ? pr_stats_prometheus(GOPR_BUS(bus), &text, &len)
                           : pr_stats_json(GOPR_BUS(bus), &text, &len);
  return done(s, len, s == PR_OK ? text : NULL);
}

gopr_ret gopr_shard_ids(uintptr_t bus, uint16_t *out_ids, size_t capacity) {
  size_t len = 0;
  pr_status s = pr_shard_ids(GOPR_BUS(bus), out_ids, capacity, &len);
  return done(s, len, NULL);
}

gopr_ret gopr_add_shards(uintptr_t bus, uint16_t count, uint16_t *out_ids, size_t capacity) {
  size_t len = 0;
  pr_status s = pr_add_shards(GOPR_BUS(bus), count, out_ids, capacity, &len);
  return done(s, len, NULL);
}

gopr_ret gopr_remove_shards(uintptr_t bus, const uint16_t *ids, size_t count) {
  return done(pr_remove_shards(GOPR_BUS(bus), ids, count), 0, NULL);
}

gopr_ret gopr_suggest_scaling(uintptr_t bus, pr_scaling_decision *out) {
  return done(pr_suggest_scaling(GOPR_BUS(bus), out), 0, NULL);
}
