#pragma once
// An error as the OpenAI API sends it: an HTTP status and
// {"error": {"message", "type", "param", "code"}}, so that every client library reports it.
#include <nlohmann/json.hpp>

#include <string>

namespace ll::server {

struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // the request field at fault; "" when none (sent as null)
  std::string code;   // "" when none (sent as null)

  nlohmann::json to_json() const;
};

// 400: a field that is missing, of the wrong type or out of its range.
ApiError invalid_request(std::string message, std::string param = "");
// 401: no Bearer key, or not the server's.
ApiError unauthorized();
// 404: a model this server does not serve.
ApiError model_not_found(const std::string& model);
// 503: `generating` requests generate and `queued` more wait already (sent with Retry-After).
ApiError server_busy(size_t generating, size_t queued);

}  // namespace ll::server
