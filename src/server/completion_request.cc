#include "server/completion_request.h"

#include <cmath>

namespace ll::server {
namespace {

using nlohmann::json;

// Thrown inside this file only, caught by parse_completion_request.
struct Invalid {
  ApiError error;
};

[[noreturn]] void invalid(std::string message, std::string param) {
  throw Invalid{invalid_request(std::move(message), std::move(param))};
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

double number_in(const json& body, const char* name, double min, double max, double fallback) {
  const json* v = field(body, name);
  if (v == nullptr) return fallback;
  if (!v->is_number()) invalid(std::string(name) + " must be a number", name);
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    invalid(fmt::format("{} must be between {} and {}", name, min, max), name);
  }
  return x;
}

std::string string_of(const json& v, const char* param, size_t max_bytes) {
  if (!v.is_string()) invalid(std::string(param) + " must be a string", param);
  std::string s = v.get<std::string>();
  if (s.size() > max_bytes) invalid(fmt::format("{} is longer than {} bytes", param, max_bytes), param);
  return s;
}

// A message's content: a string, or a list of {"type": "text", "text": ...} parts.
std::string message_content(const json& content, size_t max_bytes) {
  if (content.is_string()) return string_of(content, "messages", max_bytes);
  if (!content.is_array()) invalid("a message's content must be a string or a list of text parts", "messages");
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text")) {
      invalid("only text parts ({\"type\": \"text\", \"text\": ...}) are supported in a message", "messages");
    }
    text += string_of(part["text"], "messages", max_bytes);
    if (text.size() > max_bytes) invalid(fmt::format("the messages are longer than {} bytes", max_bytes), "messages");
  }
  return text;
}

std::vector<text::ChatMessage> parse_messages(const json& body, const RequestLimits& limits) {
  const json* v = field(body, "messages");
  if (v == nullptr || !v->is_array() || v->empty()) invalid("messages must be a non-empty list", "messages");
  if (v->size() > limits.max_messages) {
    invalid(fmt::format("at most {} messages per request", limits.max_messages), "messages");
  }
  std::vector<text::ChatMessage> messages;
  size_t bytes = 0;
  for (const json& m : *v) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      invalid("each message needs a role and a content", "messages");
    }
    std::string role = m["role"].get<std::string>();
    if (role == "developer") role = "system";  // OpenAI's newer name for the system message
    if (role != "system" && role != "user" && role != "assistant") {
      invalid("a message's role must be system, developer, user or assistant, not '" + role + "'", "messages");
    }
    const json* content = field(m, "content");
    std::string text = content == nullptr ? "" : message_content(*content, limits.max_prompt_bytes);
    bytes += text.size();
    if (bytes > limits.max_prompt_bytes) {
      invalid(fmt::format("the messages are longer than {} bytes", limits.max_prompt_bytes), "messages");
    }
    messages.push_back({std::move(role), std::move(text)});
  }
  return messages;
}

std::string parse_prompt(const json& body, const RequestLimits& limits) {
  const json* v = field(body, "prompt");
  if (v == nullptr) invalid("prompt is required", "prompt");
  if (v->is_array()) {
    if (v->size() != 1) invalid("one prompt per request", "prompt");
    return string_of((*v)[0], "prompt", limits.max_prompt_bytes);
  }
  return string_of(*v, "prompt", limits.max_prompt_bytes);
}

std::vector<std::string> parse_stop(const json& body, const RequestLimits& limits) {
  const json* v = field(body, "stop");
  if (v == nullptr) return {};
  if (v->is_string()) return {string_of(*v, "stop", limits.max_stop_bytes)};
  if (!v->is_array()) invalid("stop must be a string or a list of strings", "stop");
  if (v->size() > limits.max_stop) invalid(fmt::format("at most {} stop strings", limits.max_stop), "stop");
  std::vector<std::string> stop;
  for (const json& s : *v) stop.push_back(string_of(s, "stop", limits.max_stop_bytes));
  return stop;
}

int64_t parse_max_tokens(const json& body, bool chat) {
  // Chat clients send max_completion_tokens now; both mean the same here.
  const char* name = chat && field(body, "max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens";
  const json* v = field(body, name);
  if (v == nullptr) return chat ? -1 : 16;  // OpenAI's defaults: the whole context for chat, 16 otherwise
  if (!v->is_number_integer() || v->get<int64_t>() < 1) invalid(std::string(name) + " must be a positive integer", name);
  return v->get<int64_t>();
}

// Options this server does not implement are refused unless left at their neutral value.
void refuse_unsupported(const json& body) {
  const json* n = field(body, "n");
  if (n != nullptr && (!n->is_number_integer() || n->get<int64_t>() != 1)) invalid("only n = 1 is supported", "n");
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    if (number_in(body, name, -2, 2, 0) != 0) invalid(std::string(name) + " is not supported", name);
  }
  const json* logprobs = field(body, "logprobs");
  if (logprobs != nullptr && !(logprobs->is_boolean() && !logprobs->get<bool>())) {
    invalid("logprobs is not supported", "logprobs");
  }
  const json* echo = field(body, "echo");
  if (echo != nullptr && !(echo->is_boolean() && !echo->get<bool>())) invalid("echo is not supported", "echo");
  const json* best_of = field(body, "best_of");
  if (best_of != nullptr && !(best_of->is_number_integer() && best_of->get<int64_t>() == 1)) {
    invalid("only best_of = 1 is supported", "best_of");
  }
}

}  // namespace

std::variant<CompletionRequest, ApiError> parse_completion_request(const json& body, bool chat,
                                                                   const RequestLimits& limits, uint64_t seed) {
  try {
    if (!body.is_object()) invalid("the body must be a JSON object", "");
    CompletionRequest r;
    r.chat = chat;
    const json* model = field(body, "model");
    if (model == nullptr) invalid("model is required", "model");
    r.model = string_of(*model, "model", 1024);
    if (chat) {
      r.messages = parse_messages(body, limits);
    } else {
      r.prompt = parse_prompt(body, limits);
    }
    r.max_tokens = parse_max_tokens(body, chat);
    refuse_unsupported(body);
    // OpenAI's sampling: temperature then nucleus, nothing else (top-k, min-p and penalties off).
    r.sampling.temp = static_cast<float>(number_in(body, "temperature", 0, 2, 1));
    r.sampling.top_p = static_cast<float>(number_in(body, "top_p", 0, 1, 1));
    r.sampling.top_k = 0;
    r.sampling.min_p = 0;
    r.sampling.repeat_penalty = 1;
    r.sampling.seed = seed;
    if (const json* s = field(body, "seed")) {
      if (!s->is_number_integer()) invalid("seed must be an integer", "seed");
      r.sampling.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
    }
    r.stop = parse_stop(body, limits);
    if (const json* s = field(body, "stream")) {
      if (!s->is_boolean()) invalid("stream must be true or false", "stream");
      r.stream = s->get<bool>();
    }
    if (const json* o = field(body, "stream_options")) {
      if (!o->is_object()) invalid("stream_options must be an object", "stream_options");
      const json* usage = field(*o, "include_usage");
      if (usage != nullptr && !usage->is_boolean()) invalid("include_usage must be true or false", "stream_options");
      r.include_usage = usage != nullptr && usage->get<bool>();
    }
    return r;
  } catch (const Invalid& e) {
    return e.error;
  }
}

}  // namespace ll::server
