#include "server/openai_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>

#include "server/completion_response.h"
#include "server/status_routes.h"
#include "server/stop_matcher.h"

namespace ll::server {
namespace {

using nlohmann::json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, e.to_json()); }

// Compares in time independent of where the strings differ.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(b.size(), 1)]);
  return diff == 0;
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Seconds a client told the server is busy waits before it retries.
constexpr int kRetryAfterSeconds = 1;
// Threads beyond the generations and the queue, for requests that do not generate.
constexpr size_t kSpareThreads = 8;

// What one generation needs once the request is checked.
struct Job {
  CompletionIds ids;
  EngineJob engine;
  std::vector<std::string> stop;
  size_t prompt_tokens = 0;
  bool include_usage = false;
};

}  // namespace

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Status check_server_options(const ServerOptions& o) {
  if (!is_loopback_host(o.host) && o.api_key.empty()) {
    return Status::Error("--host " + o.host + " is reachable from other machines: give --api-key KEY (clients send "
                         "'Authorization: Bearer KEY'), or listen on 127.0.0.1");
  }
  if (o.port < 0 || o.port > 65535) return Status::Errorf("--port {} is outside 0..65535", o.port);
  return Status::Ok();
}

struct OpenAiServer::Impl {
  Engine& engine;
  const ChatPrompt& chat;
  ServerOptions options;
  httplib::Server http;
  int listening_socket = -1;
  std::atomic<size_t> in_engine{0};  // requests generating or waiting to
  std::atomic<uint64_t> next_id{1};
  uint64_t id_salt = std::random_device{}();
  std::mt19937_64 seeds{std::random_device{}()};
  std::mutex seeds_mutex;

  Impl(Engine& e, const ChatPrompt& c, ServerOptions o) : engine(e), chat(c), options(std::move(o)) { routes(); }

  bool authorized(const httplib::Request& req) const {
    if (options.api_key.empty()) return true;
    return same_secret(req.get_header_value("Authorization"), "Bearer " + options.api_key);
  }

  uint64_t random_seed() {
    std::lock_guard lock(seeds_mutex);
    return seeds();
  }

  // A place among the requests the engine generates or queues; false past the bound.
  bool enter_engine() {
    if (in_engine.fetch_add(1) < engine.parallel() + options.queue) return true;
    in_engine.fetch_sub(1);
    return false;
  }
  void leave_engine() { in_engine.fetch_sub(1); }
  // Leaves the engine at the end of its scope, also when answering throws.
  struct EngineSeat {
    Impl& impl;
    ~EngineSeat() { impl.leave_engine(); }
  };

