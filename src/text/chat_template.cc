#include "text/chat_template.h"

#include <array>
#include <cctype>
#include <utility>

namespace ll::text {
namespace {

constexpr std::array<std::pair<ChatFamily, std::string_view>, 30> kNames = {{
    {ChatFamily::kChatml, "chatml"},
    {ChatFamily::kPhi4, "phi4"},
    {ChatFamily::kLlama2, "llama2"},
    {ChatFamily::kLlama2Sys, "llama2-sys"},
    {ChatFamily::kLlama2SysBos, "llama2-sys-bos"},
    {ChatFamily::kLlama2SysStrip, "llama2-sys-strip"},
    {ChatFamily::kMistralV1, "mistral-v1"},
    {ChatFamily::kMistralV3, "mistral-v3"},
    {ChatFamily::kMistralV3Tekken, "mistral-v3-tekken"},
    {ChatFamily::kMistralV7, "mistral-v7"},
    {ChatFamily::kPhi3, "phi3"},
    {ChatFamily::kFalcon3, "falcon3"},
    {ChatFamily::kZephyr, "zephyr"},
    {ChatFamily::kMonarch, "monarch"},
    {ChatFamily::kGemma, "gemma"},
    {ChatFamily::kOrion, "orion"},
    {ChatFamily::kOpenchat, "openchat"},
    {ChatFamily::kVicuna, "vicuna"},
    {ChatFamily::kVicunaOrca, "vicuna-orca"},
    {ChatFamily::kDeepseek, "deepseek"},
    {ChatFamily::kDeepseek2, "deepseek2"},
    {ChatFamily::kDeepseek3, "deepseek3"},
    {ChatFamily::kDeepseekR1, "deepseek-r1"},
    {ChatFamily::kCommandR, "command-r"},
    {ChatFamily::kLlama3, "llama3"},
    {ChatFamily::kLlama31, "llama3.1"},
    {ChatFamily::kChatglm3, "chatglm3"},
    {ChatFamily::kGlmEdge, "glmedge"},
    {ChatFamily::kGranite, "granite"},
    {ChatFamily::kPlain, "plain"},
}};

// Llama 3.1's template prints this date unless the caller passes another.
constexpr std::string_view kLlama31Date = "26 Jul 2024";
constexpr std::string_view kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

// Families whose templates have no system turn at all.
bool lacks_system_turn(ChatFamily f) {
  return f == ChatFamily::kLlama2 || f == ChatFamily::kGemma || f == ChatFamily::kOrion;
}

ChatTemplate with_defaults(ChatFamily family) {
  ChatTemplate t;
  t.family = family;
  t.merge_system = lacks_system_turn(family);
  if (family == ChatFamily::kLlama31) t.date = kLlama31Date;
  return t;
}

// Python's str.strip() / Jinja's trim on ASCII whitespace.
std::string trim(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(begin, end - begin));
}

// Python's str.title() for one-word roles.
std::string title(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    out[i] = static_cast<char>(i == 0 ? std::toupper(c) : std::tolower(c));
  }
  return out;
}

// The conversation as the family's renderer sees it: a template default system message added,
// or the system text moved into the first user message for templates without a system turn.
std::vector<ChatMessage> prepare(const ChatTemplate& t, std::span<const ChatMessage> messages) {
  std::vector<ChatMessage> out(messages.begin(), messages.end());
  const bool has_system = !out.empty() && out.front().role == "system";
  if (!has_system && !t.default_system.empty()) out.insert(out.begin(), {"system", t.default_system});
  if (!t.merge_system) return out;
  std::string pending;
  std::vector<ChatMessage> merged;
  for (auto& m : out) {
    if (m.role == "system") {
      pending += m.content + "\n";
    } else if (m.role == "user" && !pending.empty()) {
      merged.push_back({m.role, pending + m.content});
      pending.clear();
    } else {
      merged.push_back(std::move(m));
    }
  }
  return merged;
}

void render_llama2(ChatFamily f, const std::vector<ChatMessage>& messages, const ChatRenderOptions& o,
                   std::string& s) {
  const bool strip = f == ChatFamily::kLlama2SysStrip;
  const bool bos_between_turns = f == ChatFamily::kLlama2SysBos;
  std::string system_block;  // <<SYS>> goes in front of the next user message
  bool first_turn = true;
  for (const auto& m : messages) {
    if (m.role == "system") {
      system_block = "<<SYS>>\n" + m.content + "\n<</SYS>>\n\n";
    } else if (m.role == "user") {
      const std::string content = system_block + m.content;
      s += (first_turn || !bos_between_turns) ? "[INST] " : o.bos_token + "[INST] ";
      s += (strip ? trim(content) : content) + " [/INST]";
      system_block.clear();
      first_turn = false;
    } else if (f == ChatFamily::kLlama2) {
      s += m.content + o.eos_token;
    } else {
      s += " " + (strip ? trim(m.content) : m.content) + " " + o.eos_token;
    }
  }
}

