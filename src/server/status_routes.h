#pragma once
// The routes that show the server to people and to monitoring:
//   GET /            the web page (a chat and a live view of the cluster) and its files
//   GET /metrics     Prometheus text: requests, tokens, tokens/s, per-stage times, sequences
//   GET /v1/status   server-sent events: `status` (the snapshot) every second and `cluster` (a
//                    rebalance, a recovery, a rejoin) as it happens
// The page's files are public (they hold nothing of the server's); /metrics and /v1/status ask
// for the API key as the OpenAI routes do. Every answered request is counted on the board.
#include <httplib.h>

#include <functional>

#include "server/status_board.h"

namespace ll::server {

using Authorize = std::function<bool(const httplib::Request&)>;

// `board` must outlive `http`; closing it ends the open status streams (do so before stopping).
void add_status_routes(httplib::Server& http, StatusBoard& board, Authorize authorized);

}  // namespace ll::server
