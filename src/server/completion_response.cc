#include "server/completion_response.h"

namespace ll::server {
namespace {

using nlohmann::json;

json envelope(const CompletionIds& ids, bool chunk) {
  const char* object = ids.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", ids.id}, {"object", object}, {"created", ids.created}, {"model", ids.model},
          {"system_fingerprint", nullptr}};
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json finish_or_null(const std::string& finish_reason) {
  return finish_reason.empty() ? json(nullptr) : json(finish_reason);
}

// choices[0] of a chunk: `delta` for chat, `text` for completions.
json chunk_choice(const CompletionIds& ids, json delta, const std::string& text, const std::string& finish_reason) {
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_or_null(finish_reason)}};
  if (ids.chat) {
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = text;
  }
  return choice;
}

}  // namespace

json completion_body(const CompletionIds& ids, const std::string& text, const std::string& finish_reason,
                     const Usage& usage) {
  json body = envelope(ids, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (ids.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  body["choices"] = json::array({choice});
  body["usage"] = usage_json(usage);
  return body;
}

json text_chunk(const CompletionIds& ids, const std::string& text, bool first) {
  json delta = {{"content", text}};
  if (first) delta["role"] = "assistant";
  json body = envelope(ids, true);
  body["choices"] = json::array({chunk_choice(ids, std::move(delta), text, "")});
  return body;
}

json finish_chunk(const CompletionIds& ids, const std::string& finish_reason) {
  json body = envelope(ids, true);
  body["choices"] = json::array({chunk_choice(ids, json::object(), "", finish_reason)});
  return body;
}

json usage_chunk(const CompletionIds& ids, const Usage& usage) {
  json body = envelope(ids, true);
  body["choices"] = json::array();
  body["usage"] = usage_json(usage);
  return body;
}

std::string sse_event(const json& data) {
  // Invalid UTF-8 in generated text (a byte-level token split) is replaced rather than throwing.
  return "data: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace ll::server