  void routes() {
    // Every request that generates or waits holds a thread (httplib's default is 8 in all).
    const size_t threads = engine.parallel() + options.queue + kSpareThreads;
    http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http.set_socket_options([this](int sock) {
      httplib::default_socket_options(sock);
      listening_socket = sock;
    });
    http.set_payload_max_length(options.limits.max_body_bytes);
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}});
    });
    http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      if (!authorized(req)) return send_error(res, unauthorized());
      json model = {{"id", options.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "lingualinked"}};
      send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      complete(req, res, false);
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      complete(req, res, true);
    });
    if (options.status != nullptr) {
      add_status_routes(http, *options.status, [this](const httplib::Request& req) { return authorized(req); });
    }
    // Whatever httplib refuses itself (no such route, a body over the bound) in OpenAI's shape.
    http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      ApiError e{res.status, "", "invalid_request_error", "", ""};
      if (res.status == 413) {
        e.message = fmt::format("the request body is larger than {} bytes", options.limits.max_body_bytes);
        e.code = "request_too_large";
      } else if (res.status == 404) {
        e.message = "no such endpoint: " + req.method + " " + req.path;
        e.code = "not_found";
      } else {
        e.message = fmt::format("HTTP {} for {} {}", res.status, req.method, req.path);
      }
      send_error(res, e);
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, {500, "internal error: " + what, "server_error", "", ""});
    });
  }

  void complete(const httplib::Request& req, httplib::Response& res, bool chat_api) {
    if (!authorized(req)) return send_error(res, unauthorized());
    json body;
    try {
      body = json::parse(req.body);
    } catch (const json::parse_error& e) {
      return send_error(res, invalid_request(std::string("the body is not valid JSON: ") + e.what()));
    }
    auto parsed = parse_completion_request(body, chat_api, options.limits, random_seed());
    if (auto* e = std::get_if<ApiError>(&parsed)) return send_error(res, *e);
    CompletionRequest& r = std::get<CompletionRequest>(parsed);
    if (r.model != options.model_id) return send_error(res, model_not_found(r.model));

    auto job = std::make_shared<Job>();
    job->ids = {chat_api, fmt::format("{}-{:x}{:x}", chat_api ? "chatcmpl" : "cmpl", id_salt, next_id++),
                unix_seconds(), options.model_id};
    job->engine.prompt = chat_api ? chat.render(r.messages) : r.prompt;
    job->engine.parse_special = chat_api;  // the template's markers are control tokens
    job->engine.max_tokens = r.max_tokens;
    job->engine.sampling = r.sampling;
    job->stop = std::move(r.stop);
    job->include_usage = r.include_usage;
    // The context bounds the prompt and max_tokens: checked here, before the request waits.
    const int64_t n_ctx = engine.n_ctx();
    const int64_t n_prompt = std::max<int64_t>(
        1, static_cast<int64_t>(engine.tokenizer().encode(job->engine.prompt, true, job->engine.parse_special).size()));
    job->prompt_tokens = static_cast<size_t>(n_prompt);
    const char* prompt_param = chat_api ? "messages" : "prompt";
    if (n_prompt >= n_ctx) {
      ApiError e = invalid_request(
          fmt::format("the prompt has {} tokens but the context holds {} (one more is needed to answer)", n_prompt, n_ctx),
          prompt_param);
      e.code = "context_length_exceeded";
      return send_error(res, e);
    }
    if (r.max_tokens > n_ctx - n_prompt) {
      ApiError e = invalid_request(fmt::format("max_tokens {} does not fit: the context holds {} tokens and the prompt "
                                               "takes {}, leaving {}",
                                               r.max_tokens, n_ctx, n_prompt, n_ctx - n_prompt),
                                   "max_tokens");
      e.code = "context_length_exceeded";
      return send_error(res, e);
    }
    if (!enter_engine()) {
      const size_t busy = in_engine.load();
      const size_t generating = std::min(busy, engine.parallel());
      res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
      return send_error(res, server_busy(generating, busy - generating));
    }
    if (r.stream) return stream(res, job);  // leaves the engine once the stream is released
    const EngineSeat seat{*this};
    answer(res, *job);
  }

  std::string finish_reason(const Job& job, const EngineOutcome& outcome, bool stopped) const {
    if (stopped) return "stop";
    const int64_t generated = static_cast<int64_t>(outcome.completion_tokens);
    const bool budget = job.engine.max_tokens >= 0 && generated >= job.engine.max_tokens;
    const bool full = static_cast<int64_t>(job.prompt_tokens) + generated >= engine.n_ctx();
    return budget || full ? "length" : "stop";
  }

  Usage usage(const Job& job, const EngineOutcome& outcome) const {
    return {outcome.prompt_tokens > 0 ? outcome.prompt_tokens : job.prompt_tokens, outcome.completion_tokens};
  }

  void answer(httplib::Response& res, const Job& job) {
    StopMatcher matcher(job.stop);
    std::atomic<bool> stop{false};
    std::string text;
    const EngineOutcome outcome = engine.generate(job.engine, [&](const std::string& piece) {
      text += matcher.push(piece);
      if (matcher.stopped()) stop.store(true);
    }, stop);
    if (!outcome.status.ok()) return send_error(res, {500, outcome.status.message(), "server_error", "", ""});
    text += matcher.flush();
    send_json(res, 200, completion_body(job.ids, text, finish_reason(job, outcome, matcher.stopped()), usage(job, outcome)));
  }

  void stream(httplib::Response& res, std::shared_ptr<Job> job) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [this, job](size_t, httplib::DataSink& sink) {
      StopMatcher matcher(job->stop);
      std::atomic<bool> stop{false};
      bool first = true;
      auto send = [&](const std::string& event) {
        // A client that went away ends the generation; its sequence is freed.
        if (!stop.load() && !sink.write(event.data(), event.size())) stop.store(true);
      };
      const EngineOutcome outcome = engine.generate(job->engine, [&](const std::string& piece) {
        const std::string text = matcher.push(piece);
        if (!text.empty()) {
          send(sse_event(text_chunk(job->ids, text, first)));
          first = false;
        }
        if (matcher.stopped()) stop.store(true);
      }, stop);
      if (!outcome.status.ok()) {
        send(sse_event(ApiError{500, outcome.status.message(), "server_error", "", ""}.to_json()));
      } else {
        const std::string rest = matcher.flush();
        if (!rest.empty() || (first && job->ids.chat)) send(sse_event(text_chunk(job->ids, rest, first)));
        send(sse_event(finish_chunk(job->ids, finish_reason(*job, outcome, matcher.stopped()))));
        if (job->include_usage) send(sse_event(usage_chunk(job->ids, usage(*job, outcome))));
        send(kSseDone);
      }
      sink.done();
      return true;
    }, [this](bool) { leave_engine(); });
  }
};

OpenAiServer::OpenAiServer(Engine& engine, const ChatPrompt& chat, ServerOptions options)
    : impl_(std::make_unique<Impl>(engine, chat, std::move(options))) {}

OpenAiServer::~OpenAiServer() = default;

Result<int> OpenAiServer::bind() {
  const ServerOptions& o = impl_->options;
  LL_RETURN_IF_ERROR(check_server_options(o));
  int port = o.port;
  if (o.port == 0) {
    port = impl_->http.bind_to_any_port(o.host);
    if (port <= 0) return Status::Error("cannot listen on " + o.host);
  } else if (!impl_->http.bind_to_port(o.host, o.port)) {
    return Status::Errorf("cannot listen on {}:{} (in use, or not an address of this machine)", o.host, o.port);
  }
  // httplib listens with a backlog of 5: more clients connecting at once would have their
  // connections dropped and retried a second later. Listening again sets a longer one.
  if (::listen(impl_->listening_socket, SOMAXCONN) != 0) {
    return Status::Errorf("cannot listen on {}:{}: {}", o.host, port, std::strerror(errno));
  }
  return port;
}

void OpenAiServer::serve() { impl_->http.listen_after_bind(); }

void OpenAiServer::stop() { impl_->http.stop(); }

}  // namespace ll::server
