#pragma once
// The bodies OpenAI answers completions with: the whole completion, and, when streamed, the
// server-sent events (chunks with choices[0].text or choices[0].delta, a last chunk with the
// finish_reason, an optional usage chunk, then "data: [DONE]").
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace ll::server {

struct CompletionIds {
  bool chat = false;
  std::string id;  // cmpl-... or chatcmpl-...
  int64_t created = 0;  // Unix seconds
  std::string model;
};

struct Usage {
  size_t prompt_tokens = 0;
  size_t completion_tokens = 0;
};

// finish_reason: "stop" (end of text or a stop string) or "length" (max_tokens or the context).
nlohmann::json completion_body(const CompletionIds& ids, const std::string& text, const std::string& finish_reason,
                               const Usage& usage);
// A streamed piece of text; a chat's first chunk also carries the assistant's role.
nlohmann::json text_chunk(const CompletionIds& ids, const std::string& text, bool first);
// The last chunk of a choice: no text, its finish_reason.
nlohmann::json finish_chunk(const CompletionIds& ids, const std::string& finish_reason);
// stream_options.include_usage: after the finish chunk, no choices, the usage.
nlohmann::json usage_chunk(const CompletionIds& ids, const Usage& usage);
// One server-sent event: "data: JSON\n\n".
std::string sse_event(const nlohmann::json& data);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

}  // namespace ll::server
