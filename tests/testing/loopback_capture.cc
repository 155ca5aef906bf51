// SPDX-License-Identifier: Apache-2.0
#include "tests/testing/loopback_capture.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fabric/base/node_id.h"
#include "tests/testing/test_util.h"

namespace fabric::testing {
namespace {

// Larger than any loopback packet: lo's MTU is 65536, and TSO segments
// handed to packet sockets on lo never exceed 64 KiB of IP.
constexpr size_t kReadBuffer = 256 * 1024;

absl::Status ErrnoStatus(absl::string_view what) {
  const int e = errno;
  const std::string text = absl::StrCat(what, ": ", std::strerror(e));
  if (e == EPERM || e == EACCES) return absl::PermissionDeniedError(text);
  return absl::InternalError(text);
}

uint64_t CountOccurrences(absl::string_view haystack,
                          absl::string_view needle) {
  uint64_t hits = 0;
  for (size_t at = haystack.find(needle); at != absl::string_view::npos;
       at = haystack.find(needle, at + 1)) {
    ++hits;
  }
  return hits;
}

// Attaches a classic BPF filter that passes only arriving (not outgoing)
// IPv4 packets that are UDP (the sentinel) or TCP from or to `ports`, so
// other loopback traffic (another test's flood) never fills the buffer.
// Offsets count from the IP header (a SOCK_DGRAM packet socket).
absl::Status AttachFilter(int fd, const std::set<uint16_t>& ports) {
  const uint32_t n = static_cast<uint32_t>(ports.size());
  const uint32_t drop = 10 + 2 * n;  // index of "return 0"
  const uint32_t keep = drop + 1;    // index of "return everything"
  std::vector<sock_filter> f;
  // Jump offsets are relative to the next instruction.
  const auto to = [&f](uint32_t target) {
    return static_cast<uint8_t>(target - f.size() - 1);
  };
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                       static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PKTTYPE)));
  f.push_back(
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, to(drop), 0));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                       static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_PROTOCOL)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETH_P_IP, 0, to(drop)));
  f.push_back(BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9));  // IP protocol
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, to(keep), 0));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, to(drop)));
  f.push_back(BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0));  // X = IP header size
  for (const uint32_t field : {0u, 2u}) {  // TCP source, then destination
    f.push_back(BPF_STMT(BPF_LD | BPF_H | BPF_IND, field));
    for (const uint16_t port : ports) {
      f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, to(keep), 0));
    }
  }
  f.push_back(BPF_STMT(BPF_RET | BPF_K, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, 0x40000));
  sock_fprog program{static_cast<unsigned short>(f.size()), f.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof(program)) !=
      0) {
    return ErrnoStatus("setsockopt(SO_ATTACH_FILTER)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoopbackCapture>> LoopbackCapture::Start(
    std::string marker) {
  if (marker.empty()) return absl::InvalidArgumentError("empty marker");
  // SOCK_DGRAM: the kernel strips lo's (all-zero) Ethernet header, so each
  // read starts at the IP header.
  const int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return ErrnoStatus("socket(AF_PACKET)");
  // SO_RCVBUFFORCE passes net.core.rmem_max (root); SO_RCVBUF is capped.
  int size = kReceiveBuffer;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0) {
    absl::Status s = ErrnoStatus("setsockopt(SO_RCVBUF)");
    close(fd);
    return s;
  }
  int granted = 0;
  socklen_t len = sizeof(granted);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &len);
  if (absl::Status s = AttachFilter(fd, {}); !s.ok()) {
    close(fd);
    return s;
  }
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(if_nametoindex("lo"));
  if (addr.sll_ifindex == 0 ||
      bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = ErrnoStatus("bind(AF_PACKET, lo)");
    close(fd);
    return s;
  }
  std::unique_ptr<LoopbackCapture> capture(
      new LoopbackCapture(fd, std::move(marker), granted));
  capture->thread_ = std::thread([c = capture.get()] { c->Run(); });
  return capture;
}

LoopbackCapture::LoopbackCapture(int fd, std::string marker, int receive_buffer)
    : fd_(fd),
      marker_(std::move(marker)),
      sentinel_prefix_(
          absl::StrCat("capture-sentinel-", NodeId::Random().ToHex(), "-")) {
  result_.receive_buffer = receive_buffer;
}

LoopbackCapture::~LoopbackCapture() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
  close(fd_);
}

absl::Status LoopbackCapture::AddPort(uint16_t port) {
  absl::MutexLock lock(&mu_);
  ports_.insert(port);
  return AttachFilter(fd_, ports_);
}

