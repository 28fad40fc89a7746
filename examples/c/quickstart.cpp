// Quickstart in C++: small RAII wrappers own the bus and each poll result, and turn statuses
// into exceptions that carry the library's message. Build and run: `make run` here.
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "purple_rain.h"

namespace purple_rain {

struct Error : std::runtime_error {
  pr_status status;
  Error(pr_status s, const std::string &what)
      : std::runtime_error(what + ": " + pr_status_name(s) + ": " + pr_last_error_message()),
        status(s) {}
};

inline void check(pr_status s, const char *what) {
  if (s != PR_OK) throw Error(s, what);
}

struct Event {
  std::string_view payload;  // borrowed from the Page
  std::string_view id;       // borrowed from the Page
  uint16_t shard;
  uint64_t sequence;
  uint64_t timestamp_ns;
};

// One page of a poll. Owns the pr_poll_result; events borrow from it.
class Page {
 public:
  explicit Page(pr_poll_result *r) : result_(r, &pr_poll_result_free) {}
  size_t size() const { return pr_poll_result_len(result_.get()); }
  Event operator[](size_t i) const {
    pr_event_view v;
    check(pr_poll_result_event(result_.get(), i, &v), "pr_poll_result_event");
    return {{reinterpret_cast<const char *>(v.payload), v.payload_len}, v.id, v.shard, v.sequence,
            v.timestamp_ns};
  }
  std::string cursor() const { return pr_poll_result_cursor(result_.get()); }
  bool has_more() const { return pr_poll_result_has_more(result_.get()); }

 private:
  std::unique_ptr<pr_poll_result, decltype(&pr_poll_result_free)> result_;
};

// A bus. Destruction shuts down (if needed) and frees; move-only.
class Bus {
 public:
  explicit Bus(const std::string &config_json) : bus_(nullptr, &pr_bus_free) {
    pr_bus *raw = nullptr;
    check(pr_bus_new(config_json.c_str(), &raw), "pr_bus_new");
    bus_.reset(raw);
  }
  void ingest(std::string_view json) {
    check(pr_ingest(bus_.get(), reinterpret_cast<const uint8_t *>(json.data()), json.size()),
          "pr_ingest");
  }
  // Packs the events into one buffer: one call, one copy.
  size_t ingest_batch(const std::vector<std::string> &events) {
    std::string data;
    std::vector<uint32_t> ends;
    for (const auto &e : events) {
      data += e;
      ends.push_back(static_cast<uint32_t>(data.size()));
    }
    size_t accepted = 0;
    check(pr_ingest_raw_packed(bus_.get(), reinterpret_cast<const uint8_t *>(data.data()),
                               data.size(), ends.data(), ends.size(), &accepted),
          "pr_ingest_raw_packed");
    return accepted;
  }
  void flush() { check(pr_flush(bus_.get()), "pr_flush"); }
  Page poll(const std::string &request) {
    pr_poll_result *r = nullptr;
    check(pr_poll(bus_.get(), request.c_str(), &r), "pr_poll");
    return Page(r);
  }
  pr_stats stats() const {
    pr_stats s;
    check(pr_stats_get(bus_.get(), &s), "pr_stats_get");
    return s;
  }
  void shutdown() { check(pr_shutdown(bus_.get()), "pr_shutdown"); }

 private:
  std::unique_ptr<pr_bus, decltype(&pr_bus_free)> bus_;
};

}  // namespace purple_rain

int main() {
  using namespace purple_rain;
  try {
    Bus bus(R"({"shards":2,"adapter":{"type":"memory"}})");
    bus.ingest(R"({"kind":"hello"})");
    bus.ingest_batch({R"({"n":1})", R"({"n":2})", R"({"n":3})"});
    bus.flush();
    std::string from;
    for (;;) {
      Page page = bus.poll(R"({"limit":2,"from":")" + from + R"("})");
      for (size_t i = 0; i < page.size(); i++) {
        Event e = page[i];
        std::cout << "shard " << e.shard << " seq " << e.sequence << " id " << e.id << ": "
                  << e.payload << "\n";
      }
      from = page.cursor();
      if (!page.has_more()) break;
    }
    try {
      bus.poll(R"({"from":"garbage"})");
    } catch (const Error &e) {
      std::cout << "expected error: " << e.what() << "\n";
    }
    bus.shutdown();
    pr_stats s = bus.stats();
    std::cout << "ingested " << s.events_ingested << ", dispatched " << s.events_dispatched
              << ", dropped " << s.events_dropped << "\n";
  } catch (const std::exception &e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
