#include "server/status_routes.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string_view>

#include "server/api_error.h"
#include "server/metrics_text.h"
#include "server/status_json.h"
#include "server/web_assets.h"

namespace ll::server {
namespace {

using nlohmann::json;

constexpr auto kSnapshotEvery = std::chrono::seconds(1);

// The page's files: "/" and names like "/app.js".
constexpr const char* kAssetPattern = R"(/|/[\w-]+\.\w+)";

// The API's routes are counted by name on /metrics, and the page's files as "/"; any other path
// is "other", so that requests for made-up paths cannot grow the label set.
constexpr std::array<std::string_view, 7> kApiRoutes = {"/health", "/metrics", "/v1/status", "/v1/models",
                                                        "/v1/completions", "/v1/chat/completions", "/"};

std::string route_label(const std::string& path) {
  if (std::find(kApiRoutes.begin(), kApiRoutes.end(), path) != kApiRoutes.end()) return path;
  return find_web_asset(path) != nullptr ? "/" : "other";
}

void refuse(httplib::Response& res) {
  const ApiError e = unauthorized();
  res.status = e.status;
  res.set_content(e.to_json().dump(), "application/json");
}

std::string sse(const char* event, const json& data) {
  return fmt::format("event: {}\ndata: {}\n\n", event, data.dump(-1, ' ', false, json::error_handler_t::replace));
}

void serve_asset(const httplib::Request& req, httplib::Response& res) {
  const WebAsset* asset = find_web_asset(req.path == "/" ? "/index.html" : req.path);
  if (asset == nullptr) {
    res.status = 404;
    return;
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_content(std::string(asset->body), std::string(asset->content_type).c_str());
}

// The snapshot now, then events as they come and a snapshot every second, until the client goes
// away or the board closes.
void stream_status(StatusBoard& board, httplib::DataSink& sink) {
  uint64_t seen = 0;
  auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
  while (!board.closed()) {
    const StatusSnapshot snapshot = board.snapshot();
    for (const StatusEvent& e : snapshot.events) seen = std::max(seen, e.id);  // sent with the snapshot
    if (!write(sse("status", status_json(snapshot)))) return;
    const auto next = std::chrono::steady_clock::now() + kSnapshotEvery;
    for (auto now = std::chrono::steady_clock::now(); now < next && !board.closed();
         now = std::chrono::steady_clock::now()) {
      for (const StatusEvent& e : board.events_after(seen, std::chrono::duration_cast<std::chrono::milliseconds>(next - now))) {
        if (!write(sse("cluster", event_json(e)))) return;
        seen = e.id;
      }
    }
  }
}

}  // namespace

void add_status_routes(httplib::Server& http, StatusBoard& board, Authorize authorized) {
  http.Get(kAssetPattern, serve_asset);
  http.Get("/metrics", [&board, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req)) return refuse(res);
    res.set_content(prometheus_text(board.snapshot()), kPrometheusContentType);
  });
  http.Get("/v1/status", [&board, authorized](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req)) return refuse(res);
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream", [&board](size_t, httplib::DataSink& sink) {
      stream_status(board, sink);
      sink.done();
      return true;
    });
  });
  http.set_logger([&board](const httplib::Request& req, const httplib::Response& res) {
    board.request_answered(route_label(req.path), res.status);
  });
}

}  // namespace ll::server
