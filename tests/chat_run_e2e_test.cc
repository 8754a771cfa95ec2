// `lingualinked run --chat`: the message rendered with a chat template, the family named on stderr,
// and the generation the same as from the rendered text given as a plain prompt.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "cli_run.h"
#include "test_data.h"

namespace ll {
namespace {

using Outcome = test::CliOutcome;
using test::run_cli;

const std::string kStories = "run -m '" + test::shared_data("models/stories260K/stories260K.gguf") +
                             "' --temp 0 -n 12 -t 1 -c 128";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// stories260K with `tokenizer.chat_template` set to `source`; returns the `run` arguments for it.
std::string stories_with_template(const std::string& source, const std::string& name) {
  auto f = gguf::GgufFile::open(test::shared_data("models/stories260K/stories260K.gguf"));
  EXPECT_TRUE(f.ok()) << f.error();
  if (!f.ok()) return "";
  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : f.value()->metadata()) w.copy_kv(kv);
  w.set_string("tokenizer.chat_template", source);
  for (const gguf::TensorInfo& t : f.value()->tensors()) w.add_tensor_ref(t.name, t.type, t.dims, t.data, t.nbytes);
  const std::string path = test::temp_path(name + ".gguf");
  const Status written = w.write(path);
  EXPECT_TRUE(written.ok()) << written.message();
  return "run -m '" + path + "' --temp 0 -n 12 -t 1 -c 128";
}

TEST(ChatRun, ChosenTemplateRendersTheSystemAndUserMessages) {
  const Outcome chat = run_cli(kStories + " --chat --chat-template mistral-v7 -p 'Tell a story' "
                                          "--system-prompt 'You are kind'");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_TRUE(has(chat.err, "chat template: mistral-v7 (--chat-template)\n")) << chat.err;
  const Outcome plain =
      run_cli(kStories + " -p '[SYSTEM_PROMPT] You are kind[/SYSTEM_PROMPT][INST] Tell a story[/INST]'");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_FALSE(chat.out.empty());
  EXPECT_EQ(chat.out, plain.out);
}

// stories260K has no tokenizer.chat_template: the plain format, said on stderr.
TEST(ChatRun, ModelWithoutTemplateUsesThePlainFormat) {
  const Outcome chat = run_cli(kStories + " --chat -p 'Hello'");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_TRUE(has(chat.err, "the model has no chat template; using a plain 'role: content' format; pick one with "
                            "--chat-template NAME (known: chatml, "))
      << chat.err;
  const Outcome plain = run_cli(kStories + " -p \"$(printf 'user: Hello\\nassistant:')\"");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(chat.out, plain.out);
}

// The model's own template (Mistral v0.2's, from the reference set): recognised, the system message
// merged into the user's (the template refuses it), and the BOS it spells dropped because the
// tokenizer adds one.
TEST(ChatRun, ModelTemplateIsRecognisedAndItsBosNotDoubled) {
  const std::string run = stories_with_template(
      "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
      "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
      "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
      "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
      "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
      "mistral_template");
  ASSERT_FALSE(run.empty());
  const Outcome chat = run_cli(run + " --chat -p 'Tell a story' --system-prompt 'You are kind'");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_TRUE(has(chat.err, "chat template: llama2 (the model's)\n")) << chat.err;
  const Outcome plain = run_cli(kStories + " -p \"$(printf '[INST] You are kind\\nTell a story [/INST]')\"");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_FALSE(chat.out.empty());
  EXPECT_EQ(chat.out, plain.out);
}

TEST(ChatRun, UnknownModelTemplateIsReportedAndThePlainFormatUsed) {
  const std::string run = stories_with_template("{{ messages | tojson }}", "unknown_template");
  ASSERT_FALSE(run.empty());
  const Outcome chat = run_cli(run + " --chat -p 'Hello'");
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_TRUE(has(chat.err, "the model's chat template is not one this program knows; using a plain 'role: content' "
                            "format; pick one with --chat-template NAME (known: chatml, "))
      << chat.err;
  const Outcome plain = run_cli(kStories + " -p \"$(printf 'user: Hello\\nassistant:')\"");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(chat.out, plain.out);
}

TEST(ChatRun, BadChatFlagsAreRefused) {
  const Outcome unknown = run_cli(kStories + " --chat --chat-template llama9 -p hi");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(has(unknown.err, "error: unknown chat template 'llama9'; use one of: chatml, ")) << unknown.err;

  const Outcome no_chat = run_cli(kStories + " --system-prompt 'x' -p hi");
  EXPECT_NE(no_chat.exit_code, 0);
  EXPECT_TRUE(has(no_chat.err, "--system-prompt requires --chat")) << no_chat.err;

  const Outcome cluster = run_cli(kStories + " --chat -p hi --workers 127.0.0.1:1");
  EXPECT_EQ(cluster.exit_code, 1);
  EXPECT_TRUE(has(cluster.err, "error: --chat runs on this device only; leave out --workers")) << cluster.err;
}

}  // namespace
}  // namespace ll
