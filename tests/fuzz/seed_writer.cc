// SPDX-License-Identifier: Apache-2.0
// Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/) from
// real messages: each seed is what the library's own encoders produce, so
// the fuzzers start from inputs that pass the decoders and mutate from
// there. Deterministic: rerunning rewrites the same bytes.
//   fuzz_seed_writer tests/fuzz/corpus        (tools/dev fuzz-seeds)
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "discovery/beacon.h"
#include "discovery/beacon_auth.h"
#include "discovery/beacon_format.h"
#include "fabric/codec/control.h"
#include "fabric/codec/envelope.h"
#include "fabric/spool/internal/mem_file_system.h"
#include "fabric/spool/internal/meta.h"
#include "fabric/spool/internal/payload.h"
#include "fabric/spool/internal/record.h"
#include "fabric/spool/position_file.h"
#include "patterns/pubsub/internal/wire.h"
#include "patterns/reqrep/internal/wire.h"
#include "patterns/work_queue/internal/wire.h"

namespace {

namespace fs = std::filesystem;
namespace si = ::fabric::spool_internal;

fabric::NodeId Id(char fill) {
  return *fabric::NodeId::FromBytes(std::string(fabric::NodeId::kSize, fill));
}

class Writer {
 public:
  explicit Writer(fs::path root) : root_(std::move(root)) {}

  void Put(const std::string& target, const std::string& name,
           const std::string& bytes) {
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
      ok_ = false;
    }
    ++count_;
  }

  bool ok() const { return ok_; }
  int count() const { return count_; }

 private:
  fs::path root_;
  bool ok_ = true;
  int count_ = 0;
};

void Control(Writer& w) {
  fabric::Hello hello;
  hello.id = Id('a');
  hello.name = "worker-1";
  hello.cluster = "prod";
  hello.mailbox_endpoint = "tcp://10.0.0.5:40123";
  hello.publish_endpoint = "tcp://10.0.0.5:40124";
  hello.state_version = 7;
  hello.discovery = "beacon";
  hello.headers = {{"zone", "eu-1"}, {"role", "images"}};
  hello.offers = {{"queue", {"images", "thumbs"}}, {"service", {"echo"}}};
  const std::string body = fabric::EncodeHello(hello);
  w.Put("control_fuzzer", "hello", body);
  w.Put("control_fuzzer", "envelope-hello",
        fabric::EncodeEnvelope(fabric::MessageKind::kHello, hello.id, body));
  w.Put("control_fuzzer", "envelope-ping",
        fabric::EncodeEnvelope(fabric::MessageKind::kPing, hello.id,
                               fabric::EncodePing(7)));
  const std::string gossip = fabric::EncodeGossip(
      {{Id('b'), "tcp://10.0.0.6:40123", ""},
       {Id('c'), "tcp://10.0.0.7:40123", std::string(32, 'k')}});
  w.Put("control_fuzzer", "gossip", gossip);
  w.Put("control_fuzzer", "envelope-gossip",
        fabric::EncodeEnvelope(fabric::MessageKind::kGossip, hello.id, gossip));
  w.Put("control_fuzzer", "envelope-goodbye",
        fabric::EncodeEnvelope(fabric::MessageKind::kGoodbye, hello.id, ""));
}

void Beacons(Writer& w) {
  namespace d = ::fabric::discovery;
  d::Beacon beacon;
  beacon.cluster_hash = d::ClusterHash("fuzz");
  beacon.id = Id('a');
  beacon.mailbox_port = 40123;
  beacon.publish_port = 40124;
  beacon.state_version = 3;
  w.Put("beacon_fuzzer", "v1", d::EncodeBeacon(beacon));
  beacon.flags = d::kFlagLeaving;
  w.Put("beacon_fuzzer", "v1-leaving", d::EncodeBeacon(beacon));
  // Signed with the keyring beacon_fuzzer.cc uses: id 1, cluster "fuzz".
  absl::StatusOr<d::BeaconAuthenticator> auth = d::BeaconAuthenticator::Create(
      {{1, std::string(d::kBeaconSecretSize, '\x01')}}, 1, "fuzz");
  if (!auth.ok()) return;
  d::SignedBeacon signed_beacon;
  signed_beacon.beacon = beacon;
  signed_beacon.beacon.flags = 0;
  signed_beacon.ipv4 = 0x0a000005;
  signed_beacon.seq = 1;
  signed_beacon.sent_time = absl::FromUnixMillis(1700000000000);
  signed_beacon.public_key = std::string(d::kSignedPublicKeySize, 'p');
  absl::StatusOr<std::string> wire = auth->Sign(signed_beacon);
  if (wire.ok()) w.Put("beacon_fuzzer", "v2-signed", *wire);
}

