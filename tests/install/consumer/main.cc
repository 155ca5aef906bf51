// SPDX-License-Identifier: Apache-2.0
// A program outside the fabric tree, built against an installed prefix by
// tests/install/install_test.sh: it includes only <fabric/...> headers,
// starts a node on loopback, pushes one task through a Producer to a Worker
// of the same node and waits for it to complete. Prints fabric's version.
// Exit status 0 on success, 1 with a message on stderr otherwise.
#include <fabric/log.h>
#include <fabric/node.h>
#include <fabric/pubsub/publisher.h>
#include <fabric/reqrep/client.h>
#include <fabric/version.h>
#include <fabric/work_queue/producer.h>
#include <fabric/work_queue/worker.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace {

absl::Status RunNode();

// A UDP port of 127.0.0.1 free right now, for the beacon (fabric's own
// helper is not public API).
absl::StatusOr<uint16_t> FreeUdpPort() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("bind failed");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

absl::Status Run() {
  // The application's logger receives fabric's lines (FAB-NODE-START at
  // info, with its component) instead of stderr.
  std::atomic<int> node_lines{0};
  fabric::SetLogLevel(fabric::LogLevel::kInfo);
  fabric::SetLogSink([&node_lines](fabric::LogLevel,
                                   absl::string_view component,
                                   absl::string_view message) {
    if (component == "node" &&
        message.find("FAB-NODE-START consumer") != absl::string_view::npos) {
      ++node_lines;
    }
  });
  absl::Status status = RunNode();
  fabric::SetLogSink(nullptr);  // before node_lines goes out of scope
  if (status.ok() && node_lines.load() != 1) {
    return absl::InternalError(absl::StrCat("the log sink saw FAB-NODE-START ",
                                            node_lines.load(), " times"));
  }
  return status;
}

absl::Status RunNode() {
  absl::StatusOr<uint16_t> port = FreeUdpPort();
  if (!port.ok()) return port.status();
  fabric::NodeOptions options;
  options.name = "consumer";
  options.cluster = absl::StrCat("install-test-", getpid());
  options.beacon_port = *port;
  absl::StatusOr<std::unique_ptr<fabric::Node>> node =
      fabric::Node::Start(std::move(options));
  if (!node.ok()) return node.status();

  std::atomic<int> handled{0};
  fabric::WorkerOptions worker_options;
  worker_options.queues = {"jobs"};
  worker_options.handler = [&handled](const fabric::Task& task,
                                      fabric::TaskContext&) {
    if (task.body == "hello from a consumer") ++handled;
    return fabric::Outcome::Ack();
  };
  absl::StatusOr<std::unique_ptr<fabric::Worker>> worker =
      fabric::Worker::Create(**node, std::move(worker_options));
  if (!worker.ok()) return worker.status();

  fabric::ProducerOptions producer_options;
  producer_options.queue = "jobs";
  absl::StatusOr<std::unique_ptr<fabric::Producer>> producer =
      fabric::Producer::Create(**node, std::move(producer_options));
  if (!producer.ok()) return producer.status();
  absl::StatusOr<fabric::TaskId> id =
      (*producer)->Push("hello from a consumer", {{"from", "consumer"}});
  if (!id.ok()) return id.status();
  if (absl::Status s = (*producer)->WaitCompleted(absl::Seconds(30)); !s.ok()) {
    return s;
  }
  fabric::ProducerStats stats = (*producer)->Stats();
  if (stats.acked != 1 || handled.load() != 1) {
    return absl::InternalError(absl::StrCat("acked ", stats.acked, ", handled ",
                                            handled.load(), "; want 1 and 1"));
  }
  std::printf("task %s acked\n", id->ToString().c_str());
  (*producer)->Close();
  (*worker)->Close();
  return absl::OkStatus();
}

}  // namespace

int main() {
  std::printf("fabric %s (%s)\n", FABRIC_VERSION_STRING,
              fabric::VersionDescription());
  static_assert(FABRIC_VERSION_MAJOR >= 0 && FABRIC_VERSION_MINOR >= 0 &&
                FABRIC_VERSION_PATCH >= 0);
  absl::Status status = Run();
  if (!status.ok()) {
    std::fprintf(stderr, "consumer: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("consumer: ok\n");
  return 0;
}
