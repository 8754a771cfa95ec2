#include "exec/classify.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace ll::exec {

std::vector<std::string> split_labels(std::string_view comma_separated) {
  std::vector<std::string> labels;
  for (size_t start = 0;;) {
    const size_t comma = comma_separated.find(',', start);
    std::string_view field = comma_separated.substr(start, comma - start);
    const size_t first = field.find_first_not_of(" \t");
    field = first == std::string_view::npos ? "" : field.substr(first, field.find_last_not_of(" \t") - first + 1);
    labels.emplace_back(field);
    if (comma == std::string_view::npos) return labels;
    start = comma + 1;
  }
}

Status validate_labels(std::span<const std::string> labels) {
  if (labels.size() < 2) {
    return Status::Errorf("give at least two labels to choose from (got {})", labels.size());
  }
  if (labels.size() > kMaxClassifyLabels) {
    return Status::Errorf("{} labels: at most {} are scored at once", labels.size(), kMaxClassifyLabels);
  }
  std::set<std::string_view> seen;
  for (const std::string& label : labels) {
    if (label.find_first_not_of(" \t\r\n") == std::string::npos) return Status::Error("a label is empty");
    if (label.size() > kMaxLabelBytes) {
      return Status::Errorf("a label of {} bytes: at most {}", label.size(), kMaxLabelBytes);
    }
    if (!seen.insert(label).second) return Status::Errorf("the label '{}' is given twice", label);
  }
  return Status::Ok();
}

Result<std::string> classify_prompt(std::string_view tmpl, std::string_view text, std::span<const std::string> labels) {
  constexpr std::string_view kText = "{text}", kLabels = "{labels}";
  if (tmpl.find(kText) == std::string_view::npos) return Status::Error("the template has no {text} placeholder");
  std::string joined;
  for (const std::string& label : labels) joined += (joined.empty() ? "" : ", ") + label;
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl.substr(i, kText.size()) == kText) {
      out += text;
      i += kText.size();
    } else if (tmpl.substr(i, kLabels.size()) == kLabels) {
      out += joined;
      i += kLabels.size();
    } else {
      out += tmpl[i++];
    }
  }
  return out;
}

Result<Classification> classify(const text::Tokenizer& tokenizer, const ScoreSequences& score, std::string_view prompt,
                                std::span<const std::string> labels) {
  LL_RETURN_IF_ERROR(validate_labels(labels));
  const std::vector<int32_t> prompt_tokens = tokenizer.encode(prompt, /*add_special=*/true);
  if (prompt_tokens.empty()) return Status::Error("the prompt has no tokens");
  std::vector<std::vector<int32_t>> sequences;
  for (const std::string& label : labels) {
    std::vector<int32_t> tokens = tokenizer.encode(std::string(prompt) + " " + label, /*add_special=*/true);
    // The label's tokens are what follows the prompt's own; that holds unless the tokenizer
    // merges across the boundary.
    if (tokens.size() <= prompt_tokens.size() ||
        !std::equal(prompt_tokens.begin(), prompt_tokens.end(), tokens.begin())) {
      return Status::Errorf("the label '{}' merges with the end of the prompt into other tokens; end the template "
                            "with other text",
                            label);
    }
    sequences.push_back(std::move(tokens));
  }
  LL_ASSIGN_OR_RETURN(std::vector<std::vector<float>> scored, score(sequences));
  if (scored.size() != sequences.size()) return Status::Error("the scorer answered for another number of sequences");
  Classification c;
  c.prompt_tokens = prompt_tokens.size();
  double max_ll = -INFINITY;
  for (size_t i = 0; i < labels.size(); ++i) {
    const size_t n = sequences[i].size();
    if (scored[i].size() != n - 1) return Status::Error("the scorer answered with another number of tokens");
    LabelScore s{labels[i], 0.0, n - prompt_tokens.size(), 0.0};
    // log_probs[k] is the log-probability of token k + 1.
    for (size_t k = prompt_tokens.size() - 1; k + 1 < n; ++k) s.log_likelihood += scored[i][k];
    max_ll = std::max(max_ll, s.log_likelihood);
    c.labels.push_back(std::move(s));
  }
  double sum = 0;
  for (LabelScore& s : c.labels) sum += s.probability = std::exp(s.log_likelihood - max_ll);
  for (LabelScore& s : c.labels) s.probability /= sum;
  std::stable_sort(c.labels.begin(), c.labels.end(),
                   [](const LabelScore& a, const LabelScore& b) { return a.probability > b.probability; });
  return c;
}

}  // namespace ll::exec
