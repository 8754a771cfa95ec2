// A worker refuses every Step outside what its segment and session allow, saying why.
#include "cluster/step_validation.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "cluster/sampler_wire.h"

namespace ll {
namespace {

using cluster::StepLimits;
using cluster::validate_step;

constexpr int64_t kEmbd = 4;

StepLimits first_segment() {
  return StepLimits{.session = 9, .n_ctx = 16, .n_vocab = 10, .n_embd = kEmbd, .takes_tokens = true,
                    .sequence_length = std::nullopt, .n_sequences = 0, .max_sequences = 2};
}

StepLimits later_segment() {
  StepLimits l = first_segment();
  l.takes_tokens = false;
  return l;
}

wire::Step step(uint32_t position, std::vector<int32_t> tokens) {
  wire::Step s;
  s.set_session(9);
  s.set_sequence(3);
  s.set_position(position);
  s.set_n_tokens(static_cast<uint32_t>(tokens.size()));
  for (int32_t t : tokens) s.add_tokens(t);
  return s;
}

std::vector<zmq::message_t> hidden_frame(size_t bytes) {
  std::vector<zmq::message_t> frames;
  frames.emplace_back(bytes);
  return frames;
}

std::string error_of(const wire::Step& s, const std::vector<zmq::message_t>& frames, const StepLimits& limits) {
  Status st = validate_step(s, frames, limits);
  return st.ok() ? "ok" : st.message();
}

TEST(ValidateStep, AcceptsAPromptAtTheFirstSegment) {
  EXPECT_EQ(error_of(step(0, {1, 2, 3}), {}, first_segment()), "ok");
}

TEST(ValidateStep, AcceptsAHiddenStateOfTheDeclaredSizeLater) {
  wire::Step s = step(0, {1, 2});
  s.set_hidden_bytes(2 * kEmbd * sizeof(float));
  EXPECT_EQ(error_of(s, hidden_frame(2 * kEmbd * sizeof(float)), later_segment()), "ok");
}

TEST(ValidateStep, AcceptsTheNextStepOfAKnownSequence) {
  StepLimits l = first_segment();
  l.sequence_length = 5;
  l.n_sequences = 2;  // full, but this sequence exists already
  EXPECT_EQ(error_of(step(5, {4}), {}, l), "ok");
  EXPECT_EQ(error_of(step(2, {4}), {}, l), "ok");  // going back overwrites the cache from there
}

TEST(ValidateStep, RefusesTokenCounts) {
  EXPECT_EQ(error_of(step(0, {}), {}, first_segment()), "sequence 3: 0 tokens in one step (1..16 allowed)");
  EXPECT_EQ(error_of(step(0, std::vector<int32_t>(17, 1)), {}, first_segment()),
            "sequence 3: 17 tokens in one step (1..16 allowed)");
  wire::Step s = step(0, {1, 2});
  s.set_n_tokens(3);
  EXPECT_EQ(error_of(s, {}, first_segment()), "sequence 3: 2 token ids for 3 tokens");
}

TEST(ValidateStep, RefusesPositionsPastTheContext) {
  StepLimits l = first_segment();
  l.sequence_length = 14;
  EXPECT_EQ(error_of(step(14, {1, 2, 3}), {}, l), "sequence 3: positions 14..16 exceed the context of 16");
}

TEST(ValidateStep, RefusesTokenIdsOutsideTheVocabulary) {
  EXPECT_EQ(error_of(step(0, {1, 10}), {}, first_segment()), "sequence 3: token id 10 outside the vocabulary (0..9)");
  EXPECT_EQ(error_of(step(0, {-1}), {}, first_segment()), "sequence 3: token id -1 outside the vocabulary (0..9)");
}

TEST(ValidateStep, RefusesSequencesItDoesNotKnowOrCannotHold) {
  EXPECT_EQ(error_of(step(4, {1}), {}, first_segment()), "unknown sequence 3 (a sequence starts at position 0)");
  StepLimits known = first_segment();
  known.sequence_length = 3;
  EXPECT_EQ(error_of(step(4, {1}), {}, known), "sequence 3: position 4 is past its end (3)");
  StepLimits full = first_segment();
  full.n_sequences = 2;
  EXPECT_EQ(error_of(step(0, {1}), {}, full), "too many sequences in session 9 (2)");
}

TEST(ValidateStep, AcceptsAReplayThatSaysHowManyOfItsTokensWereSampled) {
  wire::Step s = step(0, {1, 2, 3, 4});
  s.set_samples_before(3);  // a prompt of one token and three generated ones
  EXPECT_EQ(error_of(s, {}, first_segment()), "ok");
}

TEST(ValidateStep, RefusesSampledTokensBeyondTheReplayedOnes) {
  // Each sampled token is one of the replayed ones (after at least one prompt token), and only a
  // replay from the start has any; a larger count would make the last stage spin on draws.
  wire::Step s = step(0, {1, 2, 3});
  s.set_samples_before(3);
  EXPECT_EQ(error_of(s, {}, first_segment()),
            "sequence 3: 3 tokens sampled before a replay of 3 tokens (at most 2: the prompt has at least one)");
  s.set_samples_before(4000000000u);
  EXPECT_EQ(error_of(s, {}, first_segment()),
            "sequence 3: 4000000000 tokens sampled before a replay of 3 tokens (at most 2: the prompt has at least one)");
  StepLimits known = first_segment();
  known.sequence_length = 3;
  wire::Step later = step(3, {1});
  later.set_samples_before(1);
  EXPECT_EQ(error_of(later, {}, known), "sequence 3: tokens sampled before are only given with a replay from position 0");
}

TEST(ValidateStep, AcceptsAChunkedReplayWhoseSampledTokensComeInLaterChunks) {
  wire::Step s = step(0, {1, 2});
  s.set_prefill_only(true);
  s.set_samples_before(5);  // the replay's later chunks hold the generated tokens
  EXPECT_EQ(error_of(s, {}, first_segment()), "ok");
  s.set_samples_before(16);
  EXPECT_EQ(error_of(s, {}, first_segment()),
            "sequence 3: 16 tokens sampled before a replay in a context of 16 (at most 15: the prompt has at least one)");
}

TEST(ValidateStep, RefusesAPrefillOnlyChunkThatIsScoredOrEndsItsSequence) {
  const std::string expected =
      "sequence 3: a prefill-only chunk of a prompt can be neither scored nor its sequence's end (the prompt's last "
      "chunk is)";
  wire::Step scored = step(0, {1, 2});
  scored.set_prefill_only(true);
  scored.set_score(true);
  EXPECT_EQ(error_of(scored, {}, first_segment()), expected);
  wire::Step ending = step(0, {1, 2});
  ending.set_prefill_only(true);
  ending.set_end_sequence(true);
  EXPECT_EQ(error_of(ending, {}, first_segment()), expected);
}

TEST(ValidateStep, AcceptsAScoredStepOfTwoTokensOrMore) {
  wire::Step s = step(0, {1, 2});
  s.set_score(true);
  EXPECT_EQ(error_of(s, {}, first_segment()), "ok");
}

TEST(ValidateStep, RefusesAScoredStepOfOneToken) {
  // Each position scores the token after it, so one token has nothing to score.
  wire::Step s = step(0, {1});
  s.set_score(true);
  EXPECT_EQ(error_of(s, {}, first_segment()),
            "sequence 3: a scored step needs at least 2 tokens (each scores the next), got 1");
}

TEST(ValidateStep, RefusesAScoredReplay) {
  wire::Step s = step(0, {1, 2, 3});
  s.set_score(true);
  s.set_samples_before(1);
  EXPECT_EQ(error_of(s, {}, first_segment()),
            "sequence 3: a scored step samples nothing, so it cannot continue a replay's draws");
}

TEST(ValidateStep, RefusesAHiddenStateAtTheFirstSegment) {
  const std::string expected = "sequence 3: the first segment takes token ids, not a hidden state";
  EXPECT_EQ(error_of(step(0, {1}), hidden_frame(kEmbd * sizeof(float)), first_segment()), expected);
  wire::Step declared = step(0, {1});
  declared.set_hidden_bytes(kEmbd * sizeof(float));
  EXPECT_EQ(error_of(declared, {}, first_segment()), expected);
}

TEST(ValidateStep, RefusesHiddenStatesOfAnotherSizeLater) {
  wire::Step s = step(0, {1, 2});
  s.set_hidden_bytes(32);
  EXPECT_EQ(error_of(s, {}, later_segment()),
            "sequence 3: expected one hidden-state frame of 2 tokens x 4 f32 values = 32 bytes, got 0 frame(s), declared 32 bytes");
  EXPECT_EQ(error_of(s, hidden_frame(16), later_segment()),
            "sequence 3: expected one hidden-state frame of 2 tokens x 4 f32 values = 32 bytes, got 1 frame(s), declared 32 bytes");
  s.set_hidden_bytes(16);
  EXPECT_EQ(error_of(s, hidden_frame(32), later_segment()),
            "sequence 3: expected one hidden-state frame of 2 tokens x 4 f32 values = 32 bytes, got 1 frame(s), declared 16 bytes");
}

TEST(ValidateStep, TakesHalfTheBytesForAHalfPrecisionHiddenState) {
  for (const auto type : {wire::ACTIVATION_F16, wire::ACTIVATION_BF16}) {
    wire::Step s = step(0, {1, 2});
    s.set_hidden_type(type);
    s.set_hidden_bytes(16);
    EXPECT_EQ(error_of(s, hidden_frame(16), later_segment()), "ok");
    s.set_hidden_bytes(32);
    EXPECT_EQ(error_of(s, hidden_frame(32), later_segment()),
              fmt::format("sequence 3: expected one hidden-state frame of 2 tokens x 4 {} values = 16 bytes, got 1 "
                          "frame(s), declared 32 bytes",
                          type == wire::ACTIVATION_F16 ? "f16" : "bf16"));
  }
}

TEST(ValidateStep, RefusesAnUnknownHiddenStateType) {
  wire::Step s = step(0, {1, 2});
  s.set_hidden_type(static_cast<wire::ActivationType>(7));
  s.set_hidden_bytes(16);
  EXPECT_EQ(error_of(s, hidden_frame(16), later_segment()), "sequence 3: unknown hidden-state type 7");
}

TEST(ValidateStep, RefusesSamplerSettingsOutsideTheirRanges) {
  wire::Step s = step(0, {1});
  text::SamplerParams p;
  cluster::sampler_to_wire(p, s.mutable_sampler());
  EXPECT_EQ(error_of(s, {}, first_segment()), "ok");
  s.mutable_sampler()->set_min_p(2);
  EXPECT_EQ(error_of(s, {}, first_segment()), "sequence 3: min-p 2 is outside 0..1 (0 = off)");
  cluster::sampler_to_wire(p, s.mutable_sampler());
  s.mutable_sampler()->set_temp(std::nanf(""));
  EXPECT_EQ(error_of(s, {}, first_segment()), "sequence 3: temperature nan is not a finite number (0 or less = greedy)");
}

}  // namespace
}  // namespace ll
