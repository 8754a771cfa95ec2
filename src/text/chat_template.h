#pragma once
// Chat templates: a conversation rendered to the prompt text a chat model was trained on.
// A GGUF carries its template as Jinja source (tokenizer.chat_template); instead of running Jinja,
// the family is recognised by telltale substrings, as llama.cpp's llm_chat_detect_template does,
// and each family is written out in C++ so that it gives exactly what its template gives.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ll::text {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatFamily {
  kPlain,  // "role: content" lines, for models without a (known) template
  kChatml,
  kPhi4,
  kLlama2,
  kLlama2Sys,
  kLlama2SysBos,
  kLlama2SysStrip,
  kMistralV1,
  kMistralV3,
  kMistralV3Tekken,
  kMistralV7,
  kPhi3,
  kFalcon3,
  kZephyr,
  kMonarch,
  kGemma,
  kOrion,
  kOpenchat,
  kVicuna,
  kVicunaOrca,
  kDeepseek,
  kDeepseek2,
  kDeepseek3,
  kDeepseekR1,
  kCommandR,
  kLlama3,
  kLlama31,
  kChatglm3,
  kGlmEdge,
  kGranite,
};

struct ChatTemplate {
  ChatFamily family = ChatFamily::kPlain;
  // The template writes bos_token in front of the conversation.
  bool leading_bos = false;
  // The template has no system turn (it refuses or ignores the message): the system text goes in
  // front of the first user message, followed by "\n" — llama.cpp's choice, so the model still
  // sees it.
  bool merge_system = false;
  // What the template says as the system message when the conversation has none.
  std::string default_system;
  // Llama 3.1's "Today Date" when the template fixes it; empty: the day of the rendering.
  std::string date;
};

// The name given to --chat-template ("chatml", "llama3", ...).
std::string_view chat_family_name(ChatFamily family);
// Every name, comma-separated, for help and error messages.
std::string chat_template_names();
// The family a name selects; an unknown name is an error listing the known ones.
Result<ChatTemplate> chat_template_from_name(std::string_view name);
// The family of a template's Jinja source (or of a bare name, as llama.cpp accepts); nullopt when
// no telltale matches.
std::optional<ChatTemplate> detect_chat_template(std::string_view jinja_source);

struct ChatRenderOptions {
  std::string bos_token;  // the vocabulary's spellings, written where the template writes them
  std::string eos_token;
  bool add_generation_prompt = true;  // end with the opener of the assistant's turn
  std::string today;                  // "26 Jul 2024" style, for templates that print the date
};

std::string render_chat(const ChatTemplate& tmpl, std::span<const ChatMessage> messages,
                        const ChatRenderOptions& options);

// The prompt without its leading BOS text when the tokenizer adds BOS itself, so that the model
// sees one BOS, not two (what llama.cpp does with a rendered template).
std::string_view without_leading_bos(std::string_view prompt, std::string_view bos_token, bool tokenizer_adds_bos);

}  // namespace ll::text
