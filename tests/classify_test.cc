// exec/classify.h and exec::score_sharing_prefix: the prompt computed once gives the same
// log-probabilities as each sequence scored afresh; the template is filled in one pass; labels
// and scorers that cannot give an answer are errors.
#include "exec/classify.h"

#include <gtest/gtest.h>

#include <cmath>

#include "exec/perplexity.h"
#include "exec/score.h"
#include "model/model.h"
#include "reference_kv_types.h"
#include "test_data.h"
#include "text/tokenizer.h"

namespace ll::exec {
namespace {

class ClassifyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
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
  SegmentExecutor executor() const {
    return SegmentExecutor(*model_, model::all_units(model_->hparams()),
                           {.n_ctx = 256, .n_threads = 1, .kv_types = test::kReferenceKvTypes});
  }
  static model::Model* model_;
  static text::Tokenizer* tokenizer_;
};
model::Model* ClassifyTest::model_ = nullptr;
text::Tokenizer* ClassifyTest::tokenizer_ = nullptr;

TEST_F(ClassifyTest, SharingThePrefixScoresAsEachSequenceAfresh) {
  const std::vector<std::vector<int32_t>> sequences = {
      tokenizer_->encode("Once upon a time there was a dog", true),
      tokenizer_->encode("Once upon a time there was a cat who sat", true),
      tokenizer_->encode("Once upon a time", true),
  };
  SegmentExecutor shared = executor(), fresh = executor();
  // Batches of 3 tokens: the prefix and the rests each take several passes.
  auto a = score_sharing_prefix(shared, 3)(sequences);
  auto b = score_on_device(fresh, 512)(sequences);
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  ASSERT_EQ(a->size(), sequences.size());
  for (size_t s = 0; s < sequences.size(); ++s) {
    ASSERT_EQ((*a)[s].size(), sequences[s].size() - 1);
    for (size_t i = 0; i < (*a)[s].size(); ++i) EXPECT_NEAR((*a)[s][i], (*b)[s][i], 1e-4) << s << " " << i;
  }
  EXPECT_TRUE(shared.sequences().empty()) << "the scorer frees its sequence";
  EXPECT_EQ(score_sharing_prefix(shared, 3)({{1, 2}, {1, 512}}).error(), "token 512 is outside the vocabulary of 512");
  EXPECT_EQ(score_sharing_prefix(shared, 3)({{1, 2}, {}}).error(), "a sequence to score has no tokens");
  EXPECT_EQ(score_sharing_prefix(shared, 3)({{1, 2}, std::vector<int32_t>(257, 1)}).error(),
            "a sequence to score has 257 tokens but the context holds 256; use a larger -c");
}

TEST_F(ClassifyTest, ProbabilitiesAreTheSoftmaxOfTheLabelsSummedLogProbabilities) {
  SegmentExecutor ex = executor();
  const std::vector<std::string> labels = {"happy", "sad", "big dog"};
  const std::string prompt = "Lily smiled.\nShe was";
  auto c = classify(*tokenizer_, score_sharing_prefix(ex, 512), prompt, labels);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c->prompt_tokens, tokenizer_->encode(prompt, true).size());
  double sum = 0, z = 0;
  for (const LabelScore& s : c->labels) z += std::exp(s.log_likelihood);
  for (const LabelScore& s : c->labels) {
    EXPECT_NEAR(s.probability, std::exp(s.log_likelihood) / z, 1e-12) << s.label;
    EXPECT_EQ(s.n_tokens, tokenizer_->encode(prompt + " " + s.label, true).size() - c->prompt_tokens) << s.label;
    EXPECT_LT(s.log_likelihood, 0);
    sum += s.probability;
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  EXPECT_GE(c->labels[0].probability, c->labels[1].probability);
  EXPECT_GE(c->labels[1].probability, c->labels[2].probability);
}

TEST(ClassifyPrompt, FillsTextAndLabelsInOnePass) {
  const std::vector<std::string> labels = {"a", "b"};
  auto p = classify_prompt("T: {text} ({labels}) {text}", "x {labels} y", labels);
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p.value(), "T: x {labels} y (a, b) x {labels} y");
  EXPECT_EQ(classify_prompt("no placeholder", "x", labels).error(), "the template has no {text} placeholder");
  auto d = classify_prompt(kDefaultClassifyTemplate, "Great film", labels);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value(), "Classify the text as a, b.\nText: Great film\nAnswer:");
}

TEST(ClassifyLabels, SplitAtEveryComma) {
  EXPECT_EQ(split_labels("a, b c ,d"), (std::vector<std::string>{"a", "b c", "d"}));
  EXPECT_EQ(split_labels("a, "), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(split_labels(","), (std::vector<std::string>{"", ""}));
  EXPECT_EQ(split_labels(""), (std::vector<std::string>{""}));
}

TEST(ClassifyLabels, AreTwoToSixtyFourDistinctNonEmptyLabels) {
  EXPECT_EQ(validate_labels(std::vector<std::string>{}).message(), "give at least two labels to choose from (got 0)");
  EXPECT_EQ(validate_labels(std::vector<std::string>{"x"}).message(), "give at least two labels to choose from (got 1)");
  EXPECT_EQ(validate_labels(std::vector<std::string>{"x", " "}).message(), "a label is empty");
  EXPECT_EQ(validate_labels(std::vector<std::string>{"x", "x"}).message(), "the label 'x' is given twice");
  EXPECT_EQ(validate_labels(std::vector<std::string>{"x", std::string(257, 'y')}).message(),
            "a label of 257 bytes: at most 256");
  std::vector<std::string> many;
  for (int i = 0; i < 64; ++i) many.push_back(std::to_string(i));
  EXPECT_TRUE(validate_labels(many).ok());
  many.push_back("64");
  EXPECT_EQ(validate_labels(many).message(), "65 labels: at most 64 are scored at once");
}

TEST_F(ClassifyTest, AScorerThatFailsOrAnswersWronglyIsAnError) {
  const std::vector<std::string> labels = {"yes", "no"};
  const ScoreSequences failing = [](const auto&) -> Result<std::vector<std::vector<float>>> {
    return Status::Error("worker b left");
  };
  EXPECT_EQ(classify(*tokenizer_, failing, "Q:", labels).error(), "worker b left");
  const ScoreSequences short_answer = [](const auto& seqs) -> Result<std::vector<std::vector<float>>> {
    return std::vector<std::vector<float>>(seqs.size(), std::vector<float>(1));
  };
  EXPECT_EQ(classify(*tokenizer_, short_answer, "Q: is it?", labels).error(),
            "the scorer answered with another number of tokens");
}

}  // namespace
}  // namespace ll::exec
