#pragma once
// The OpenAI-compatible HTTP API on an Engine: GET /health, GET /v1/models,
// POST /v1/completions and POST /v1/chat/completions (streamed as server-sent events or not),
// and with a StatusBoard the web page, /metrics and /v1/status.
// Every bad request gets an OpenAI-shaped error JSON and the server keeps serving.
// Requests are answered on a thread pool. Up to Engine::parallel() generations run at once and
// up to `queue` more wait their turn; a request past that gets a 503 with Retry-After at once.
#include <memory>
#include <string>

#include "core/status.h"
#include "server/chat_prompt.h"
#include "server/completion_request.h"
#include "server/engine.h"
#include "server/status_board.h"

namespace ll::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  std::string api_key;  // empty: no key asked (loopback only)
  std::string model_id;  // the name /v1/models lists and requests must give
  RequestLimits limits;
  // When given (it must outlive the server): the web page at /, /metrics and /v1/status
  // (server/status_routes.h).
  StatusBoard* status = nullptr;
  size_t queue = 32;  // requests that may wait while the engine generates its parallel() ones
};

bool is_loopback_host(const std::string& host);
// A host other than loopback needs an API key.
Status check_server_options(const ServerOptions& options);

// `engine` and `chat` must outlive the server.
class OpenAiServer {
 public:
  OpenAiServer(Engine& engine, const ChatPrompt& chat, ServerOptions options);
  ~OpenAiServer();
  // Binds the listening socket; returns the port (the chosen one when options.port is 0).
  Result<int> bind();
  // Answers requests until stop(); call after bind().
  void serve();
  // From any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ll::server
