#pragma once
// Conversations rendered with the model's chat template: `run --chat`, `chat`, and the
// instructions of `summarize` and `translate`.
#include <CLI/CLI.hpp>

#include <optional>
#include <span>
#include <string>

#include "model/model.h"
#include "text/chat_template.h"

namespace ll::cli {

struct ChatOptions {
  bool chat = false;
  std::string system_prompt;
  std::string template_name;  // empty: the model's tokenizer.chat_template
};

// run's --chat, with --system-prompt and --chat-template that need it.
void add_chat_options(CLI::App& cmd, ChatOptions& o);
// --system-prompt (-sys) and --chat-template, for commands that always use the template.
void add_chat_template_options(CLI::App& cmd, ChatOptions& o);

// The template --chat-template names, else the model's when this program knows its family;
// nullopt otherwise. Exits on an unknown --chat-template name.
std::optional<text::ChatTemplate> known_chat_template(const ChatOptions& o, const model::Model& m);
// known_chat_template, else the plain 'role: content' format; prints which to stderr (one line).
text::ChatTemplate chat_template(const ChatOptions& o, const model::Model& m);

// [system?, user] with chat_template(o, m).
std::string chat_prompt(const ChatOptions& o, const std::string& user_message, const model::Model& m);

}  // namespace ll::cli
