#pragma once
// `run --chat`: the user's (and system) message rendered with the model's chat template.
#include <CLI/CLI.hpp>

#include <string>

#include "model/model.h"

namespace ll::cli {

struct ChatOptions {
  bool chat = false;
  std::string system_prompt;
  std::string template_name;  // empty: the model's tokenizer.chat_template
};

void add_chat_options(CLI::App& cmd, ChatOptions& o);

// The prompt text for [system?, user] with the assistant's turn opened, without a leading BOS the
// tokenizer adds anyway; prints the template family used to stderr (one line). Exits on an unknown
// --chat-template name.
std::string chat_prompt(const ChatOptions& o, const std::string& user_message, const model::Model& m);

}  // namespace ll::cli
