#pragma once
// The process-wide ZAP handler (ZeroMQ RFC 27). libzmq asks "inproc://zeromq.zap.01" of its context to
// authenticate every CURVE handshake; one handler thread serves every Server of the process. Each server
// sets its own ZAP domain on its socket, and the handler checks the client key against that domain's
// allow-list.
#include <zmq.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/log_limiter.h"
#include "core/status.h"

namespace ll::net {

class ZapAuthenticator {
 public:
  // The handler, started on first use; it lives until the process exits.
  static ZapAuthenticator& instance();

  // Registers an allow-list of Z85 client keys (or, with any_client, none: every key is admitted);
  // returns the domain to set as ZMQ_ZAP_DOMAIN (before bind).
  Result<std::string> add_domain(std::set<std::string> allowed, bool any_client = false);
  void set_label(const std::string& domain, const std::string& label);  // how logs name the server
  void allow(const std::string& domain, const std::string& public_key);
  void disallow(const std::string& domain, const std::string& public_key);  // later handshakes fail
  void remove_domain(const std::string& domain);

 private:
  struct Domain {
    std::string label;
    std::set<std::string> allowed;
    LogLimiter refusals;
    bool any_client = false;
  };
  static LogLimiter refusal_log(const std::string& label);

  ZapAuthenticator();
  void run();
  std::vector<zmq::message_t> answer(const std::vector<zmq::message_t>& request);

  zmq::socket_t socket_;  // REP, used only by the handler thread once it runs
  Status started_;
  std::mutex mu_;
  std::map<std::string, Domain> domains_;
  uint64_t next_domain_ = 0;
};

}  // namespace ll::net
