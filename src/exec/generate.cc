#include "exec/generate.h"

#include <algorithm>
#include <chrono>

namespace ll::exec {

Status validate_n_predict(int64_t n_predict) {
  if (n_predict < -2) {
    return Status::Errorf("n-predict {} is below -2 (-1 = until the end of the text or context, -2 = until the "
                          "context is full)",
                          n_predict);
  }
  return Status::Ok();
}

Result<GenerateResult> generate(SegmentExecutor& executor, const text::Tokenizer& tokenizer,
                                const GenerateOptions& options, const std::function<void(const std::string&)>& on_text) {
  using Clock = std::chrono::steady_clock;
  if (!executor.has_embed() || !executor.has_head()) {
    return Status::Error("generation on one device needs the whole model");
  }
  LL_RETURN_IF_ERROR(validate_n_predict(options.n_predict));
  LL_RETURN_IF_ERROR(text::validate(options.sampling));
  const text::Vocab& vocab = tokenizer.vocab();
  const int64_t n_embd = executor.n_embd();

  GenerateResult r;
  r.prompt_tokens = tokenizer.encode(options.prompt, /*add_special=*/true, options.parse_special);
  if (r.prompt_tokens.empty()) r.prompt_tokens.push_back(vocab.bos);
  const int64_t n_prompt = static_cast<int64_t>(r.prompt_tokens.size());
  if (n_prompt >= executor.n_ctx()) {
    return Status::Errorf("the prompt has {} tokens but the context holds {}; use a larger -c", n_prompt,
                          executor.n_ctx());
  }

  constexpr SeqId kSeq = 0;
  executor.free_sequence(kSeq);
  LL_RETURN_IF_ERROR(executor.create_sequence(kSeq));
  text::Sampler sampler(options.sampling, tokenizer.n_vocab());
  text::Detokenizer detok(tokenizer);
  for (int32_t t : r.prompt_tokens) {
    sampler.accept(t);
    detok.push(t);  // the prompt is not echoed, but it decides the first piece's leading space
  }

  const int64_t batch = std::max<int64_t>(1, options.n_batch);
  std::vector<float> hidden(static_cast<size_t>(std::min(batch, n_prompt) * n_embd));
  std::vector<float> logits(static_cast<size_t>(tokenizer.n_vocab()));

  auto t0 = Clock::now();
  for (int64_t i = 0; i < n_prompt; i += batch) {
    const int64_t n = std::min(batch, n_prompt - i);
    std::span<const int32_t> chunk(r.prompt_tokens.data() + i, static_cast<size_t>(n));
    LL_RETURN_IF_ERROR(executor.forward(kSeq, i, chunk, hidden.data(), n, logits.data()));
  }
  auto t1 = Clock::now();
  r.prompt_seconds = std::chrono::duration<double>(t1 - t0).count();

  int64_t pos = n_prompt;
  for (int64_t step = 0; !predicted_all(step, options.n_predict); ++step) {
    if (options.on_logits) LL_RETURN_IF_ERROR(options.on_logits(step, logits));  // before sampling changes them
    const int32_t token = sampler.sample(logits.data());
    if (tokenizer.ends_generation(token)) break;
    r.tokens.push_back(token);
    sampler.accept(token);
    std::string text = detok.push(token);
    if (!text.empty()) on_text(text);
    if (options.stop != nullptr && options.stop->load()) break;
    if (predicted_all(step + 1, options.n_predict) || pos >= executor.n_ctx()) break;
    LL_RETURN_IF_ERROR(executor.forward(kSeq, pos, {&token, 1}, hidden.data(), 1, logits.data()));
    ++pos;
  }
  std::string rest = detok.flush();
  if (!rest.empty()) on_text(rest);
  r.generate_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  executor.free_sequence(kSeq);
  return r;
}

}  // namespace ll::exec