void LoopbackCapture::Run() {
  std::vector<char> buffer(kReadBuffer);
  while (!stop_.load(std::memory_order_relaxed)) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    for (int i = 0; i < 1024; ++i) {
      sockaddr_ll from{};
      socklen_t from_len = sizeof(from);
      const ssize_t n =
          recvfrom(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC,
                   reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) break;
      // lo hands each packet to packet sockets twice, once leaving
      // (PACKET_OUTGOING) and once arriving: count the arrival only.
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      absl::MutexLock lock(&mu_);
      ++result_.packets;
      if (static_cast<size_t>(n) > buffer.size()) {
        ++result_.truncated;
        continue;
      }
      if (from.sll_protocol != htons(ETH_P_IP)) continue;
      HandlePacket(absl::string_view(buffer.data(), static_cast<size_t>(n)));
    }
  }
}

void LoopbackCapture::HandlePacket(absl::string_view packet) {
  if (packet.size() < sizeof(iphdr)) return;
  iphdr ip;
  std::memcpy(&ip, packet.data(), sizeof(ip));
  const size_t ip_len = size_t{ip.ihl} * 4;
  const size_t total = ntohs(ip.tot_len);
  if (ip.version != 4 || ip_len < sizeof(iphdr) || total > packet.size() ||
      total < ip_len) {
    return;
  }
  const absl::string_view body = packet.substr(ip_len, total - ip_len);
  if (ip.protocol == IPPROTO_UDP && body.size() >= sizeof(udphdr)) {
    if (!sentinel_.empty() && body.substr(sizeof(udphdr)) == sentinel_) {
      sentinel_seen_ = true;
    }
    return;
  }
  if (ip.protocol != IPPROTO_TCP || body.size() < sizeof(tcphdr)) return;
  tcphdr tcp;
  std::memcpy(&tcp, body.data(), sizeof(tcp));
  const size_t tcp_len = size_t{tcp.doff} * 4;
  if (tcp_len < sizeof(tcphdr) || tcp_len > body.size()) return;
  const uint16_t sport = ntohs(tcp.source);
  const uint16_t dport = ntohs(tcp.dest);
  if (!ports_.contains(sport) && !ports_.contains(dport)) return;
  HandleTcp(Flow{ntohl(ip.saddr), sport, ntohl(ip.daddr), dport},
            body.substr(tcp_len));
}

void LoopbackCapture::HandleTcp(const Flow& flow, absl::string_view payload) {
  if (payload.empty()) return;  // SYN, ACK, FIN: nothing to search
  ++result_.segments;
  result_.payload_bytes += payload.size();
  // Search the previous tail plus this payload; the tail is shorter than
  // the marker, so a hit is never counted twice.
  std::string& tail = tails_[flow];
  std::string joined = tail;
  joined.append(payload.data(), payload.size());
  result_.marker_hits += CountOccurrences(joined, marker_);
  const size_t keep = std::min(joined.size(), marker_.size() - 1);
  tail = joined.substr(joined.size() - keep);
}

void LoopbackCapture::ReadKernelStats() {
  tpacket_stats stats{};
  socklen_t len = sizeof(stats);
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &stats, &len) == 0) {
    absl::MutexLock lock(&mu_);
    result_.kernel_drops += stats.tp_drops;
  }
}

absl::StatusOr<CaptureResult> LoopbackCapture::Sync(absl::Duration timeout) {
  if (stopped_) return absl::FailedPreconditionError("capture stopped");
  std::string sentinel;
  {
    absl::MutexLock lock(&mu_);
    sentinel = absl::StrCat(sentinel_prefix_, ++syncs_);
    sentinel_ = sentinel;
    sentinel_seen_ = false;
  }
  // The sentinel goes to a socket of our own, so the kernel answers no ICMP.
  const int sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int sender = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t to_len = sizeof(to);
  const bool sent =
      sink >= 0 && sender >= 0 &&
      bind(sink, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 0 &&
      getsockname(sink, reinterpret_cast<sockaddr*>(&to), &to_len) == 0 &&
      sendto(sender, sentinel.data(), sentinel.size(), 0,
             reinterpret_cast<const sockaddr*>(&to),
             sizeof(to)) == static_cast<ssize_t>(sentinel.size());
  const bool seen = sent && WaitUntil(
                                [this] {
                                  absl::MutexLock lock(&mu_);
                                  return sentinel_seen_;
                                },
                                timeout);
  if (sink >= 0) close(sink);
  if (sender >= 0) close(sender);
  if (!seen) {
    return absl::DeadlineExceededError(
        sent ? absl::StrCat("capture sentinel not seen within ",
                            absl::FormatDuration(timeout))
             : "capture sentinel could not be sent");
  }
  absl::MutexLock lock(&mu_);
  return result_;
}

absl::StatusOr<CaptureResult> LoopbackCapture::Stop(absl::Duration timeout) {
  absl::StatusOr<CaptureResult> synced = Sync(timeout);
  if (absl::IsFailedPrecondition(synced.status())) return synced.status();
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
  stopped_ = true;
  if (!synced.ok()) return synced.status();
  ReadKernelStats();
  absl::MutexLock lock(&mu_);
  return result_;
}

}  // namespace fabric::testing
