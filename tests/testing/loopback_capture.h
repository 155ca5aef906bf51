// SPDX-License-Identifier: Apache-2.0
// A packet capture on `lo` for tests that must prove what does or does not
// cross the wire (plan S10 of security-anchors.md: no plaintext in secure
// mode). It reads the loopback interface through an AF_PACKET socket whose
// kernel filter passes only the TCP segments whose source or destination
// port is one the test registered (and UDP, for its own sentinel), counts
// their payload bytes and searches them for a marker string, across
// segment boundaries. Needs CAP_NET_RAW (root);
// tests GTEST_SKIP when `Start` says kPermissionDenied.
#ifndef FABRIC_TESTS_TESTING_LOOPBACK_CAPTURE_H_
#define FABRIC_TESTS_TESTING_LOOPBACK_CAPTURE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fabric::testing {

// What a capture saw on the registered ports. Thread-compatible value.
struct CaptureResult {
  uint64_t packets = 0;        // packets the kernel filter passed
  uint64_t segments = 0;       // TCP segments on a registered port
  uint64_t payload_bytes = 0;  // their TCP payload bytes
  uint64_t marker_hits = 0;    // occurrences of the marker in those streams
  uint64_t kernel_drops = 0;   // packets the kernel dropped (socket full)
  uint64_t truncated = 0;      // packets larger than the read buffer
  int receive_buffer = 0;      // SO_RCVBUF as the kernel reports it
};

// Thread safety: `AddPort` is thread-safe; `Sync` and `Stop` are for one
// thread at a time (the test's). One capture thread reads the socket from
// `Start` until `Stop`.
class LoopbackCapture {
 public:
  // The receive buffer asked for: the test plan's floor, because heavy
  // loopback traffic from other processes overflows the default.
  static constexpr int kReceiveBuffer = 32 << 20;

  // Opens the AF_PACKET socket on `lo` (ETH_P_ALL, SO_RCVBUFFORCE or
  // SO_RCVBUF of `kReceiveBuffer`) and starts reading. Segments are kept
  // only once their port is registered with `AddPort`. Returns
  // kPermissionDenied without CAP_NET_RAW, kInvalidArgument for an empty
  // marker and kInternal for another socket failure.
  static absl::StatusOr<std::unique_ptr<LoopbackCapture>> Start(
      std::string marker);

  LoopbackCapture(const LoopbackCapture&) = delete;
  LoopbackCapture& operator=(const LoopbackCapture&) = delete;
  // Stops the thread (without waiting for the sentinel) and closes.
  ~LoopbackCapture();

  // Keeps segments from or to TCP `port` on 127.0.0.0/8 from now on (the
  // kernel filter is replaced to pass them). Returns the errno status
  // when the filter cannot be attached.
  absl::Status AddPort(uint16_t port);

  // Sends a sentinel UDP datagram over `lo` and waits until the capture
  // thread reads it, so every packet sent before the call is counted;
  // returns the counts so far (for the difference across a phase of a
  // test). kDeadlineExceeded when the sentinel did not show up within
  // `timeout`, kFailedPrecondition after `Stop`.
  absl::StatusOr<CaptureResult> Sync(absl::Duration timeout);
  // Syncs as above, then stops the capture thread and returns the counts
  // with the kernel's drop count. Stopping again returns
  // kFailedPrecondition.
  absl::StatusOr<CaptureResult> Stop(absl::Duration timeout);

 private:
  // A TCP direction: source address and port, destination address and port.
  using Flow = std::tuple<uint32_t, uint16_t, uint32_t, uint16_t>;

  LoopbackCapture(int fd, std::string marker, int receive_buffer);
  void Run();
  // Handles one IPv4 packet (the link header is already stripped).
  void HandlePacket(absl::string_view packet)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleTcp(const Flow& flow, absl::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReadKernelStats();

  const int fd_;
  const std::string marker_;
  const std::string sentinel_prefix_;
  std::thread thread_;
  std::atomic<bool> stop_{false};  // relaxed: only ends the poll loop
  bool stopped_ = false;           // Sync/Stop caller only

  mutable absl::Mutex mu_;
  std::set<uint16_t> ports_ ABSL_GUARDED_BY(mu_);
  // The sentinel `Sync` waits for, and whether it has been read.
  std::string sentinel_ ABSL_GUARDED_BY(mu_);
  bool sentinel_seen_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t syncs_ ABSL_GUARDED_BY(mu_) = 0;
  CaptureResult result_ ABSL_GUARDED_BY(mu_);
  // Per direction, the last `marker_.size() - 1` payload bytes, so a marker
  // split across two segments is still found.
  std::map<Flow, std::string> tails_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fabric::testing

#endif  // FABRIC_TESTS_TESTING_LOOPBACK_CAPTURE_H_
