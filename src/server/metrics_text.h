#pragma once
// The StatusBoard's snapshot in Prometheus' text exposition format (version 0.0.4), for GET /metrics.
#include <string>

#include "server/status_board.h"

namespace ll::server {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string prometheus_text(const StatusSnapshot& s);

}  // namespace ll::server
