#include "cluster/step_validation.h"

#include "cluster/activation_wire.h"
#include "cluster/sampler_wire.h"

namespace ll::cluster {

Status validate_step(const wire::Step& step, const std::vector<zmq::message_t>& frames, const StepLimits& limits) {
  const uint64_t seq = step.sequence();
  const int64_t n = step.n_tokens(), pos = step.position();
  const int64_t n_ctx = limits.n_ctx, n_vocab = limits.n_vocab;
  if (n < 1 || n > n_ctx) return Status::Errorf("sequence {}: {} tokens in one step (1..{} allowed)", seq, n, n_ctx);
  if (step.tokens_size() != n) return Status::Errorf("sequence {}: {} token ids for {} tokens", seq, step.tokens_size(), n);
  if (pos + n > n_ctx) {
    return Status::Errorf("sequence {}: positions {}..{} exceed the context of {}", seq, pos, pos + n - 1, n_ctx);
  }
  for (int32_t t : step.tokens()) {
    if (t < 0 || t >= n_vocab) return Status::Errorf("sequence {}: token id {} outside the vocabulary (0..{})", seq, t, n_vocab - 1);
  }
  if (step.has_sampler()) {
    const Status sampler = text::validate(sampler_from_wire(step.sampler()));
    if (!sampler.ok()) return Status::Errorf("sequence {}: {}", seq, sampler.message());
  }
  if (step.samples_before() != 0 && pos != 0) {
    return Status::Errorf("sequence {}: tokens sampled before are only given with a replay from position 0", seq);
  }
  // A replay in chunks: its first chunk creates the sampler, and the tokens sampled before may
  // lie in its later chunks, all within the context.
  if (step.prefill_only() && step.samples_before() >= static_cast<uint64_t>(n_ctx)) {
    return Status::Errorf("sequence {}: {} tokens sampled before a replay in a context of {} (at most {}: the prompt "
                          "has at least one)", seq, step.samples_before(), n_ctx, n_ctx - 1);
  }
  if (!step.prefill_only() && step.samples_before() >= static_cast<uint64_t>(n)) {
    return Status::Errorf("sequence {}: {} tokens sampled before a replay of {} tokens (at most {}: the prompt has at "
                          "least one)", seq, step.samples_before(), n, n - 1);
  }
  if (step.score() && n < 2) {
    return Status::Errorf("sequence {}: a scored step needs at least 2 tokens (each scores the next), got {}", seq, n);
  }
  if (step.score() && step.samples_before() != 0) {
    return Status::Errorf("sequence {}: a scored step samples nothing, so it cannot continue a replay's draws", seq);
  }
  if (step.prefill_only() && (step.score() || step.end_sequence())) {
    return Status::Errorf("sequence {}: a prefill-only chunk of a prompt can be neither scored nor its sequence's end "
                          "(the prompt's last chunk is)", seq);
  }
  const bool is_new = !limits.sequence_length.has_value();
  if (is_new && pos != 0) return Status::Errorf("unknown sequence {} (a sequence starts at position 0)", seq);
  if (!is_new && pos > *limits.sequence_length) {
    return Status::Errorf("sequence {}: position {} is past its end ({})", seq, pos, *limits.sequence_length);
  }
  if (is_new && limits.n_sequences >= limits.max_sequences) {
    return Status::Errorf("too many sequences in session {} ({})", limits.session, limits.max_sequences);
  }
  const uint64_t value_bytes = activation_bytes(step.hidden_type());
  if (value_bytes == 0) return Status::Errorf("sequence {}: unknown hidden-state type {}", seq, static_cast<int>(step.hidden_type()));
  const uint64_t hidden_bytes = static_cast<uint64_t>(n) * limits.n_embd * value_bytes;
  if (limits.takes_tokens) {
    if (step.hidden_bytes() != 0 || !frames.empty()) {
      return Status::Errorf("sequence {}: the first segment takes token ids, not a hidden state", seq);
    }
  } else if (frames.size() != 1 || step.hidden_bytes() != hidden_bytes || frames[0].size() != hidden_bytes) {
    return Status::Errorf("sequence {}: expected one hidden-state frame of {} tokens x {} {} values = {} bytes, "
                          "got {} frame(s), declared {} bytes",
                          seq, n, limits.n_embd, activation_type_name(step.hidden_type()), hidden_bytes, frames.size(),
                          step.hidden_bytes());
  }
  return Status::Ok();
}

}  // namespace ll::cluster
