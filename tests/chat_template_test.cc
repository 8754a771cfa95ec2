// Chat templates against reference/chat-templates/chat_templates.json: what each template renders
// (Python Jinja2, as Hugging Face's apply_chat_template) and what llama.cpp renders.
#include "text/chat_template.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "test_data.h"

namespace ll::text {
namespace {

using nlohmann::json;

json load_reference() {
  const std::string text = test::read_text(test::shared_data("reference/chat-templates/chat_templates.json"));
  return text.empty() ? json() : json::parse(text);
}

std::vector<ChatMessage> conversation(const json& ref) {
  std::vector<ChatMessage> out;
  for (const auto& m : ref["conversation"]) out.push_back({m["role"], m["content"]});
  return out;
}

std::vector<ChatMessage> without_system(std::vector<ChatMessage> messages) {
  std::erase_if(messages, [](const ChatMessage& m) { return m.role == "system"; });
  return messages;
}

ChatRenderOptions options_of(const json& ref, const json& c) {
  ChatRenderOptions o;
  o.bos_token = c["bos_token"];
  o.eos_token = c["eos_token"];
  o.add_generation_prompt = ref["add_generation_prompt"];
  o.today = ref["date_string"];
  return o;
}

// Templates no telltale recognises, and why.
const std::set<std::string> kUnknown = {
    // Needs additional_special_tokens, which a GGUF does not carry (Jinja2 itself fails on it).
    "ai-sage/GigaChat-20B-A3B-instruct",
};

// The family each reference template must be recognised as.
const std::map<std::string, std::string> kExpectedFamily = {
    {"teknium/OpenHermes-2.5-Mistral-7B", "chatml"},
    {"mistralai/Mistral-7B-Instruct-v0.2 (NOTE: Old pre-v1 without a system prompt)", "llama2"},
    {"TheBloke/FusionNet_34Bx2_MoE-AWQ", "llama2-sys-bos"},
    {"bofenghuang/vigogne-2-70b-chat", "llama2-sys-strip"},
    {"mlabonne/AlphaMonarch-7B", "monarch"},
    {"google/gemma-7b-it", "gemma"},
    {"OrionStarAI/Orion-14B-Chat", "orion"},
    {"openchat/openchat-3.5-0106", "openchat"},
    {"deepseek-ai/deepseek-coder-33b-instruct", "deepseek"},
    {"eachadea/vicuna-13b-1.1", "vicuna"},
    {"Orca-Vicuna", "vicuna-orca"},
    {"CohereForAI/c4ai-command-r-plus", "command-r"},
    {"Llama-3", "llama3"},
    {"Phi-3-mini", "phi3"},
    {"Phi-3-small", "phi3"},
    {"Phi-3-medium", "phi3"},
    {"Phi-3-vision", "phi3"},
    {"ChatGLM3", "chatglm3"},
    {"GLMEdge", "glmedge"},
    {"DeepSeek-V2", "deepseek2"},
    {"ibm-granite/granite-3.0-8b-instruct", "granite"},
    {"mistralai/Mistral-7B-Instruct-v0.2 (mistralai 'v1' template with a system prompt)", "mistral-v1"},
    {"Mistral-Large-Instruct-2407 (mistralai 'v3' template; modified to have system prompt at start)", "mistral-v3"},
    {"Mistral-Nemo-Instruct-2407 (mistralai 'v3-tekken' template; modified to have system prompt at start)",
     "mistral-v3-tekken"},
    {"mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)", "mistral-v7"},
    {"phi-4", "phi4"},
    {"Qwen-Qwen2.5-7B-Instruct", "chatml"},
    {"meta-llama-Llama-3.2-3B-Instruct", "llama3.1"},
    {"meta-llama-Llama-3.1-8B-Instruct", "llama3.1"},
    {"google-gemma-2-2b-it", "gemma"},
    {"microsoft-Phi-3.5-mini-instruct", "phi3"},
    {"mistralai-Mistral-Nemo-Instruct-2407", "mistral-v3-tekken"},
    {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "deepseek-r1"},
};

// Every template: recognised as its family and rendered exactly as Jinja2 renders it. Where the
// template refuses the system message (Jinja2 raised) or silently drops it, the conversation without
// it renders as the template does, and the whole conversation renders with the system text merged
// into the first user message as llama.cpp's Jinja path does.
TEST(ChatTemplate, EveryReferenceTemplateRendersAsJinja) {
  json ref;
  ASSERT_NO_FATAL_FAILURE(ref = load_reference());
  ASSERT_EQ(ref["cases"].size(), 34u);
  const std::vector<ChatMessage> conv = conversation(ref);
  int rendered = 0, merged = 0;
  for (const auto& c : ref["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const auto tmpl = detect_chat_template(c["template"].get<std::string>());
    if (kUnknown.contains(name)) {
      EXPECT_FALSE(tmpl.has_value());
      continue;
    }
    ASSERT_TRUE(tmpl.has_value());
    ASSERT_TRUE(kExpectedFamily.contains(name));
    EXPECT_EQ(chat_family_name(tmpl->family), kExpectedFamily.at(name));
    const ChatRenderOptions o = options_of(ref, c);
    if (!tmpl->merge_system) {
      ASSERT_TRUE(c.contains("jinja2_output") && !c["jinja2_output"].is_null());
      EXPECT_EQ(render_chat(*tmpl, conv, o), c["jinja2_output"].get<std::string>());
      ++rendered;
      continue;
    }
    // The template has no system turn.
    if (c.contains("jinja2_output") && !c["jinja2_output"].is_null()) {
      EXPECT_EQ(render_chat(*tmpl, without_system(conv), o), c["jinja2_output"].get<std::string>());
      ++rendered;
    }
    std::string with_system = render_chat(*tmpl, conv, o);
    EXPECT_NE(with_system.find(conv[0].content + "\n" + conv[1].content), std::string::npos) << with_system;
    const json& llama_cpp = c["llama_cpp_jinja_output"];
    if (llama_cpp.is_string()) {
      // llama.cpp drops the leading BOS text (its tokenizer adds BOS) and Orion's final EOS.
      std::string expected = llama_cpp.get<std::string>();
      if (name == "OrionStarAI/Orion-14B-Chat") expected += o.eos_token;
      EXPECT_EQ(without_leading_bos(with_system, o.bos_token, true), expected);
    }
    ++merged;
  }
  EXPECT_EQ(rendered, 31);  // 33 recognised, less Gemma 7B and old Mistral, which Jinja2 refused
  EXPECT_EQ(merged, 6);     // old Mistral, Gemma 7B, Orion, Phi-3 mini and medium, Gemma 2
}

// Gemma 2's published template raises "System role not supported"; the system text goes in front
// of the first user message instead, and the template's trim applies to the merged message.
TEST(ChatTemplate, GemmaMergesTheSystemMessageIntoTheFirstUserTurn) {
  const auto gemma = chat_template_from_name("gemma");
  ASSERT_TRUE(gemma.ok());
  const std::vector<ChatMessage> conv = {{"system", "Be brief."}, {"user", " Hi "}};
  EXPECT_EQ(render_chat(gemma.value(), conv, {}),
            "<start_of_turn>user\nBe brief.\n Hi<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, NamesSelectFamiliesAndUnknownNamesListTheKnownOnes) {
  for (const char* name : {"chatml", "llama3", "llama2", "phi3", "gemma", "mistral-v7", "zephyr", "plain"}) {
    const auto t = chat_template_from_name(name);
    ASSERT_TRUE(t.ok()) << name;
    EXPECT_EQ(chat_family_name(t.value().family), name);
  }
  const auto bad = chat_template_from_name("llama4");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("unknown chat template 'llama4'; use one of: chatml, phi4, llama2,"), std::string::npos)
      << bad.error();
  // llama.cpp accepts a bare name where a template is expected.
  const auto named = detect_chat_template("zephyr");
  ASSERT_TRUE(named.has_value());
  EXPECT_EQ(named->family, ChatFamily::kZephyr);
  EXPECT_FALSE(detect_chat_template("{{ messages }}").has_value());
  EXPECT_FALSE(detect_chat_template("").has_value());
}

TEST(ChatTemplate, ZephyrAndPlainFormats) {
  const std::vector<ChatMessage> conv = {{"system", "S"}, {"user", "U"}};
  EXPECT_EQ(render_chat(chat_template_from_name("zephyr").value(), conv, {}),
            "<|system|>\nS<|endoftext|>\n<|user|>\nU<|endoftext|>\n<|assistant|>\n");
  EXPECT_EQ(render_chat(chat_template_from_name("plain").value(), conv, {}), "system: S\nuser: U\nassistant:");
  ChatRenderOptions no_opener;
  no_opener.add_generation_prompt = false;
  EXPECT_EQ(render_chat(chat_template_from_name("plain").value(), conv, no_opener), "system: S\nuser: U\n");
}

// Qwen2.5's template supplies a system message when there is none.
TEST(ChatTemplate, QwenDefaultSystemMessage) {
  json ref;
  ASSERT_NO_FATAL_FAILURE(ref = load_reference());
  for (const auto& c : ref["cases"]) {
    if (c["name"] != "Qwen-Qwen2.5-7B-Instruct") continue;
    const auto t = detect_chat_template(c["template"].get<std::string>());
    ASSERT_TRUE(t.has_value());
    const std::vector<ChatMessage> conv = {{"user", "Hi"}};
    EXPECT_EQ(render_chat(*t, conv, {}),
              "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
              "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    return;
  }
  FAIL() << "no Qwen2.5 template in the reference";
}

// Llama 3.1 prints the date its template fixes; Llama 3.2's template asks for the day of rendering.
TEST(ChatTemplate, Llama31DatesAndAlwaysPresentSystemTurn) {
  json ref;
  ASSERT_NO_FATAL_FAILURE(ref = load_reference());
  ChatRenderOptions o;
  o.bos_token = "<|begin_of_text|>";
  o.today = "01 Dec 2026";
  const std::vector<ChatMessage> conv = {{"user", "Hi"}};
  std::map<std::string, std::string> expected_date = {{"meta-llama-Llama-3.1-8B-Instruct", "26 Jul 2024"},
                                                      {"meta-llama-Llama-3.2-3B-Instruct", "01 Dec 2026"}};
  for (const auto& c : ref["cases"]) {
    if (!expected_date.contains(c["name"])) continue;
    const auto t = detect_chat_template(c["template"].get<std::string>());
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(render_chat(*t, conv, o),
              "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
              "Today Date: " + expected_date.at(c["name"]) +
                  "\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    expected_date.erase(c["name"]);
  }
  EXPECT_TRUE(expected_date.empty());
}

// The templates the tiny models carry in tokenizer.chat_template.
TEST(ChatTemplate, TinyModelTemplatesAreRecognised) {
  auto source_of = [](const std::string& model) {
    auto file = gguf::GgufFile::open(test::shared_data("models/arch-tiny/" + model));
    EXPECT_TRUE(file.ok()) << file.error();
    auto source = file.value()->get_string_or("tokenizer.chat_template", "");
    EXPECT_TRUE(source.ok()) << source.error();
    return source.value();
  };
  ChatRenderOptions o;
  o.bos_token = "<s>";
  const std::vector<ChatMessage> conv = {{"system", "S"}, {"user", "U"}};

  const auto phi3 = detect_chat_template(source_of("phi3/tiny-random-phi3.gguf"));
  ASSERT_TRUE(phi3.has_value());
  EXPECT_EQ(phi3->family, ChatFamily::kPhi3);
  EXPECT_EQ(render_chat(*phi3, conv, o), "<s><|user|>\nS\nU<|end|>\n<|assistant|>\n");

  o.bos_token = "<|begin_of_text|>";
  const auto llama3 = detect_chat_template(source_of("llama/tiny-random-llama3.gguf"));
  ASSERT_TRUE(llama3.has_value());
  EXPECT_EQ(llama3->family, ChatFamily::kLlama3);
  EXPECT_EQ(render_chat(*llama3, conv, o),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

// A template that spells BOS must not give the model a second one when the tokenizer adds BOS.
TEST(ChatTemplate, LeadingBosIsDroppedOnlyWhenTheTokenizerAddsIt) {
  EXPECT_EQ(without_leading_bos("<|begin_of_text|>x", "<|begin_of_text|>", true), "x");
  EXPECT_EQ(without_leading_bos("<|begin_of_text|>x", "<|begin_of_text|>", false), "<|begin_of_text|>x");
  EXPECT_EQ(without_leading_bos("x<s>", "<s>", true), "x<s>");
  EXPECT_EQ(without_leading_bos("x", "", true), "x");
}

}  // namespace
}  // namespace ll::text
