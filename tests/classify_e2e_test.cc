// `lingualinked classify`: each label's probability is the softmax of its log-likelihood after the
// prompt, equal to the figure computed here from the model's logits token by token, on one device
// and across three worker processes; labels that share their first tokens are told apart by the
// rest; bad labels, templates and files are refused with a message.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_run.h"
#include "emulated_devices.h"
#include "exec/segment_executor.h"
#include "model/model.h"
#include "reference_kv_types.h"
#include "test_data.h"
#include "text/tokenizer.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");
const std::string kText = "Lily was very happy because she found a big red ball in the park.";
// Labels whose first tokens differ, and labels that share their first token(s) (checked below).
const std::vector<std::string> kDistinct = {"happy", "sad", "angry"};
const std::vector<std::string> kShared = {"ball", "bark", "bath"};

using test::CliOutcome;
using test::run_cli;

// The default template, written out.
std::string default_prompt(const std::vector<std::string>& labels) {
  return "Classify the text as " + fmt::format("{}", fmt::join(labels, ", ")) + ".\nText: " + kText + "\nAnswer:";
}

class ClassifyReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = model::Model::load(kStories);
    ASSERT_TRUE(m.ok()) << m.error();
    model_ = std::move(m).value().release();
    auto tok = text::Tokenizer::create(model_->vocab());
    ASSERT_TRUE(tok.ok()) << tok.error();
    tokenizer_ = new text::Tokenizer(std::move(tok).value());
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete model_;
  }

  // Each label's probability from the model run one token at a time: log softmax of each row in
  // double, summed over the label's tokens, then the softmax over the labels.
  static std::map<std::string, double> reference(const std::string& prompt, const std::vector<std::string>& labels) {
    const std::vector<int32_t> prompt_tokens = tokenizer_->encode(prompt, true);
    std::map<std::string, double> ll;
    for (const std::string& label : labels) {
      const std::vector<int32_t> tokens = tokenizer_->encode(prompt + " " + label, true);
      exec::SegmentExecutor ex(*model_, model::all_units(model_->hparams()),
                               {.n_ctx = 256, .n_threads = 1, .kv_types = test::kReferenceKvTypes});
      EXPECT_TRUE(ex.create_sequence(0).ok());
      std::vector<float> hidden(static_cast<size_t>(ex.n_embd())), logits(static_cast<size_t>(ex.n_vocab()));
      double sum = 0;
      for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        const Status st = ex.forward(0, static_cast<int64_t>(i), {&tokens[i], 1}, hidden.data(), 1, logits.data());
        EXPECT_TRUE(st.ok()) << st.message();
        if (i + 1 < prompt_tokens.size()) continue;
        double max = logits[0], z = 0;
        for (float l : logits) max = std::max(max, static_cast<double>(l));
        for (float l : logits) z += std::exp(l - max);
        sum += logits[static_cast<size_t>(tokens[i + 1])] - max - std::log(z);
      }
      ll[label] = sum;
    }
    double max = -INFINITY, z = 0;
    for (auto& [label, v] : ll) max = std::max(max, v);
    for (auto& [label, v] : ll) z += std::exp(v - max);
    for (auto& [label, v] : ll) v = std::exp(v - max) / z;
    return ll;
  }

  // The label tokens after the prompt's.
  static std::vector<int32_t> label_tokens(const std::string& prompt, const std::string& label) {
    const size_t n = tokenizer_->encode(prompt, true).size();
    const std::vector<int32_t> all = tokenizer_->encode(prompt + " " + label, true);
    return {all.begin() + static_cast<std::ptrdiff_t>(n), all.end()};
  }

  // The command's --json answer against reference().
  static void expect_reference(const CliOutcome& o, const std::vector<std::string>& labels) {
    ASSERT_EQ(o.exit_code, 0) << o.err;
    const nlohmann::json j = nlohmann::json::parse(o.out);
    const std::string prompt = default_prompt(labels);
    EXPECT_EQ(j["prompt_tokens"].get<size_t>(), tokenizer_->encode(prompt, true).size());
    const std::map<std::string, double> want = reference(prompt, labels);
    ASSERT_EQ(j["labels"].size(), labels.size()) << o.out;
    double sum = 0, previous = 1;
    for (const auto& l : j["labels"]) {
      const std::string label = l["label"].get<std::string>();
      const double p = l["probability"].get<double>();
      ASSERT_TRUE(want.count(label)) << label;
      EXPECT_NEAR(p, want.at(label), 1e-5) << label;
      EXPECT_EQ(l["tokens"].get<size_t>(), label_tokens(prompt, label).size()) << label;
      EXPECT_LE(p, previous) << "most probable first";
      previous = p;
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }

  static std::string labels_flag(const std::vector<std::string>& labels) {
    return fmt::format("--labels {}", fmt::join(labels, ","));
  }

  static model::Model* model_;
  static text::Tokenizer* tokenizer_;
};
model::Model* ClassifyReference::model_ = nullptr;
text::Tokenizer* ClassifyReference::tokenizer_ = nullptr;

std::string local_flags() {
  return fmt::format("classify -m '{}' -t 1 -c 256 --cache-type-k f32 --cache-type-v f32 --json", kStories);
}