// ZAP frames as zap_fuzzer.cc splits its input: a flags byte, then each
// frame as a length byte and its bytes.
std::string ZapInput(const std::vector<std::string>& frames) {
  std::string out(1, '\0');
  for (const std::string& f : frames) {
    out.push_back(static_cast<char>(f.size()));
    out += f;
  }
  return out;
}

void Zap(Writer& w) {
  const std::string key(32, '\x5a');  // the fuzz roster's key
  w.Put("zap_fuzzer", "curve-member",
        ZapInput({"1.0", "1", "fabric", "127.0.0.1", "", "CURVE", key}));
  w.Put("zap_fuzzer", "curve-stranger",
        ZapInput({"1.0", "2", "fabric", "10.0.0.9", "", "CURVE",
                  std::string(32, 's')}));
  w.Put("zap_fuzzer", "null",
        ZapInput({"1.0", "3", "other", "127.0.0.1", "", "NULL"}));
  w.Put("zap_fuzzer", "plain",
        ZapInput({"1.0", "4", "fabric", "127.0.0.1", "", "PLAIN", "u", "p"}));
}

void WorkQueue(Writer& w) {
  namespace wq = ::fabric::wq;
  const std::string t = "work_queue_wire_fuzzer";
  w.Put(t, "demand", wq::EncodeDemand({"images", 12, 3}));
  w.Put(t, "credit", wq::EncodeCredit({"images", 8, true}));
  wq::TasksEncoder tasks("images", Id('p'));
  tasks.Add(1, 1, false, {}, "cat.jpg", 1);
  tasks.Add(2, 3, true, {{"trace", "abc"}}, "dog.jpg", 4);
  w.Put(t, "tasks", tasks.Finish());
  wq::Results results;
  results.queue = "images";
  results.grant = 2;
  results.acked = {1, 5, 6};
  results.others = {{2, 3, wq::Verdict::kRetry, 500, "timeout", 4},
                    {3, 1, wq::Verdict::kReject, 0, "bad input", 1}};
  results.started = {{7, 1}, {8, 2}};
  w.Put(t, "results", wq::EncodeResults(results));
  w.Put(t, "extend", wq::EncodeExtend({"images", 30000, {7, 8}}));
}

void PubSub(Writer& w) {
  namespace ps = ::fabric::ps;
  const std::string t = "pubsub_wire_fuzzer";
  const std::string topic = "prices";
  const std::string headers = ps::EncodeHeaders({{"currency", "EUR"}});
  const std::vector<std::pair<std::string, std::string>> entries = {
      {headers, "101.5"}, {"", "101.7"}};
  size_t size = ps::FrameHeaderSize(topic);
  for (const auto& [h, b] : entries) size += ps::EntrySize(h, b);
  std::string frame(size, '\0');
  ps::EncodeFrameHeader(topic, ps::kFlagDurable, 0x1234, 10, 2, frame.data());
  size_t at = ps::FrameHeaderSize(topic);
  for (const auto& [h, b] : entries) {
    ps::EncodeEntry(absl::FromUnixMicros(1700000000000000), h, b,
                    frame.data() + at);
    at += ps::EntrySize(h, b);
  }
  w.Put(t, "frame", frame);
  std::string beat(ps::FrameHeaderSize(topic), '\0');
  ps::EncodeFrameHeader(topic, ps::kFlagBeat, 0x1234, 11, 0, beat.data());
  w.Put(t, "beat", beat);
  w.Put(t, "headers", headers);
  ps::ReplayRequest request;
  request.subscriber = 1;
  request.request = 2;
  request.stream = 0x1234;
  request.from = ps::ReplayFrom::kTime;
  request.seq = 10;
  request.time = absl::FromUnixMicros(1700000000000000);
  request.max_entries = 100;
  request.max_bytes = 1 << 20;
  w.Put(t, "replay-request", ps::EncodeReplayRequest(request));
  ps::ReplayData data;
  data.subscriber = 1;
  data.request = 2;
  data.stream = 0x1234;
  data.start = 10;
  data.first_seq = 1;
  data.durable_seq = 11;
  data.next = 12;
  std::string entry;
  si::EncodeEnqPayload(10, absl::FromUnixMicros(1), {}, "101.5", &entry);
  data.entries = {entry};
  w.Put(t, "replay-data", ps::EncodeReplayData(data));
  w.Put(t, "stream-offer", ps::StreamOfferName(0x1234, topic));
}