// Mistral's v1, v3 and v3-tekken templates differ in spacing, in trimming the assistant's text and in
// where the system message goes: in front of the first user message (v1) or of the last one when it
// ends the conversation (v3).
void render_mistral(ChatFamily f, const std::vector<ChatMessage>& messages, const ChatRenderOptions& o,
                    std::string& s) {
  std::string system;
  size_t begin = 0;
  if (!messages.empty() && messages.front().role == "system") {
    system = messages.front().content;
    begin = 1;
  }
  bool first_user = true;
  for (size_t i = begin; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (m.role == "user") {
      const bool with_system = f == ChatFamily::kMistralV1 ? first_user : i + 1 == messages.size();
      const std::string content = (with_system && begin == 1) ? system + "\n\n" + m.content : m.content;
      if (f == ChatFamily::kMistralV1) s += " [INST] " + content + " [/INST]";
      if (f == ChatFamily::kMistralV3) s += "[INST] " + content + "[/INST]";
      if (f == ChatFamily::kMistralV3Tekken) s += "[INST]" + content + "[/INST]";
      first_user = false;
    } else if (m.role == "assistant") {
      if (f == ChatFamily::kMistralV1) s += " " + m.content + o.eos_token;
      if (f == ChatFamily::kMistralV3) s += " " + trim(m.content) + o.eos_token;
      if (f == ChatFamily::kMistralV3Tekken) s += m.content + o.eos_token;
    }
  }
}

