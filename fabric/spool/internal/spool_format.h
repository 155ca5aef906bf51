// SPDX-License-Identifier: Apache-2.0
// Constants of the spool's on-disk format. docs/spool.md is the grammar with
// worked examples; change both together (LevelDB `db/log_format.h`).
#ifndef FABRIC_SPOOL_INTERNAL_SPOOL_FORMAT_H_
#define FABRIC_SPOOL_INTERNAL_SPOOL_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace fabric::spool_internal {

// Version written in META and in every segment header. A spool with a higher
// version is refused (kUnimplemented).
inline constexpr uint32_t kFormatVersion = 1;

// File names inside the spool directory.
inline constexpr char kLockFileName[] = "LOCK";
inline constexpr char kMetaFileName[] = "META";
inline constexpr char kQuarantineDirName[] = "quarantine";
inline constexpr char kTmpSuffix[] = ".tmp";
// Segments are "seg-" + 20 decimal digits + ".log".
inline constexpr size_t kSegmentNameSize = 4 + 20 + 4;

// META: magic | u32 version | u32 body_len | msgpack body | u32 checksum.
inline constexpr char kMetaMagic[8] = {'F', 'A', 'B', 'S', 'M', 'E', 'T', 'A'};
inline constexpr size_t kMetaFixedSize = 8 + 4 + 4 + 4;
inline constexpr uint32_t kMaxMetaBodyBytes = 64 * 1024;

// Segment header, 80 bytes, little-endian:
//   0 magic "FABSPOOL" | 8 u32 version | 12 u32 header_size | 16 u64 segment
//   | 24 u64 base_seq | 32 u64 base_lsn | 40 i64 created (unix us)
//   | 48 producer id (16) | 64 u32 flags | 68 u64 seq_reserved
//   | 76 u32 checksum of bytes [0, 76)
// seq_reserved (0 in spools written before it existed): every seq up to it
// may have been handed out when the segment was created (section 6.1).
inline constexpr char kSegmentMagic[8] = {'F', 'A', 'B', 'S',
                                          'P', 'O', 'O', 'L'};
inline constexpr size_t kSegmentHeaderSize = 80;
inline constexpr uint32_t kSegmentFlagCompacted = 1;

// Record framing, little-endian:
//   0 u32 magic | 4 u32 header_checksum (of bytes [8, 28)) | 8 u32 payload_len
//   | 12 u8 type | 13 u8 flags | 14 u16 reserved | 16 u64 lsn
//   | 24 u32 segment (low 32 bits) | 28 payload | u32 payload_checksum
// Checksums are the low 32 bits of XXH3_64bits; the payload's is seeded with
// the record's lsn so a payload can never be paired with another header.
inline constexpr uint32_t kRecordMagic = 0xC3E7F1A5;  // A5 F1 E7 C3 on disk
inline constexpr size_t kRecordHeaderSize = 28;
inline constexpr size_t kRecordTrailerSize = 4;
inline constexpr size_t kRecordOverhead =
    kRecordHeaderSize + kRecordTrailerSize;
// Bodies up to 64 MiB plus room for headers. A header announcing more is
// corrupt whatever its checksum says.
inline constexpr uint32_t kMaxPayloadBytes = (64u << 20) + (1u << 20);

enum class RecordType : uint8_t {
  kEnq = 1,          // [seq, enqueued_us, {headers}, body]
  kAck = 2,          // [lo1, hi1, lo2, hi2, ...] inclusive seq ranges
  kDead = 3,         // [seq, enqueued_us, {headers}, body, attempts,
                     //  reason, died_us]
  kDeadRemoved = 4,  // seq ranges, as kAck
  kReserve = 5,      // u64 ceiling: every seq up to it may have been handed
                     // out (section 6.1); the last one in log order counts
};

// Under kInterval and kNone a seq is confirmed before its record is durable,
// so the log durably reserves seqs this many at a time before confirming
// any of them: a power loss can then lose records but never lets a seq be
// handed out twice (section 6.1).
inline constexpr uint64_t kSeqReserveBlock = 16384;

// The largest seq a log hands out. Readers take an ENQ's seq as an int64
// (`PeekEnqPayload`) and no log comes near 2^63 messages, so recovery
// reports a reservation or `base_seq` above this as damage and ignores it
// rather than handing out seqs no reader can read (section 6.1).
inline constexpr uint64_t kMaxSeq = INT64_MAX;

// Caps that keep a record's msgpack small enough to decode safely.
inline constexpr uint32_t kMaxRangesPerRecord = 32 * 1024;
inline constexpr size_t kMaxHeadersPerTask = 64 * 1024;
inline constexpr size_t kMaxMsgpackElements = 128 * 1024;

}  // namespace fabric::spool_internal

#endif  // FABRIC_SPOOL_INTERNAL_SPOOL_FORMAT_H_
