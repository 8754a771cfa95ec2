#include "cli/chat_prompt.h"

#include <cstdio>
#include <vector>

#include "cli/common_options.h"
#include "model/chat_prompt.h"
#include "text/chat_template.h"

namespace ll::cli {

void add_chat_options(CLI::App& cmd, ChatOptions& o) {
  CLI::Option* chat = cmd.add_flag(
      "--chat", o.chat,
      "treat -p as a user message: render it with the model's chat template (tokenizer.chat_template) and let "
      "the assistant answer");
  cmd.add_option("--system-prompt", o.system_prompt, "system message in front of the user message (with --chat)")
      ->needs(chat);
  cmd.add_option("--chat-template", o.template_name,
                 "use this chat template family instead of the model's (with --chat): " + text::chat_template_names())
      ->needs(chat);
}

void add_chat_template_options(CLI::App& cmd, ChatOptions& o) {
  cmd.add_option("--system-prompt", o.system_prompt, "system message in front of the conversation (also -sys)");
  cmd.add_option("--chat-template", o.template_name,
                 "use this chat template family instead of the model's: " + text::chat_template_names());
}

std::optional<text::ChatTemplate> known_chat_template(const ChatOptions& o, const model::Model& m) {
  if (!o.template_name.empty()) return or_exit(text::chat_template_from_name(o.template_name));
  return model::known_chat_template(m);
}

text::ChatTemplate chat_template(const ChatOptions& o, const model::Model& m) {
  constexpr const char* kFallback = "using a plain 'role: content' format; pick one with --chat-template NAME";
  if (auto known = known_chat_template(o, m)) {
    std::fprintf(stderr, "chat template: %s (%s)\n", std::string(chat_family_name(known->family)).c_str(),
                 o.template_name.empty() ? "the model's" : "--chat-template");
    return *known;
  }
  if (or_exit(m.file().get_string_or("tokenizer.chat_template", "")).empty()) {
    // Without a template the model was not trained on a chat format (llama.cpp would use ChatML,
    // whose markers such a vocabulary lacks); plain lines read as a dialogue.
    std::fprintf(stderr, "the model has no chat template; %s (known: %s)\n", kFallback,
                 text::chat_template_names().c_str());
  } else {
    std::fprintf(stderr, "the model's chat template is not one this program knows; %s (known: %s)\n", kFallback,
                 text::chat_template_names().c_str());
  }
  return text::ChatTemplate{};
}

std::string chat_prompt(const ChatOptions& o, const std::string& user_message, const model::Model& m) {
  std::vector<text::ChatMessage> messages;
  if (!o.system_prompt.empty()) messages.push_back({"system", o.system_prompt});
  messages.push_back({"user", user_message});
  return model::render_chat_prompt(chat_template(o, m), messages, m);
}

}  // namespace ll::cli
