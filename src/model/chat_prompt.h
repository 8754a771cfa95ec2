#pragma once
// A conversation rendered for a model: its chat template's family as this program knows it, and
// the prompt text with the model's own BOS/EOS markers. Shared by the commands and the server.
#include <optional>
#include <span>
#include <string>

#include "model/model.h"
#include "text/chat_template.h"

namespace ll::model {

// The model's tokenizer.chat_template when it is of a family this program knows; nullopt when
// the model has none or an unknown one.
std::optional<text::ChatTemplate> known_chat_template(const Model& m);

// The conversation's prompt text with the assistant's turn opened, without a leading BOS the
// tokenizer adds anyway.
std::string render_chat_prompt(const text::ChatTemplate& tmpl, std::span<const text::ChatMessage> messages,
                               const Model& m);

}  // namespace ll::model
