// SPDX-License-Identifier: Apache-2.0
// The public face of a server: the Responder handed to handlers, the
// SyncHandler adapter and the Server facade over rr::ServerCore
// (internal/server_core.cc).
#include "patterns/reqrep/server.h"

#include <cxxabi.h>

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "fabric/base/status_macros.h"
#include "patterns/reqrep/internal/server_core.h"

namespace fabric {

// --------------------------------------------------------------- responder

Responder::Responder(std::shared_ptr<rr::ServerCore> core, uint64_t token,
                     rr::ReplyRoute route)
    : core_(std::move(core)), token_(token), route_(route) {}

Responder::Responder(Responder&& other) noexcept
    : core_(std::move(other.core_)),
      token_(other.token_),
      route_(other.route_) {}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    Release();
    core_ = std::move(other.core_);
    token_ = other.token_;
    route_ = other.route_;
  }
  return *this;
}

Responder::~Responder() { Release(); }

void Responder::Release() {
  if (core_ == nullptr) return;
  core_->CountDropped();
  (void)core_->Complete(
      token_, route_,
      absl::InternalError(std::uncaught_exceptions() > 0
                              ? "the handler threw"
                              : "the handler dropped the request without "
                                "replying"),
      "");
  core_.reset();
}

absl::Status Responder::Reply(std::string body) {
  if (core_ == nullptr) {
    return absl::FailedPreconditionError("this request was answered already");
  }
  std::shared_ptr<rr::ServerCore> core = std::move(core_);
  return core->Complete(token_, route_, absl::OkStatus(), std::move(body));
}

absl::Status Responder::Fail(const absl::Status& status) {
  if (status.ok()) {
    return absl::InvalidArgumentError("Fail needs an error status");
  }
  if (core_ == nullptr) {
    return absl::FailedPreconditionError("this request was answered already");
  }
  std::shared_ptr<rr::ServerCore> core = std::move(core_);
  return core->Complete(token_, route_, status, "");
}

bool Responder::cancelled() const {
  if (absl::Now() >= route_.deadline) return true;
  return core_ != nullptr && core_->IsCancelled(token_);
}

Handler SyncHandler(
    std::function<absl::StatusOr<std::string>(const Request&)> fn) {
  return [fn = std::move(fn)](Request request, Responder responder) {
    absl::StatusOr<std::string> reply;
    try {
      reply = fn(request);
    } catch (abi::__forced_unwind&) {
      throw;  // the thread is being ended: see Worker's RunHandler
    } catch (const std::exception& e) {
      reply = absl::InternalError(absl::StrCat("handler threw: ", e.what()));
    } catch (...) {
      reply = absl::InternalError("handler threw");
    }
    if (reply.ok()) {
      (void)responder.Reply(std::move(*reply));
    } else {
      (void)responder.Fail(reply.status());
    }
  };
}

// ------------------------------------------------------------------ facade

absl::StatusOr<std::unique_ptr<Server>> Server::Create(Node& node,
                                                       ServerOptions options) {
  auto core = std::make_shared<rr::ServerCore>(node, std::move(options));
  FABRIC_RETURN_IF_ERROR(core->Init());
  return std::unique_ptr<Server>(new Server(std::move(core)));
}

Server::Server(std::shared_ptr<rr::ServerCore> core) : core_(std::move(core)) {}
Server::~Server() { Close(); }
ServerStats Server::Stats() const { return core_->Stats(); }
void Server::Close() { core_->Close(); }

}  // namespace fabric
