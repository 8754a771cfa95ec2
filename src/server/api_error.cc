#include "server/api_error.h"

#include <fmt/format.h>

namespace ll::server {

nlohmann::json ApiError::to_json() const {
  auto or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  return {{"error", {{"message", message}, {"type", type}, {"param", or_null(param)}, {"code", or_null(code)}}}};
}

ApiError invalid_request(std::string message, std::string param) {
  return {400, std::move(message), "invalid_request_error", std::move(param), ""};
}

ApiError unauthorized() {
  return {401, "missing or wrong API key: send the server's --api-key as 'Authorization: Bearer KEY'",
          "invalid_request_error", "", "invalid_api_key"};
}

ApiError model_not_found(const std::string& model) {
  return {404, "the model '" + model + "' does not exist here (GET /v1/models lists the one served)",
          "invalid_request_error", "model", "model_not_found"};
}

ApiError server_busy(size_t generating, size_t queued) {
  return {503,
          fmt::format("the server is busy: {} requests generate and {} wait, as many as it takes (--parallel, "
                      "--queue); retry later",
                      generating, queued),
          "server_error", "", "server_busy"};
}

}  // namespace ll::server
