#pragma once
// Chat messages rendered to a prompt with the model's chat template (tokenizer.chat_template),
// or, for a model without a template this program knows, as plain "role: content" lines ending
// in "assistant:". The model must outlive it.
#include <span>
#include <string>

#include "model/model.h"
#include "text/chat_template.h"

namespace ll::server {

class ChatPrompt {
 public:
  explicit ChatPrompt(const model::Model& model);
  // The prompt text with the assistant's turn opened, without a leading BOS the tokenizer adds.
  std::string render(std::span<const text::ChatMessage> messages) const;
  // "chatml (the model's)", "plain (the model has no chat template)", ... for the startup log.
  const std::string& description() const { return description_; }

 private:
  const model::Model& model_;
  text::ChatTemplate template_;
  std::string description_;
};

}  // namespace ll::server
