#include "server/chat_prompt.h"

#include <ctime>

namespace ll::server {
namespace {

std::string token_text(const text::Vocab& v, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < v.tokens.size() ? v.tokens[static_cast<size_t>(id)] : "";
}

// Templates that print the day use Python's strftime("%d %b %Y").
std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[32];
  return std::string(buf, std::strftime(buf, sizeof buf, "%d %b %Y", &local));
}

}  // namespace

ChatPrompt::ChatPrompt(const model::Model& model) {
  auto source = model.file().get_string_or("tokenizer.chat_template", "");
  const std::string jinja = source.ok() ? source.value() : "";
  if (jinja.empty()) {
    description_ = "plain 'role: content' lines (the model has no chat template)";
  } else if (auto detected = text::detect_chat_template(jinja)) {
    template_ = *detected;
    description_ = std::string(text::chat_family_name(template_.family)) + " (the model's)";
  } else {
    description_ = "plain 'role: content' lines (the model's chat template is not one this program knows)";
  }
  const text::Vocab& vocab = model.vocab();
  options_.bos_token = token_text(vocab, vocab.bos);
  options_.eos_token = token_text(vocab, vocab.eos);
  tokenizer_adds_bos_ = vocab.add_bos;
}

std::string ChatPrompt::render(std::span<const text::ChatMessage> messages) const {
  text::ChatRenderOptions options = options_;
  options.today = today();
  const std::string prompt = text::render_chat(template_, messages, options);
  return std::string(text::without_leading_bos(prompt, options.bos_token, tokenizer_adds_bos_));
}

}  // namespace ll::server
