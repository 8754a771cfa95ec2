#include "model/chat_prompt.h"

#include <ctime>

namespace ll::model {
namespace {

// Llama 3.2's template prints the day, as Python's strftime("%d %b %Y").
std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[32];
  return std::string(buf, std::strftime(buf, sizeof buf, "%d %b %Y", &local));
}

std::string token_text(const text::Vocab& v, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < v.tokens.size() ? v.tokens[static_cast<size_t>(id)] : "";
}

}  // namespace

std::optional<text::ChatTemplate> known_chat_template(const Model& m) {
  auto source = m.file().get_string_or("tokenizer.chat_template", "");
  if (!source.ok() || source.value().empty()) return std::nullopt;
  return text::detect_chat_template(source.value());
}

std::string render_chat_prompt(const text::ChatTemplate& tmpl, std::span<const text::ChatMessage> messages,
                               const Model& m) {
  const text::Vocab& vocab = m.vocab();
  text::ChatRenderOptions render;
  render.bos_token = token_text(vocab, vocab.bos);
  render.eos_token = token_text(vocab, vocab.eos);
  render.today = today();
  const std::string prompt = text::render_chat(tmpl, messages, render);
  return std::string(text::without_leading_bos(prompt, render.bos_token, vocab.add_bos));
}

}  // namespace ll::model