// Families that write each message on its own, with an assistant opener at the end.
void render_turns(const ChatTemplate& t, const std::vector<ChatMessage>& messages, const ChatRenderOptions& o,
                  std::string& s) {
  const ChatFamily f = t.family;
  const bool gen = o.add_generation_prompt;
  switch (f) {
    case ChatFamily::kPlain:
      for (const auto& m : messages) s += m.role + ": " + m.content + "\n";
      if (gen) s += "assistant:";
      return;
    case ChatFamily::kChatml:
      for (const auto& m : messages) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (gen) s += "<|im_start|>assistant\n";
      return;
    case ChatFamily::kPhi4:
      for (const auto& m : messages) s += "<|im_start|>" + m.role + "<|im_sep|>" + m.content + "<|im_end|>";
      if (gen) s += "<|im_start|>assistant<|im_sep|>";
      return;
    case ChatFamily::kMistralV7:
      for (const auto& m : messages) {
        if (m.role == "system") s += "[SYSTEM_PROMPT] " + m.content + "[/SYSTEM_PROMPT]";
        if (m.role == "user") s += "[INST] " + m.content + "[/INST]";
        if (m.role == "assistant") s += " " + m.content + o.eos_token;
      }
      return;
    case ChatFamily::kPhi3:
      for (const auto& m : messages) {
        if (m.role != "system" || !m.content.empty()) s += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
      }
      if (gen) s += "<|assistant|>\n";
      return;
    case ChatFamily::kFalcon3:
      for (const auto& m : messages) s += "<|" + m.role + "|>\n" + m.content + "\n";
      if (gen) s += "<|assistant|>\n";
      return;
    case ChatFamily::kZephyr:
      for (const auto& m : messages) s += "<|" + m.role + "|>\n" + m.content + "<|endoftext|>\n";
      if (gen) s += "<|assistant|>\n";
      return;
    case ChatFamily::kMonarch:
      for (const auto& m : messages) s += o.bos_token + m.role + "\n" + m.content + o.eos_token + "\n";
      if (gen) s += o.bos_token + "assistant\n";
      return;
    case ChatFamily::kGemma:
      for (const auto& m : messages) {
        s += "<start_of_turn>" + (m.role == "assistant" ? std::string("model") : m.role) + "\n" + trim(m.content) +
             "<end_of_turn>\n";
      }
      if (gen) s += "<start_of_turn>model\n";
      return;
    case ChatFamily::kOrion:  // the user's turn already opens the assistant's
      for (const auto& m : messages) {
        if (m.role == "user") s += "Human: " + m.content + "\n\nAssistant: " + o.eos_token;
        if (m.role == "assistant") s += m.content + o.eos_token;
      }
      return;
    case ChatFamily::kOpenchat:
      for (const auto& m : messages) s += "GPT4 Correct " + title(m.role) + ": " + m.content + "<|end_of_turn|>";
      if (gen) s += "GPT4 Correct Assistant:";
      return;
    case ChatFamily::kVicuna:
    case ChatFamily::kVicunaOrca:
      for (const auto& m : messages) {
        if (m.role == "system") s += f == ChatFamily::kVicunaOrca ? "SYSTEM: " + m.content + "\n" : m.content + "\n\n";
        if (m.role == "user") s += "USER: " + m.content + "\n";
        if (m.role == "assistant") s += "ASSISTANT: " + m.content + "</s>\n";
      }
      if (gen) s += "ASSISTANT:";
      return;
    case ChatFamily::kDeepseek:
      for (const auto& m : messages) {
        if (m.role == "system") s += m.content;
        if (m.role == "user") s += "### Instruction:\n" + m.content + "\n";
        if (m.role == "assistant") s += "### Response:\n" + m.content + "\n<|EOT|>\n";
      }
      if (gen) s += "### Response:\n";
      return;
    case ChatFamily::kDeepseek2:
      for (const auto& m : messages) {
        if (m.role == "system") s += m.content + "\n\n";
        if (m.role == "user") s += "User: " + m.content + "\n\n";
        if (m.role == "assistant") s += "Assistant: " + m.content + o.eos_token;
      }
      if (gen) s += "Assistant:";
      return;
    case ChatFamily::kDeepseek3:
    case ChatFamily::kDeepseekR1: {
      // The last system message comes first, with nothing after it.
      std::string_view system;
      for (const auto& m : messages) {
        if (m.role == "system") system = m.content;
      }
      s += system;
      for (const auto& m : messages) {
        if (m.role == "user") s += "<｜User｜>" + m.content;
        if (m.role != "assistant") continue;
        std::string_view content = m.content;
        if (const size_t think = content.rfind("</think>"); f == ChatFamily::kDeepseekR1 && think != content.npos) {
          content.remove_prefix(think + 8);  // R1 keeps only the answer of earlier turns
        }
        s += "<｜Assistant｜>" + std::string(content) + "<｜end▁of▁sentence｜>";
      }
      if (gen) s += f == ChatFamily::kDeepseekR1 ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>";
      return;
    }
    case ChatFamily::kCommandR:
      for (const auto& m : messages) {
        if (m.role == "system") s += "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>" + m.content + "<|END_OF_TURN_TOKEN|>";
        if (m.role == "user") s += "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>" + trim(m.content) + "<|END_OF_TURN_TOKEN|>";
        if (m.role == "assistant") {
          s += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>" + trim(m.content) + "<|END_OF_TURN_TOKEN|>";
        }
      }
      if (gen) s += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
      return;
    case ChatFamily::kLlama3:
    case ChatFamily::kLlama31: {
      size_t begin = 0;
      if (f == ChatFamily::kLlama31) {  // the system turn is always there, dated
        const bool has_system = !messages.empty() && messages.front().role == "system";
        s += "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: " +
             (t.date.empty() ? o.today : t.date) + "\n\n" + (has_system ? trim(messages.front().content) : "") +
             "<|eot_id|>";
        begin = has_system ? 1 : 0;
      }
      for (size_t i = begin; i < messages.size(); ++i) {
        s += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" + trim(messages[i].content) +
             "<|eot_id|>";
      }
      if (gen) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return;
    }
    case ChatFamily::kChatglm3:
      s += "[gMASK]sop";
      for (const auto& m : messages) s += "<|" + m.role + "|>\n " + m.content;
      if (gen) s += "<|assistant|>";
      return;
    case ChatFamily::kGlmEdge:
      for (const auto& m : messages) s += "<|" + m.role + "|>\n" + m.content;
      if (gen) s += "<|assistant|>";
      return;
    case ChatFamily::kGranite:
      for (const auto& m : messages) s += "<|start_of_role|>" + m.role + "<|end_of_role|>" + m.content + "<|end_of_text|>\n";
      if (gen) s += "<|start_of_role|>assistant<|end_of_role|>";
      return;
    default:
      return;  // the [INST] families have renderers of their own
  }
}

}  // namespace

std::string_view chat_family_name(ChatFamily family) {
  for (const auto& [f, name] : kNames) {
    if (f == family) return name;
  }
  return "plain";
}

