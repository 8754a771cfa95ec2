#pragma once
// Zero-shot classification by likelihood: the text goes into an instruction template, each label
// is appended to the resulting prompt after a space, and a label's score is the log-likelihood
// the model gives all of its tokens after the prompt. Every prompt + label sequence is scored in
// one call of a ScoreSequences (one batch on a device, one run of several sequences on a
// cluster), so the same code serves the command line and a server on either backend; nothing is
// generated or parsed. The probabilities are the softmax of the labels' log-likelihoods.
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "exec/score.h"
#include "text/tokenizer.h"

namespace ll::exec {

inline constexpr size_t kMaxClassifyLabels = 64;
inline constexpr size_t kMaxLabelBytes = 256;
// {text} is the text to classify, {labels} the labels joined with ", ".
inline constexpr std::string_view kDefaultClassifyTemplate = "Classify the text as {labels}.\nText: {text}\nAnswer:";

// "a, b,c" -> {"a", "b", "c"}: split at every comma, each field without surrounding blanks;
// empty fields stay (validate_labels refuses them).
std::vector<std::string> split_labels(std::string_view comma_separated);

// At least two labels, at most kMaxClassifyLabels, each non-blank, at most kMaxLabelBytes, no
// two the same.
Status validate_labels(std::span<const std::string> labels);

// The template with {text} and {labels} filled in (one pass: placeholders inside the text stay);
// the template must hold {text}.
Result<std::string> classify_prompt(std::string_view tmpl, std::string_view text, std::span<const std::string> labels);

struct LabelScore {
  std::string label;
  double log_likelihood = 0;  // summed over the label's tokens
  size_t n_tokens = 0;
  double probability = 0;
};

struct Classification {
  size_t prompt_tokens = 0;  // with BOS when the vocabulary adds one
  std::vector<LabelScore> labels;  // most probable first
};

// Scores each label after `prompt` (validate_labels applies). A label whose first token would
// merge with the prompt's last one is an error naming it.
Result<Classification> classify(const text::Tokenizer& tokenizer, const ScoreSequences& score, std::string_view prompt,
                                std::span<const std::string> labels);

}  // namespace ll::exec
