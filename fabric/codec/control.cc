// SPDX-License-Identifier: Apache-2.0
#include "fabric/codec/control.h"

#include <msgpack.hpp>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "fabric/codec/msgpack_bounded.h"
#include "fabric/codec/wire_format.h"

namespace fabric {

using msgpack_bounded::AsArray;
using msgpack_bounded::AsBytes;
using msgpack_bounded::AsMap;
using msgpack_bounded::AsUint;

namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackStr(Packer& pk, absl::string_view s) {
  pk.pack_str(static_cast<uint32_t>(s.size()));
  pk.pack_str_body(s.data(), s.size());
}

void PackBin(Packer& pk, absl::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), s.size());
}

absl::StatusOr<std::string> BoundedString(const msgpack::object& o,
                                          absl::string_view what) {
  FABRIC_ASSIGN_OR_RETURN(absl::string_view s, AsBytes(o, what));
  if (s.size() > kMaxStringBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is longer than ", kMaxStringBytes, " bytes"));
  }
  return std::string(s);
}

absl::StatusOr<Headers> DecodeHeaders(const msgpack::object& o) {
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_map* map, AsMap(o, "headers"));
  if (map->size > kMaxHeaders) {
    return absl::InvalidArgumentError("too many headers");
  }
  Headers headers;
  for (uint32_t i = 0; i < map->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(std::string key,
                            BoundedString(map->ptr[i].key, "header name"));
    FABRIC_ASSIGN_OR_RETURN(std::string value,
                            BoundedString(map->ptr[i].val, "header value"));
    headers[std::move(key)] = std::move(value);
  }
  return headers;
}

absl::StatusOr<Offers> DecodeOffers(const msgpack::object& o) {
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_map* map, AsMap(o, "offers"));
  if (map->size > kMaxOfferKinds) {
    return absl::InvalidArgumentError("too many offer kinds");
  }
  Offers offers;
  for (uint32_t i = 0; i < map->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(std::string kind,
                            BoundedString(map->ptr[i].key, "offer kind"));
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* names,
                            AsArray(map->ptr[i].val, "offer names"));
    if (names->size > kMaxOffersPerKind) {
      return absl::InvalidArgumentError("too many offers of one kind");
    }
    std::set<std::string>& set = offers[kind];
    for (uint32_t j = 0; j < names->size; ++j) {
      FABRIC_ASSIGN_OR_RETURN(std::string name,
                              BoundedString(names->ptr[j], "offer name"));
      set.insert(std::move(name));
    }
    // A kind repeated in the map merges into one set: the limit holds for
    // the merge too, or re-encoding this HELLO would give one peers refuse.
    if (set.size() > kMaxOffersPerKind) {
      return absl::InvalidArgumentError("too many offers of one kind");
    }
  }
  return offers;
}

// Largest container in a HELLO: the offers of one kind.
constexpr size_t kHelloMaxElements = kMaxOffersPerKind;

}  // namespace

std::string EncodeHello(const Hello& hello) {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  pk.pack_map(9);
  PackStr(pk, "id");
  PackBin(pk, hello.id.bytes());
  PackStr(pk, "name");
  PackStr(pk, hello.name);
  PackStr(pk, "cluster");
  PackStr(pk, hello.cluster);
  PackStr(pk, "mailbox");
  PackStr(pk, hello.mailbox_endpoint);
  PackStr(pk, "publish");
  PackStr(pk, hello.publish_endpoint);
  PackStr(pk, "version");
  pk.pack_uint64(hello.state_version);
  PackStr(pk, "discovery");
  PackStr(pk, hello.discovery);
  PackStr(pk, "headers");
  pk.pack_map(static_cast<uint32_t>(hello.headers.size()));
  for (const auto& [key, value] : hello.headers) {
    PackStr(pk, key);
    PackStr(pk, value);
  }
  PackStr(pk, "offers");
  pk.pack_map(static_cast<uint32_t>(hello.offers.size()));
  for (const auto& [kind, names] : hello.offers) {
    PackStr(pk, kind);
    pk.pack_array(static_cast<uint32_t>(names.size()));
    for (const std::string& name : names) PackStr(pk, name);
  }
  return std::string(buffer.data(), buffer.size());
}

