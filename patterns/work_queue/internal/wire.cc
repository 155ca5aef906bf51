// SPDX-License-Identifier: Apache-2.0
#include "patterns/work_queue/internal/wire.h"

#include <msgpack.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/msgpack_bounded.h"
#include "fabric/codec/wire_format.h"

namespace fabric::wq {
namespace {

using msgpack_bounded::AsArray;
using msgpack_bounded::AsBytes;
using msgpack_bounded::AsU32;
using msgpack_bounded::AsUint;
using msgpack_bounded::Fields;
using msgpack_bounded::PackBin;
using msgpack_bounded::Packer;
using msgpack_bounded::PackString;
using msgpack_bounded::StringSink;
using msgpack_bounded::UnpackBounded;

void PackSeqs(Packer& pk, const std::vector<uint64_t>& seqs) {
  pk.pack_array(static_cast<uint32_t>(seqs.size()));
  for (uint64_t s : seqs) pk.pack(s);
}

absl::StatusOr<std::string> QueueName(const msgpack::object& o) {
  FABRIC_ASSIGN_OR_RETURN(absl::string_view q, AsBytes(o, "queue"));
  if (q.empty() || q.size() > kMaxQueueName) {
    return absl::InvalidArgumentError("bad queue name length");
  }
  return std::string(q);
}

absl::StatusOr<std::vector<uint64_t>> Seqs(const msgpack::object& o,
                                           absl::string_view what) {
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* a, AsArray(o, what));
  std::vector<uint64_t> seqs;
  seqs.reserve(a->size);
  for (uint32_t i = 0; i < a->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(uint64_t s, AsUint(a->ptr[i], what));
    seqs.push_back(s);
  }
  return seqs;
}

constexpr size_t kMaxDepth = 4;
constexpr size_t kSmallElements = 16;

}  // namespace

std::string EncodeDemand(const Demand& m) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(3);
  PackString(pk, m.queue);
  pk.pack(m.backlog);
  pk.pack(m.credit_held);
  return out;
}

absl::StatusOr<Demand> DecodeDemand(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kSmallElements, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 3, "demand"));
  Demand m;
  FABRIC_ASSIGN_OR_RETURN(m.queue, QueueName(f->ptr[0]));
  FABRIC_ASSIGN_OR_RETURN(m.backlog, AsUint(f->ptr[1], "backlog"));
  FABRIC_ASSIGN_OR_RETURN(m.credit_held, AsUint(f->ptr[2], "credit_held"));
  return m;
}

std::string EncodeCredit(const Credit& m) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(3);
  PackString(pk, m.queue);
  pk.pack(m.grant);
  if (m.reports_starts) {
    pk.pack_true();
  } else {
    pk.pack_false();
  }
  return out;
}

absl::StatusOr<Credit> DecodeCredit(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kSmallElements, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 2, "credit"));
  Credit m;
  FABRIC_ASSIGN_OR_RETURN(m.queue, QueueName(f->ptr[0]));
  FABRIC_ASSIGN_OR_RETURN(m.grant, AsUint(f->ptr[1], "grant"));
  m.reports_starts = f->size > 2 && f->ptr[2].type == msgpack::type::BOOLEAN &&
                     f->ptr[2].via.boolean;
  return m;
}

TasksEncoder::TasksEncoder(absl::string_view queue, const NodeId& producer)
    : queue_(queue), producer_(producer) {}

void TasksEncoder::Add(uint64_t seq, uint32_t attempt, bool redelivered,
                       const Headers& headers, absl::string_view body,
                       uint32_t delivery) {
  StringSink sink{&tasks_};
  Packer pk(sink);
  pk.pack_array(6);
  pk.pack(seq);
  pk.pack(attempt);
  if (redelivered) {
    pk.pack_true();
  } else {
    pk.pack_false();
  }
  if (headers.empty()) {
    pk.pack_nil();
  } else {
    msgpack_bounded::PackStringMap(pk, headers);
  }
  PackBin(pk, body);
  pk.pack(delivery);
  ++count_;
}

std::string TasksEncoder::Finish() const {
  std::string out;
  out.reserve(tasks_.size() + queue_.size() + 32);
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(3);
  PackString(pk, queue_);
  PackBin(pk, producer_.bytes());
  pk.pack_array(static_cast<uint32_t>(count_));
  out.append(tasks_);
  return out;
}

absl::StatusOr<Tasks> DecodeTasks(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxTasksPerFrame, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 3, "tasks"));
  Tasks m;
  FABRIC_ASSIGN_OR_RETURN(m.queue, QueueName(f->ptr[0]));
  FABRIC_ASSIGN_OR_RETURN(absl::string_view pid,
                          AsBytes(f->ptr[1], "producer id"));
  FABRIC_ASSIGN_OR_RETURN(m.producer, NodeId::FromBytes(pid));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* list,
                          AsArray(f->ptr[2], "task list"));
  m.tasks.reserve(list->size);
  for (uint32_t i = 0; i < list->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* t,
                            Fields(list->ptr[i], 5, "task"));
    WireTask task;
    FABRIC_ASSIGN_OR_RETURN(task.seq, AsUint(t->ptr[0], "seq"));
    FABRIC_ASSIGN_OR_RETURN(task.attempt, AsU32(t->ptr[1], "attempt"));
    if (t->ptr[2].type != msgpack::type::BOOLEAN) {
      return absl::InvalidArgumentError("redelivered is not a boolean");
    }
    task.redelivered = t->ptr[2].via.boolean;
    FABRIC_ASSIGN_OR_RETURN(
        task.headers,
        msgpack_bounded::AsStringMap(t->ptr[3], "headers", kMaxHeaders));
    FABRIC_ASSIGN_OR_RETURN(task.body, AsBytes(t->ptr[4], "body"));
    if (t->size > 5) {
      FABRIC_ASSIGN_OR_RETURN(task.delivery, AsU32(t->ptr[5], "delivery"));
    }
    m.tasks.push_back(std::move(task));
  }
  return m;
}