std::string chat_template_names() {
  std::string out;
  for (const auto& [f, name] : kNames) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

Result<ChatTemplate> chat_template_from_name(std::string_view name) {
  for (const auto& [f, n] : kNames) {
    if (n == name) return with_defaults(f);
  }
  return Status::Errorf("unknown chat template '{}'; use one of: {}", name, chat_template_names());
}

std::optional<ChatTemplate> detect_chat_template(std::string_view src) {
  if (auto named = chat_template_from_name(src); named.ok()) return named.value();
  auto has = [src](std::string_view s) { return src.find(s) != src.npos; };
  auto family = [&]() -> std::optional<ChatFamily> {
    using F = ChatFamily;
    if (has("<|im_start|>")) return has("<|im_sep|>") ? F::kPhi4 : F::kChatml;
    if (src.starts_with("mistral") || has("[INST]")) {
      if (has("[SYSTEM_PROMPT]")) return F::kMistralV7;
      if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
        if (has(" [INST]")) return F::kMistralV1;
        return has("\"[INST]\"") ? F::kMistralV3Tekken : F::kMistralV3;
      }
      if (has("content.strip()")) return F::kLlama2SysStrip;
      if (has("bos_token + '[INST]")) return F::kLlama2SysBos;
      return has("<<SYS>>") ? F::kLlama2Sys : F::kLlama2;
    }
    if (has("<|assistant|>") && has("<|end|>")) return F::kPhi3;
    if (has("<|assistant|>") && has("<|user|>")) return has("</s>") ? F::kFalcon3 : F::kGlmEdge;
    if (has("<|user|>") && has("<|endoftext|>")) return F::kZephyr;
    if (has("bos_token + message['role']")) return F::kMonarch;
    if (has("<start_of_turn>")) return F::kGemma;
    if (has("'\\n\\nAssistant: ' + eos_token")) return F::kOrion;
    if (has("GPT4 Correct ")) return F::kOpenchat;
    if (has("USER: ") && has("ASSISTANT: ")) return has("SYSTEM: ") ? F::kVicunaOrca : F::kVicuna;
    if (has("### Instruction:") && has("<|EOT|>")) return F::kDeepseek;
    if (has("<|START_OF_TURN_TOKEN|>") && has("<|USER_TOKEN|>")) return F::kCommandR;
    if (has("<|start_header_id|>") && has("<|end_header_id|>")) {
      return has("Cutting Knowledge Date") ? F::kLlama31 : F::kLlama3;
    }
    if (has("[gMASK]sop")) return F::kChatglm3;
    if (has("'Assistant: ' + message['content'] + eos_token")) return F::kDeepseek2;
    if (has("<｜Assistant｜>") && has("<｜User｜>") && has("<｜end▁of▁sentence｜>")) {
      return has("<think>") ? F::kDeepseekR1 : F::kDeepseek3;
    }
    if (has("<|start_of_role|>")) return F::kGranite;
    return std::nullopt;
  }();
  if (!family) return std::nullopt;

  ChatTemplate t = with_defaults(*family);
  // Monarch and llama2-sys-bos place BOS inside the conversation themselves.
  t.leading_bos = has("bos_token") && t.family != ChatFamily::kMonarch && t.family != ChatFamily::kLlama2SysBos;
  // Older Phi-3 templates write user and assistant turns only and drop a system message.
  if (t.family == ChatFamily::kPhi3 && !has("<|system|>") && !has("'<|' + message['role']")) t.merge_system = true;
  if (t.family == ChatFamily::kChatml && has(kQwenDefaultSystem)) t.default_system = kQwenDefaultSystem;
  if (t.family == ChatFamily::kLlama31 && has("strftime_now")) t.date.clear();
  return t;
}

std::string render_chat(const ChatTemplate& tmpl, std::span<const ChatMessage> messages,
                        const ChatRenderOptions& options) {
  const std::vector<ChatMessage> prepared = prepare(tmpl, messages);
  std::string s = tmpl.leading_bos ? options.bos_token : "";
  switch (tmpl.family) {
    case ChatFamily::kLlama2:
    case ChatFamily::kLlama2Sys:
    case ChatFamily::kLlama2SysBos:
    case ChatFamily::kLlama2SysStrip:
      render_llama2(tmpl.family, prepared, options, s);
      break;
    case ChatFamily::kMistralV1:
    case ChatFamily::kMistralV3:
    case ChatFamily::kMistralV3Tekken:
      render_mistral(tmpl.family, prepared, options, s);
      break;
    default:
      render_turns(tmpl, prepared, options, s);
  }
  return s;
}

std::string_view without_leading_bos(std::string_view prompt, std::string_view bos_token, bool tokenizer_adds_bos) {
  if (tokenizer_adds_bos && !bos_token.empty() && prompt.starts_with(bos_token)) prompt.remove_prefix(bos_token.size());
  return prompt;
}

}  // namespace ll::text
