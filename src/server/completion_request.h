#pragma once
// The body of POST /v1/completions and /v1/chat/completions, checked field by field: every
// field of the wrong type or outside its range is a 400 naming it.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "server/api_error.h"
#include "text/chat_template.h"
#include "text/sampler.h"

namespace ll::server {

struct RequestLimits {
  size_t max_body_bytes = 4 << 20;    // larger bodies get a 413 before they are parsed
  size_t max_prompt_bytes = 1 << 20;  // a prompt, or all chat messages together
  size_t max_messages = 256;
  size_t max_stop = 4;  // OpenAI's bound
  size_t max_stop_bytes = 256;
};

struct CompletionRequest {
  bool chat = false;
  std::string model;
  std::string prompt;                     // /v1/completions
  std::vector<text::ChatMessage> messages;  // /v1/chat/completions
  int64_t max_tokens = 16;  // -1: until EOS or a full context
  text::SamplerParams sampling;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
};

// `chat` selects /v1/chat/completions. `seed` is used when the request gives none.
std::variant<CompletionRequest, ApiError> parse_completion_request(const nlohmann::json& body, bool chat,
                                                                   const RequestLimits& limits, uint64_t seed);

}  // namespace ll::server