TEST_F(ClassifyReference, TheLabelSetsAreWhatTheTestsSayTheyAre) {
  const std::string p1 = default_prompt(kDistinct), p2 = default_prompt(kShared);
  for (size_t i = 1; i < kDistinct.size(); ++i) {
    EXPECT_NE(label_tokens(p1, kDistinct[0])[0], label_tokens(p1, kDistinct[i])[0]) << kDistinct[i];
  }
  for (size_t i = 1; i < kShared.size(); ++i) {
    const auto a = label_tokens(p2, kShared[0]), b = label_tokens(p2, kShared[i]);
    ASSERT_GE(a.size(), 2u);
    ASSERT_GE(b.size(), 2u);
    EXPECT_EQ(a[0], b[0]) << kShared[i];
    EXPECT_NE(a, b) << kShared[i];
  }
}

TEST_F(ClassifyReference, OneDeviceEqualsTheLogitsTokenByToken) {
  expect_reference(run_cli(fmt::format("{} {} '{}'", local_flags(), labels_flag(kDistinct), kText)), kDistinct);
  expect_reference(run_cli(fmt::format("{} {} '{}'", local_flags(), labels_flag(kShared), kText)), kShared);
}

TEST_F(ClassifyReference, TextFromAFileOrStandardInput) {
  const std::string path = test::temp_path("text.txt");
  std::ofstream(path) << kText;
  expect_reference(run_cli(fmt::format("{} {} -f '{}'", local_flags(), labels_flag(kDistinct), path)), kDistinct);
  expect_reference(run_cli(fmt::format("{} {} < '{}'", local_flags(), labels_flag(kDistinct), path)), kDistinct);
  expect_reference(run_cli(fmt::format("{} {} -f - < '{}'", local_flags(), labels_flag(kDistinct), path)), kDistinct);
}

TEST_F(ClassifyReference, ThreeWorkersEqualTheLogitsTokenByToken) {
  auto workers = test::start_devices("a:threads=1;b:threads=1;c:threads=1", {test::shared_data("models")});
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers);
  ASSERT_FALSE(flags.empty());
  const std::string cluster = flags + " --cuts attn[1],attn[3]";
  expect_reference(run_cli(fmt::format("{} {} {} '{}'", local_flags(), cluster, labels_flag(kDistinct), kText)),
                   kDistinct);
  expect_reference(run_cli(fmt::format("{} {} {} '{}'", local_flags(), cluster, labels_flag(kShared), kText)),
                   kShared);
}

TEST_F(ClassifyReference, TheTemplateTakesTheTextAndTheLabels) {
  const CliOutcome o = run_cli(fmt::format("{} --labels yes,no --template 'Q: {{text}} ({{labels}})\\nA:' '{}'",
                                        local_flags(), kText));
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out);
  const std::string prompt = "Q: " + kText + " (yes, no)\nA:";
  EXPECT_EQ(j["prompt_tokens"].get<size_t>(), tokenizer_->encode(prompt, true).size());
  const auto want = reference(prompt, {"yes", "no"});
  for (const auto& l : j["labels"]) EXPECT_NEAR(l["probability"].get<double>(), want.at(l["label"].get<std::string>()), 1e-5);
}

TEST(ClassifyE2E, PlainOutputListsLabelsMostProbableFirst) {
  const CliOutcome o = run_cli(fmt::format("classify -m '{}' -t 1 --labels happy,sad '{}'", kStories, kText));
  ASSERT_EQ(o.exit_code, 0) << o.err;
  double a = 0, b = 0;
  char first[64] = {}, second[64] = {};
  ASSERT_EQ(std::sscanf(o.out.c_str(), "%63s %lf\n%63s %lf", first, &a, second, &b), 4) << o.out;
  EXPECT_GE(a, b);
  EXPECT_NEAR(a + b, 1.0, 2e-6);
  EXPECT_NE(std::string(first), std::string(second));
}

void expect_error(const std::string& args, const std::string& message) {
  const CliOutcome o = run_cli(args);
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
  EXPECT_TRUE(o.out.empty()) << o.out;
}

TEST(ClassifyE2E, BadLabelsTemplatesAndFilesAreRefused) {
  const std::string base = fmt::format("classify -m '{}' -t 1", kStories);
  expect_error(base + " --labels , text", "a label is empty");
  expect_error(base + " --labels 'good, ' text", "a label is empty");
  expect_error(base + " --labels good text", "give at least two labels to choose from (got 1)");
  std::vector<std::string> many;
  for (int i = 0; i < 65; ++i) many.push_back(fmt::format("l{}", i));
  expect_error(fmt::format("{} --labels {} text", base, fmt::join(many, ",")), "65 labels: at most 64 are scored at once");
  expect_error(base + " --labels good,good text", "the label 'good' is given twice");
  expect_error(base + " --labels good,bad -f /nonexistent/text.txt", "/nonexistent/text.txt: cannot open");
  expect_error(base + " --labels good,bad -f /tmp", "/tmp is a directory");
  expect_error(base + " --labels good,bad --template 'no placeholder' text", "the template has no {text} placeholder");
  expect_error(base + " --labels good,bad ' ' ", "the text to classify is empty");
  expect_error(base + " --labels good,bad -f /dev/null text", "give the text or -f FILE, not both");
  const CliOutcome missing = run_cli(base + " text");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("--labels is required"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace ll