absl::StatusOr<Hello> DecodeHello(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(
      msgpack::object_handle handle,
      msgpack_bounded::UnpackBounded(body, kHelloMaxElements, 4));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_map* map,
                          AsMap(handle.get(), "hello"));
  Hello hello;
  bool have_id = false;
  bool have_mailbox = false;
  for (uint32_t i = 0; i < map->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(absl::string_view key,
                            AsBytes(map->ptr[i].key, "hello key"));
    const msgpack::object& val = map->ptr[i].val;
    if (key == "id") {
      FABRIC_ASSIGN_OR_RETURN(absl::string_view id, AsBytes(val, "id"));
      FABRIC_ASSIGN_OR_RETURN(hello.id, NodeId::FromBytes(id));
      have_id = true;
    } else if (key == "name") {
      FABRIC_ASSIGN_OR_RETURN(hello.name, BoundedString(val, "name"));
    } else if (key == "cluster") {
      FABRIC_ASSIGN_OR_RETURN(hello.cluster, BoundedString(val, "cluster"));
    } else if (key == "mailbox") {
      FABRIC_ASSIGN_OR_RETURN(hello.mailbox_endpoint,
                              BoundedString(val, "mailbox"));
      have_mailbox = true;
    } else if (key == "publish") {
      FABRIC_ASSIGN_OR_RETURN(hello.publish_endpoint,
                              BoundedString(val, "publish"));
    } else if (key == "discovery") {
      FABRIC_ASSIGN_OR_RETURN(hello.discovery, BoundedString(val, "discovery"));
    } else if (key == "version") {
      FABRIC_ASSIGN_OR_RETURN(hello.state_version, AsUint(val, "version"));
    } else if (key == "headers") {
      FABRIC_ASSIGN_OR_RETURN(hello.headers, DecodeHeaders(val));
    } else if (key == "offers") {
      FABRIC_ASSIGN_OR_RETURN(hello.offers, DecodeOffers(val));
    }
  }
  if (!have_id || !have_mailbox) {
    return absl::InvalidArgumentError("hello lacks id or mailbox");
  }
  return hello;
}

std::string EncodePing(uint64_t state_version) {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  pk.pack_array(1);
  pk.pack_uint64(state_version);
  return std::string(buffer.data(), buffer.size());
}

absl::StatusOr<uint64_t> DecodePing(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(msgpack::object_handle handle,
                          msgpack_bounded::UnpackBounded(body, 8, 1));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* fields,
                          AsArray(handle.get(), "ping"));
  if (fields->size < 1) return absl::InvalidArgumentError("empty ping");
  return AsUint(fields->ptr[0], "ping state version");
}

std::string EncodeGossip(const std::vector<GossipEntry>& entries) {
  msgpack::sbuffer buffer;
  Packer pk(buffer);
  pk.pack_array(static_cast<uint32_t>(entries.size()));
  for (const GossipEntry& e : entries) {
    pk.pack_array(e.public_key.empty() ? 2 : 3);
    PackBin(pk, e.id.bytes());
    PackStr(pk, e.mailbox_endpoint);
    if (!e.public_key.empty()) PackBin(pk, e.public_key);
  }
  return std::string(buffer.data(), buffer.size());
}

absl::StatusOr<std::vector<GossipEntry>> DecodeGossip(absl::string_view body) {
  FABRIC_ASSIGN_OR_RETURN(
      msgpack::object_handle handle,
      msgpack_bounded::UnpackBounded(body, kMaxGossipEntries, 2));
  FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* list,
                          AsArray(handle.get(), "gossip"));
  std::vector<GossipEntry> entries;
  entries.reserve(list->size);
  for (uint32_t i = 0; i < list->size; ++i) {
    FABRIC_ASSIGN_OR_RETURN(const msgpack::object_array* pair,
                            AsArray(list->ptr[i], "gossip entry"));
    if (pair->size != 2 && pair->size != 3) {
      return absl::InvalidArgumentError(
          "gossip entry is not [id, endpoint] or [id, endpoint, key]");
    }
    GossipEntry entry;
    FABRIC_ASSIGN_OR_RETURN(absl::string_view id,
                            AsBytes(pair->ptr[0], "gossip id"));
    FABRIC_ASSIGN_OR_RETURN(entry.id, NodeId::FromBytes(id));
    FABRIC_ASSIGN_OR_RETURN(entry.mailbox_endpoint,
                            BoundedString(pair->ptr[1], "gossip endpoint"));
    if (pair->size == 3) {
      FABRIC_ASSIGN_OR_RETURN(absl::string_view key,
                              AsBytes(pair->ptr[2], "gossip key"));
      if (key.size() != 32) {
        return absl::InvalidArgumentError("gossip key is not 32 bytes");
      }
      entry.public_key = std::string(key);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace fabric
