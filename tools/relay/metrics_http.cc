// SPDX-License-Identifier: Apache-2.0
#include "tools/relay/metrics_http.h"

#include <httplib.h>

#include <atomic>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fabric/base/thread_name.h"

namespace fabric::relay {

struct MetricsServer::State {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> done{false};  // listen_after_bind returned
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::function<std::string()> render) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address must be HOST:PORT, got '", address, "'"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::unique_ptr<MetricsServer> out(new MetricsServer());
  out->state_ = std::make_unique<State>();
  httplib::Server& server = out->state_->server;
  // Scrapes are rare and small: one worker thread is plenty.
  server.new_task_queue = [] { return new httplib::ThreadPool(1); };
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.set_payload_max_length(64 * 1024);
  server.Get("/metrics", [render = std::move(render)](const httplib::Request&,
                                                      httplib::Response& res) {
    res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  if (port == 0) {
    port = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", address));
  }
  out->url_ =
      absl::StrCat("http://", colon > 0 && address[0] == '[' ? "[" : "", host,
                   address[0] == '[' ? "]" : "", ":", port, "/metrics");
  State* state = out->state_.get();
  state->thread = std::thread([state] {
    SetCurrentThreadName("fab-metrics");
    state->server.listen_after_bind();
    state->done = true;
  });
  return out;
}

MetricsServer::~MetricsServer() {
  if (state_ == nullptr) return;
  // stop() does nothing until the listening loop runs, so keep asking
  // until the thread is out (it may not have started yet).
  while (!state_->done.load()) {
    if (state_->server.is_running()) state_->server.stop();
    absl::SleepFor(absl::Milliseconds(1));
  }
  state_->thread.join();
}

}  // namespace fabric::relay