void ReqRep(Writer& w) {
  namespace rr = ::fabric::rr;
  const std::string t = "reqrep_wire_fuzzer";
  rr::FrameEncoder encoder;
  encoder.AddRequest(1, 1, "echo", 5000, "", {}, "hello");
  encoder.AddRequest(2, 2, "resize", 30000, "order-17", {{"trace", "x"}},
                     "img");
  w.Put(t, "requests", encoder.Finish());
  encoder.AddReply(1, 1, 0, 0, "", "hello");
  encoder.AddReply(2, 2, 14, rr::kFlagNotExecuted, "draining", "");
  w.Put(t, "replies", encoder.Finish());
  w.Put(t, "cancel", rr::EncodeCancel({1, 2, 3}));
}

void SpoolRecords(Writer& w) {
  const std::string t = "spool_record_fuzzer";
  si::SegmentHeader header;
  header.segment = 1;
  header.producer_id = Id('p');
  header.created = absl::FromUnixMicros(1700000000000000);
  header.seq_reserved = 16384;
  std::string image = si::EncodeSegmentHeader(header);
  w.Put(t, "segment-header", image);
  si::Meta meta;
  meta.producer_id = Id('p');
  meta.queue = "images";
  meta.version = si::kFormatVersion;
  meta.created = header.created;
  w.Put(t, "meta", si::EncodeMeta(meta));
  std::string payload;
  si::EncodeEnqPayload(1, header.created, {{"trace", "abc"}}, "cat.jpg",
                       &payload);
  w.Put(t, "enq", payload);
  si::AppendRecord(&image, si::RecordType::kEnq, 1, 1, payload);
  fabric::DeadLetter dead;
  dead.task = {2, header.created, {}, "dog.jpg"};
  dead.attempts = 5;
  dead.reason = "max_attempts";
  dead.died = header.created + absl::Seconds(5);
  si::EncodeDeadPayload(dead, &payload);
  w.Put(t, "dead", payload);
  si::AppendRecord(&image, si::RecordType::kDead, 2, 1, payload);
  si::EncodeSeqRanges({{1, 1}, {3, 9}}, &payload);
  w.Put(t, "ack", payload);
  si::AppendRecord(&image, si::RecordType::kAck, 3, 1, payload);
  si::EncodeReservePayload(32768, &payload);
  w.Put(t, "reserve", payload);
  si::AppendRecord(&image, si::RecordType::kReserve, 4, 1, payload);
  w.Put(t, "segment", image);
}

// Inputs for the builders in topic_log_fuzzer.cc (segment_builder.h): any
// bytes make a log; these few make logs of one to three segments.
void TopicLog(Writer& w) {
  uint32_t state = 12345;
  for (int i = 0; i < 4; ++i) {
    std::string input(96 + 64 * i, '\0');
    for (char& c : input) {
      state = state * 1103515245 + 12345;  // a fixed LCG: same seeds each run
      c = static_cast<char>(state >> 16);
    }
    // WriteMeta reads an id (15 bytes) and a time (4), then picks META
    // by this byte: 4 is the log's own.
    input[19] = 4;
    w.Put("topic_log_fuzzer", absl::StrCat("log-", i), input);
  }
}

// A position file as PositionFile writes it, trimmed of its trailing zeros
// (the fuzzer pads the file back to its size), behind the flags byte.
void Positions(Writer& w) {
  si::MemFileSystem memfs;
  si::ScopedFileSystem use(&memfs);
  const std::string path = "/state/subs/seed.pos";
  {
    absl::StatusOr<std::unique_ptr<fabric::PositionFile>> file =
        fabric::PositionFile::Open(path);
    if (!file.ok()) return;
    for (uint64_t stream = 1; stream <= 3; ++stream) {
      absl::StatusOr<int> slot =
          (*file)->Slot(stream * 0x1111, absl::StrCat("topic-", stream));
      if (slot.ok()) (*file)->Commit(*slot, stream * 100);
    }
    // No faults are set on this file system: the sync cannot fail.
    (*file)->Sync().IgnoreError();
  }
  std::string bytes;
  if (!memfs.ReadForTest(path, &bytes)) return;
  bytes.erase(bytes.find_last_not_of('\0') + 1);
  w.Put("position_file_fuzzer", "three-streams", std::string(1, '\0') + bytes);
  w.Put("position_file_fuzzer", "three-streams-fixed",
        std::string(1, '\3') + bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  Writer w{fs::path(argv[1])};
  Control(w);
  Beacons(w);
  Zap(w);
  WorkQueue(w);
  PubSub(w);
  ReqRep(w);
  SpoolRecords(w);
  TopicLog(w);
  Positions(w);
  std::fprintf(stderr, "wrote %d seeds under %s\n", w.count(), argv[1]);
  return w.ok() ? 0 : 1;
}
