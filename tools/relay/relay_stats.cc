// SPDX-License-Identifier: Apache-2.0
// Relay counters in the Prometheus text exposition format 0.0.4.
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "tools/relay/relay.h"

namespace fabric::relay {
namespace {

std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Collects the samples of each metric family, then prints each family once
// with its HELP and TYPE lines, in first-use order.
class Writer {
 public:
  void Add(const std::string& name, const char* type, const char* help,
           const Labels& labels, uint64_t value) {
    Add(name, type, help, labels, absl::StrCat(value));
  }
  void Add(const std::string& name, const char* type, const char* help,
           const Labels& labels, const std::string& value) {
    Family* family = nullptr;
    for (Family& f : families_) {
      if (f.name == name) family = &f;
    }
    if (family == nullptr) {
      families_.push_back(Family{name, type, help, {}});
      family = &families_.back();
    }
    std::vector<std::string> parts;
    for (const auto& [k, v] : labels) {
      parts.push_back(absl::StrCat(k, "=\"", EscapeLabel(v), "\""));
    }
    family->samples.push_back(
        absl::StrCat(name, "{", absl::StrJoin(parts, ","), "} ", value, "\n"));
  }
  std::string Text() const {
    std::string out;
    for (const Family& f : families_) {
      absl::StrAppend(&out, "# HELP ", f.name, " ", f.help, "\n", "# TYPE ",
                      f.name, " ", f.type, "\n");
      for (const std::string& s : f.samples) out += s;
    }
    return out;
  }

 private:
  struct Family {
    std::string name;
    const char* type;
    const char* help;
    std::vector<std::string> samples;
  };
  std::vector<Family> families_;
};

}  // namespace

std::string FormatPrometheus(const RelayStats& stats) {
  Writer w;
  w.Add("fabric_relay_info", "gauge", "The relay's name and per-run id.",
        {{"relay", stats.name}, {"id", stats.relay_id}}, 1);
  for (const QueueStats& q : stats.queues) {
    const Labels l = {
        {"relay", stats.name}, {"queue", q.queue}, {"direction", q.direction}};
    w.Add("fabric_relay_queue_in_total", "counter",
          "Tasks taken on the sending side and made durable at the relay.", l,
          q.in);
    w.Add("fabric_relay_queue_out_total", "counter",
          "Forwarded tasks acked by workers on the receiving side.", l, q.out);
    w.Add("fabric_relay_queue_redelivered_total", "counter",
          "Deliveries of forwarded tasks after the first.", l, q.redelivered);
    w.Add("fabric_relay_queue_dropped_total", "counter",
          "Forwarded tasks dead-lettered in the relay's spool.", l, q.dropped);
    w.Add("fabric_relay_queue_errors_total", "counter",
          "Tasks the relay failed to store (handed back for a retry).", l,
          q.errors);
    w.Add("fabric_relay_queue_recovered_total", "counter",
          "Unacked tasks found in the relay's spool at start.", l, q.recovered);
    w.Add("fabric_relay_queue_in_flight", "gauge",
          "Forwarded tasks delivered and not yet acked.", l, q.in_flight);
    w.Add("fabric_relay_queue_backlog", "gauge",
          "Forwarded tasks durable at the relay, waiting for a worker.", l,
          q.backlog);
    w.Add("fabric_relay_queue_workers", "gauge",
          "Workers of the queue on the receiving side.", l, q.workers);
    w.Add("fabric_relay_queue_taking", "gauge",
          "1 while the relay takes the queue's tasks on the sending side.", l,
          q.taking ? 1 : 0);
    w.Add("fabric_relay_queue_spool_bytes", "gauge",
          "Bytes of the relay's spool for the queue and direction.", l,
          q.spool_bytes);
  }
  for (const TopicStats& t : stats.topics) {
    const Labels l = {{"relay", stats.name},
                      {"prefix", t.prefix},
                      {"direction", t.direction}};
    w.Add("fabric_relay_topic_in_total", "counter",
          "Messages received on the sending side.", l, t.in);
    w.Add("fabric_relay_topic_out_total", "counter",
          "Messages republished on the receiving side.", l, t.out);
    w.Add("fabric_relay_topic_dropped_total", "counter",
          "Messages lost before the relay (gaps) or failed to republish.", l,
          t.dropped);
    w.Add("fabric_relay_topic_looped_total", "counter",
          "Messages skipped because a relay already forwarded them.", l,
          t.looped);
    w.Add("fabric_relay_topic_standby_total", "counter",
          "Messages skipped because another relay forwards this bridge.", l,
          t.standby);
    w.Add("fabric_relay_topic_forwarding", "gauge",
          "1 while this relay forwards the bridge's topics this way.", l,
          t.forwarding ? 1 : 0);
  }
  for (const PeerStats& p : stats.peers) {
    const Labels l = {{"relay", stats.name},
                      {"side", p.side},
                      {"peer", p.name},
                      {"id", p.id}};
    w.Add("fabric_relay_peer_messages_in_total", "counter",
          "Mailbox messages received from the peer.", l, p.messages_in);
    w.Add("fabric_relay_peer_messages_out_total", "counter",
          "Mailbox messages sent to the peer.", l, p.messages_out);
    w.Add("fabric_relay_peer_up", "gauge",
          "1 while the peer is alive, 0 while it is suspect.", l,
          p.state == "alive" ? 1 : 0);
    w.Add("fabric_relay_peer_last_seen_seconds", "gauge",
          "Seconds since the peer was last heard from.", l,
          absl::StrCat(absl::ToDoubleSeconds(p.since_seen)));
  }
  return w.Text();
}

}  // namespace fabric::relay