std::string EncodeResults(const Results& m) {
  std::string out;
  out.reserve(32 + m.queue.size() + (m.acked.size() + m.started.size()) * 5);
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(5);
  PackString(pk, m.queue);
  pk.pack(m.grant);
  PackSeqs(pk, m.acked);
  pk.pack_array(static_cast<uint32_t>(m.others.size()));
  for (const OtherResult& r : m.others) {
    pk.pack_array(6);
    pk.pack(r.seq);
    pk.pack(r.attempt);
    pk.pack(static_cast<uint32_t>(r.verdict));
    pk.pack(r.delay_ms);
    PackString(pk, r.reason.size() > kMaxStringBytes
                       ? absl::string_view(r.reason).substr(0, kMaxStringBytes)
                       : absl::string_view(r.reason));
    pk.pack(r.delivery);
  }
  pk.pack_array(static_cast<uint32_t>(m.started.size()));
  for (const StartedTask& s : m.started) {
    pk.pack_array(2);
    pk.pack(s.seq);
    pk.pack(s.delivery);
  }
  return out;
}

absl::StatusOr<Results> DecodeResults(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxTasksPerFrame, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 4, "results"));
  Results m;
  FABRIC_ASSIGN_OR_RETURN(m.queue, QueueName(f->ptr[0]));
  FABRIC_ASSIGN_OR_RETURN(m.grant, AsUint(f->ptr[1], "grant"));
  FABRIC_ASSIGN_OR_RETURN(m.acked, Seqs(f->ptr[2], "acked"));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* others,
                          AsArray(f->ptr[3], "results list"));
  m.others.reserve(others->size);
  for (uint32_t i = 0; i < others->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* r,
                            Fields(others->ptr[i], 5, "result"));
    OtherResult o;
    FABRIC_ASSIGN_OR_RETURN(o.seq, AsUint(r->ptr[0], "seq"));
    FABRIC_ASSIGN_OR_RETURN(o.attempt, AsU32(r->ptr[1], "attempt"));
    FABRIC_ASSIGN_OR_RETURN(uint64_t v, AsUint(r->ptr[2], "verdict"));
    if (v > static_cast<uint64_t>(Verdict::kRelease)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown verdict ", v));
    }
    o.verdict = static_cast<Verdict>(v);
    FABRIC_ASSIGN_OR_RETURN(o.delay_ms, AsUint(r->ptr[3], "delay"));
    FABRIC_ASSIGN_OR_RETURN(absl::string_view reason,
                            AsBytes(r->ptr[4], "reason"));
    if (reason.size() > kMaxStringBytes) {
      return absl::InvalidArgumentError("reason too long");
    }
    o.reason = std::string(reason);
    if (r->size > 5) {
      FABRIC_ASSIGN_OR_RETURN(o.delivery, AsU32(r->ptr[5], "delivery"));
    }
    m.others.push_back(std::move(o));
  }
  m.reports_starts = f->size > 4;
  if (f->size > 4) {
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* started,
                            AsArray(f->ptr[4], "started list"));
    m.started.reserve(started->size);
    for (uint32_t i = 0; i < started->size; ++i) {
      FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* s,
                              Fields(started->ptr[i], 2, "started"));
      StartedTask st;
      FABRIC_ASSIGN_OR_RETURN(st.seq, AsUint(s->ptr[0], "seq"));
      FABRIC_ASSIGN_OR_RETURN(st.delivery, AsU32(s->ptr[1], "delivery"));
      m.started.push_back(st);
    }
  }
  return m;
}

std::string EncodeExtend(const Extend& m) {
  std::string out;
  StringSink sink{&out};
  Packer pk(sink);
  pk.pack_array(3);
  PackString(pk, m.queue);
  pk.pack(m.extend_ms);
  PackSeqs(pk, m.seqs);
  return out;
}

absl::StatusOr<Extend> DecodeExtend(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle h,
                          UnpackBounded(body, kMaxTasksPerFrame, kMaxDepth));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* f,
                          Fields(h.get(), 3, "extend"));
  Extend m;
  FABRIC_ASSIGN_OR_RETURN(m.queue, QueueName(f->ptr[0]));
  FABRIC_ASSIGN_OR_RETURN(m.extend_ms, AsUint(f->ptr[1], "extension"));
  FABRIC_ASSIGN_OR_RETURN(m.seqs, Seqs(f->ptr[2], "seqs"));
  return m;
}

}  // namespace fabric::wq
