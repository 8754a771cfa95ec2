#pragma once
// The StatusBoard's snapshot and events as JSON, as /v1/status streams them.
#include <nlohmann/json.hpp>

#include "server/status_board.h"

namespace ll::server {

nlohmann::json status_json(const StatusSnapshot& s);
nlohmann::json event_json(const StatusEvent& e);

}  // namespace ll::server
