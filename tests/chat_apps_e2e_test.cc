// `lingualinked chat`, `summarize`, `translate` and `run -f`: a conversation rendered whole each
// turn with the chat template, its greedy replies the same as `run` on the rendered text; the
// instructions the same as `run` on the prompt they are documented to build.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>

#include "cli_run.h"
#include "emulated_devices.h"
#include "test_data.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");
const std::string kGreedy = "-m '" + kStories + "' --temp 0 -n 12 -t 1 -c 256";

using test::CliOutcome;
using test::run_cli;

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = test::temp_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string trimmed(const std::string& s) {
  const size_t first = s.find_first_not_of(" \t\r\n");
  return first == std::string::npos ? "" : s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// The prompt `chat --verbose-prompt` printed for a turn.
std::string turn_prompt(const std::string& err, int turn) {
  const std::string start = fmt::format("turn {} prompt:\n", turn), end = "\n[end of prompt]\n";
  const size_t a = err.find(start);
  if (a == std::string::npos) return "";
  const size_t b = err.find(end, a);
  return b == std::string::npos ? "" : err.substr(a + start.size(), b - a - start.size());
}

// "prompt: N tokens" from run, "turn K: prompt N tokens" from chat.
int prompt_tokens(const std::string& err, const std::string& pattern) {
  std::smatch m;
  return std::regex_search(err, m, std::regex(pattern)) ? std::stoi(m[1].str()) : -1;
}

TEST(ChatE2E, TwoTurnsRenderTheWholeConversationAndReplyAsRunDoes) {
  const std::string input = write_file("turns.txt", "Hello\nTell me more\n");
  const CliOutcome chat = run_cli(fmt::format("chat {} --verbose-prompt < '{}'", kGreedy, input));
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  // stories260K has no chat template: the plain format.
  const std::string first = turn_prompt(chat.err, 1), second = turn_prompt(chat.err, 2);
  EXPECT_EQ(first, "user: Hello\nassistant:");
  const CliOutcome run1 = run_cli(fmt::format("run {} -f '{}'", kGreedy, write_file("p1.txt", first)));
  ASSERT_EQ(run1.exit_code, 0) << run1.err;
  ASSERT_FALSE(trimmed(run1.out).empty());
  EXPECT_EQ(second, "user: Hello\nassistant: " + trimmed(run1.out) + "\nuser: Tell me more\nassistant:");
  const CliOutcome run2 = run_cli(fmt::format("run {} -f '{}'", kGreedy, write_file("p2.txt", second)));
  ASSERT_EQ(run2.exit_code, 0) << run2.err;
  EXPECT_EQ(chat.out, run1.out + run2.out);
  EXPECT_EQ(prompt_tokens(chat.err, "turn 2: prompt ([0-9]+) tokens"), prompt_tokens(run2.err, "prompt: ([0-9]+) tokens"));
  EXPECT_GT(prompt_tokens(chat.err, "turn 2: prompt ([0-9]+) tokens"),
            prompt_tokens(chat.err, "turn 1: prompt ([0-9]+) tokens"));
}

TEST(ChatE2E, TheTemplateRendersSystemUserAndAssistantTurns) {
  const std::string input = write_file("turns.txt", "Hello\n\nTell me more\n");  // the blank line is skipped
  const CliOutcome chat =
      run_cli(fmt::format("chat {} --verbose-prompt --chat-template chatml -sys 'Be kind' < '{}'", kGreedy, input));
  ASSERT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_NE(chat.err.find("chat template: chatml (--chat-template)\n"), std::string::npos) << chat.err;
  const std::string first = turn_prompt(chat.err, 1);
  EXPECT_EQ(first, "<|im_start|>system\nBe kind<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  // The first reply may hold newlines itself: take it from the second prompt.
  const std::string second = turn_prompt(chat.err, 2);
  const std::regex shape(
      "<\\|im_start\\|>system\nBe kind<\\|im_end\\|>\n<\\|im_start\\|>user\nHello<\\|im_end\\|>\n<\\|im_start\\|>"
      "assistant\n([\\s\\S]*)<\\|im_end\\|>\n<\\|im_start\\|>user\nTell me more<\\|im_end\\|>\n<\\|im_start\\|>assistant\n");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(second, m, shape)) << second;
  EXPECT_FALSE(m[1].str().empty());
  EXPECT_EQ(chat.out.find(trimmed(m[1].str())), chat.out.find_first_not_of(" \n")) << chat.out;
  EXPECT_TRUE(turn_prompt(chat.err, 3).empty());
}

TEST(ChatE2E, NoInputEndsTheChat) {
  const CliOutcome chat = run_cli(fmt::format("chat {} < /dev/null", kGreedy));
  EXPECT_EQ(chat.exit_code, 0) << chat.err;
  EXPECT_TRUE(chat.out.empty()) << chat.out;
}

TEST(ChatE2E, ThreeWorkersGiveTheOneDeviceConversation) {
  auto workers = test::start_devices("a:threads=1;b:threads=1;c:threads=1", {test::shared_data("models")});
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers);
  ASSERT_FALSE(flags.empty());
  const std::string input = write_file("cluster_turns.txt", "Hello\nTell me more\nAnd then?\n");
  const std::string args =
      fmt::format("chat {} --cache-type-k f32 --cache-type-v f32 --chat-template chatml -sys 'Be kind'", kGreedy);
  const CliOutcome here = run_cli(fmt::format("{} < '{}'", args, input));
  ASSERT_EQ(here.exit_code, 0) << here.err;
  const CliOutcome there = run_cli(fmt::format("{} {} --cuts attn[1],attn[3] < '{}'", args, flags, input));
  ASSERT_EQ(there.exit_code, 0) << there.err;
  EXPECT_EQ(std::count(here.out.begin(), here.out.end(), '\n'), 3) << here.out;
  EXPECT_EQ(here.out, there.out);
  // The same pipeline answers every turn, its prompt the whole conversation so far.
  EXPECT_GT(prompt_tokens(there.err, "turn 3: prompt ([0-9]+) tokens"),
            prompt_tokens(there.err, "turn 2: prompt ([0-9]+) tokens"));
}

