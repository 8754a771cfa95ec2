#include "server/status_json.h"

namespace ll::server {

using nlohmann::json;

json event_json(const StatusEvent& e) {
  return {{"id", e.id}, {"unix_seconds", e.unix_seconds}, {"kind", e.kind}, {"text", e.text}};
}

json status_json(const StatusSnapshot& s) {
  json devices = json::array();
  for (const DeviceStatus& d : s.devices) {
    devices.push_back({{"name", d.name},
                       {"address", d.address},
                       {"units", d.units},
                       {"unit_count", d.unit_count},
                       {"threads", d.threads},
                       {"memory_used_bytes", d.memory_used_bytes},
                       {"memory_limit_bytes", d.memory_limit_bytes},
                       {"compute_seconds_per_token", d.compute_seconds},
                       {"queue_seconds_per_token", d.queue_seconds},
                       {"send_seconds_per_token", d.send_seconds},
                       {"steps", d.steps}});
  }
  json events = json::array();
  for (const StatusEvent& e : s.events) events.push_back(event_json(e));
  return {{"model", s.model},
          {"memory_note", s.memory_note},
          {"uptime_seconds", s.uptime_seconds},
          {"devices", std::move(devices)},
          {"tokens_per_second", s.tokens_per_second},
          {"tokens_per_second_history", s.tokens_per_second_history},
          {"generating_tokens_per_second", s.generating_tokens_per_second},
          {"active_sequences", s.active_sequences},
          {"queued_requests", s.queued_requests},
          {"prompt_tokens_total", s.prompt_tokens_total},
          {"completion_tokens_total", s.completion_tokens_total},
          {"events", std::move(events)}};
}

}  // namespace ll::server
