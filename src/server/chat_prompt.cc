#include "server/chat_prompt.h"

#include "model/chat_prompt.h"

namespace ll::server {

ChatPrompt::ChatPrompt(const model::Model& model) : model_(model) {
  auto source = model.file().get_string_or("tokenizer.chat_template", "");
  if (!source.ok() || source.value().empty()) {
    description_ = "plain 'role: content' lines (the model has no chat template)";
  } else if (auto known = model::known_chat_template(model)) {
    template_ = *known;
    description_ = std::string(text::chat_family_name(template_.family)) + " (the model's)";
  } else {
    description_ = "plain 'role: content' lines (the model's chat template is not one this program knows)";
  }
}

std::string ChatPrompt::render(std::span<const text::ChatMessage> messages) const {
  return model::render_chat_prompt(template_, messages, model_);
}

}  // namespace ll::server
