// SPDX-License-Identifier: Apache-2.0
// A small HTTP endpoint for Prometheus: GET /metrics returns the text a
// callback renders; every other path is 404. Built on cpp-httplib.
#ifndef FABRIC_TOOLS_RELAY_METRICS_HTTP_H_
#define FABRIC_TOOLS_RELAY_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace fabric::relay {

// Thread safety: thread-safe; `render` is called on the server's threads,
// one request at a time.
class MetricsServer {
 public:
  // Listens on `address` ("HOST:PORT"; port 0 picks a free one). Returns
  // kInvalidArgument for a malformed address and kUnavailable when it cannot
  // bind.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::function<std::string()> render);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  ~MetricsServer();  // stops listening and joins

  // "http://HOST:PORT/metrics".
  const std::string& url() const { return url_; }

 private:
  struct State;
  MetricsServer() = default;
  std::unique_ptr<State> state_;
  std::string url_;
};

}  // namespace fabric::relay

#endif  // FABRIC_TOOLS_RELAY_METRICS_HTTP_H_
