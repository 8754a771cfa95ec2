// `lingualinked run --chat`: the message rendered with a chat template, the family named on stderr,
// and the generation the same as from the rendered text given as a plain prompt.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "test_data.h"

namespace ll {
namespace {

struct Outcome {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string out;     // stdout
  std::string err;     // stderr
};

Outcome run_cli(const std::string& args) {
  const std::string err_path = test::temp_path("chat_run_stderr");
  const std::string command = std::string("'") + LL_CLI_PATH + "' " + args + " 2>'" + err_path + "'";
  std::FILE* p = popen(command.c_str(), "r");
  Outcome o;
  if (p == nullptr) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.out.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (std::FILE* f = std::fopen(err_path.c_str(), "r")) {
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) o.err.append(buf, n);
    std::fclose(f);
  }
  std::remove(err_path.c_str());
  return o;
}

const std::string kStories = "run -m '" + test::shared_data("models/stories260K/stories260K.gguf") +
                             "' --temp 0 -n 12 -t 1 -c 128";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

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