TEST(InstructE2E, SummarizeIsRunOnThePlainInstructionPrompt) {
  const std::string text = "Tom had a red ball. He played with it all day.";
  const std::string file = write_file("story.txt", text);
  const CliOutcome summary = run_cli(fmt::format("summarize {} '{}'", kGreedy, file));
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  const CliOutcome run = run_cli(fmt::format(
      "run {} -f '{}'", kGreedy,
      write_file("prompt.txt", "Summarize the following text.\n\nText: " + text + "\n\nSummary:")));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_FALSE(trimmed(summary.out).empty());
  EXPECT_EQ(summary.out, run.out);
}

TEST(InstructE2E, TranslateUsesTheChatTemplateWhenThereIsOne) {
  const std::string text = "The cat sat on the mat.";
  const CliOutcome translated = run_cli(fmt::format("translate {} --to French --chat-template mistral-v7 '{}'", kGreedy, text));
  ASSERT_EQ(translated.exit_code, 0) << translated.err;
  const CliOutcome run = run_cli(
      fmt::format("run {} --chat --chat-template mistral-v7 -p \"$(printf 'Translate the following text into French."
                  "\\n\\n{}')\"",
                  kGreedy, text));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(translated.out, run.out);
  // From standard input, without a template: the plain prompt.
  const CliOutcome piped = run_cli(fmt::format("translate {} --to French < '{}'", kGreedy, write_file("t.txt", text)));
  ASSERT_EQ(piped.exit_code, 0) << piped.err;
  const CliOutcome plain = run_cli(fmt::format(
      "run {} -f - < '{}'", kGreedy,
      write_file("tp.txt", "Translate the following text into French.\n\nText: " + text + "\n\nFrench:")));
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(piped.out, plain.out);
}

// The same greedy text over three worker processes as on one device, with the template's
// control tokens parsed on the head (summarize, plain prompt; translate, chat template).
TEST(InstructE2E, ThreeWorkersGiveTheOneDeviceText) {
  auto workers = test::start_devices("a:threads=1;b:threads=1;c:threads=1", {test::shared_data("models")});
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers);
  ASSERT_FALSE(flags.empty());
  const std::string cluster = flags + " --cuts attn[1],attn[3]";
  const std::string f32 = " --cache-type-k f32 --cache-type-v f32 ";
  const std::string file = write_file("story.txt", "Tom had a red ball. He played with it all day.");
  for (const std::string& args : {fmt::format("summarize {}{}'{}'", kGreedy, f32, file),
                                  fmt::format("translate {}{}--to French --chat-template chatml -f '{}'", kGreedy, f32,
                                              file)}) {
    const CliOutcome here = run_cli(args);
    ASSERT_EQ(here.exit_code, 0) << here.err;
    const CliOutcome there = run_cli(args + " " + cluster);
    ASSERT_EQ(there.exit_code, 0) << there.err;
    EXPECT_FALSE(trimmed(here.out).empty());
    EXPECT_EQ(here.out, there.out) << args;
  }
}

void expect_error(const std::string& args, const std::string& message) {
  const CliOutcome o = run_cli(args);
  EXPECT_NE(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
}

TEST(InstructE2E, MissingFilesAndEmptyTextsAreRefused) {
  expect_error(fmt::format("summarize {} /nonexistent/story.txt", kGreedy), "/nonexistent/story.txt: cannot open");
  expect_error(fmt::format("summarize {}", kGreedy), "give the file to summarize");
  expect_error(fmt::format("summarize {} '{}'", kGreedy, write_file("empty.txt", "")), "the text is empty");
  expect_error(fmt::format("translate {} 'hello'", kGreedy), "--to is required");
  expect_error(fmt::format("translate {} --to ' ' hello", kGreedy), "--to names no language");
  expect_error(fmt::format("run {} -f /nonexistent/prompt.txt", kGreedy), "/nonexistent/prompt.txt: cannot open");
  expect_error(fmt::format("run {} -p hi -f /dev/null", kGreedy), "excludes");
}

}  // namespace
}  // namespace ll
