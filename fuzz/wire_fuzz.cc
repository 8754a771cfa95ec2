// Fuzzes what a worker does with a message from an authenticated peer before it touches any
// state: net::decode of the multipart message (envelope + tensor frames), then for a Step the
// worker's checks (validate_step against fuzzed segment limits) and its sampler settings
// (sampler_from_wire, then the candidates they keep; the draw itself is the sampler target's).
// For ShardData, Ping, LoadSegment, Reshape, SendKv, KvData, SpeedProbe and ProfileRequest the
// worker's own request checks (request_validation.h). A decoded message must encode and decode again with as many frames.
#include <fuzzer/FuzzedDataProvider.h>
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <vector>

#include "cluster/request_validation.h"
#include "cluster/sampler_wire.h"
#include "cluster/step_validation.h"
#include "model/kv_types.h"
#include "net/transport.h"
#include "text/sampler.h"
#include "wire.pb.h"

namespace {

// The worker's own limits are large; small ones here let the fuzzer reach both sides of each.
ll::net::Limits fuzz_limits() {
  ll::net::Limits limits;
  limits.max_envelope_bytes = 4096;
  limits.max_frame_bytes = 4096;
  limits.max_frames = 4;
  return limits;
}

std::vector<zmq::message_t> split_into_parts(FuzzedDataProvider& in) {
  std::vector<zmq::message_t> parts;
  const int n_parts = in.ConsumeIntegralInRange<int>(0, 6);
  for (int i = 0; i < n_parts; ++i) {
    const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 5000));
    parts.emplace_back(bytes.data(), bytes.size());
  }
  return parts;
}

ll::cluster::StepLimits step_limits(FuzzedDataProvider& in, uint64_t session) {
  ll::cluster::StepLimits limits;
  limits.session = session;
  limits.n_ctx = in.ConsumeIntegralInRange<int64_t>(0, 1 << 20);
  limits.n_vocab = in.ConsumeIntegralInRange<int64_t>(1, 64);
  limits.n_embd = in.ConsumeIntegralInRange<int64_t>(0, 64);
  limits.takes_tokens = in.ConsumeBool();
  if (in.ConsumeBool()) limits.sequence_length = in.ConsumeIntegralInRange<int64_t>(0, 1 << 20);
  limits.max_sequences = in.ConsumeIntegralInRange<size_t>(0, 16);
  limits.n_sequences = in.ConsumeIntegralInRange<size_t>(0, 16);
  return limits;
}

void check_step(const ll::wire::Step& step, const std::vector<zmq::message_t>& frames, FuzzedDataProvider& in) {
  const ll::cluster::StepLimits limits = step_limits(in, step.session());
  if (!ll::cluster::validate_step(step, frames, limits).ok()) return;
  // What validation promises the executor.
  if (step.n_tokens() < 1 || step.position() + int64_t{step.n_tokens()} > limits.n_ctx) __builtin_trap();
  for (int32_t t : step.tokens()) {
    if (t < 0 || t >= limits.n_vocab) __builtin_trap();
  }
  const auto n_vocab = static_cast<int32_t>(limits.n_vocab);
  ll::text::Sampler sampler(ll::cluster::sampler_from_wire(step.sampler()), n_vocab);
  for (int32_t t : step.tokens()) sampler.accept(t);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (float& l : logits) l = in.ConsumeFloatingPoint<float>();
  for (const ll::text::TokenProb& c : sampler.candidates(logits.data())) {
    if (c.id < 0 || c.id >= n_vocab) __builtin_trap();
  }
}

// The cache types a segment of this shape could have been loaded with (a q8_0 cache needs whole
// blocks per head).
ll::model::KvTypes fuzz_kv_types(const ll::model::HParams& hp, FuzzedDataProvider& in) {
  std::vector<ll::DType> allowed = {ll::DType::F32, ll::DType::F16};
  if (hp.head_dim % 32 == 0) allowed.push_back(ll::DType::Q8_0);
  auto pick = [&] { return allowed[in.ConsumeIntegralInRange<size_t>(0, allowed.size() - 1)]; };
  const ll::DType k = pick();
  return {.k = k, .v = pick()};
}

// A prepared segment of a small model (fuzzed shape and range within it), as a worker checks
// KvData against it.
void check_kv_data(const ll::wire::KvData& kv, const std::vector<zmq::message_t>& frames, FuzzedDataProvider& in) {
  ll::model::HParams hp;
  hp.n_layer = in.ConsumeIntegralInRange<int64_t>(1, 4);
  hp.n_head_kv = in.ConsumeIntegralInRange<int64_t>(1, 4);
  hp.head_dim = in.ConsumeBool() ? 32 : in.ConsumeIntegralInRange<int64_t>(1, 8);  // 32: room for a q8_0 cache
  hp.n_head = hp.n_head_kv;
  hp.n_embd = hp.n_head * hp.head_dim;
  const int64_t n_units = ll::model::unit_count(hp);
  ll::model::UnitRange range;
  range.begin = in.ConsumeIntegralInRange<int64_t>(0, n_units);
  range.end = in.ConsumeIntegralInRange<int64_t>(range.begin, n_units);
  const ll::model::KvTypes kv_types = fuzz_kv_types(hp, in);
  const ll::cluster::KvDataLimits limits{
      .hp = hp, .range = range, .n_ctx = in.ConsumeIntegralInRange<int64_t>(0, 64), .kv_types = kv_types};
  if (!ll::cluster::validate_kv_data(kv, frames, limits).ok()) return;
  // What validation promises the import: nothing but the closing message without a frame, else a
  // unit of the range, a length within the context, and for an attention unit exactly its K and V
  // rows in the segment's cache types.
  if (kv.last()) {
    if (!frames.empty()) __builtin_trap();
    return;
  }
  if (!range.contains(kv.unit()) || kv.length() > static_cast<uint64_t>(limits.n_ctx)) __builtin_trap();
  const bool attention = ll::model::unit_at(hp, kv.unit()).kind == ll::model::UnitKind::Attention;
  const uint64_t kv_bytes = kv.length() * ll::model::kv_row_bytes(hp, kv_types);
  if (attention ? frames.size() != 1 || frames[0].size() != kv_bytes : !frames.empty()) __builtin_trap();
}

}  // namespace

// Protobuf logs every string field that is not UTF-8 before refusing the message; millions of
// such lines would only slow the fuzzer down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<zmq::message_t> parts = split_into_parts(in);
  auto decoded = ll::net::decode(parts, fuzz_limits());
  if (!decoded.ok()) return 0;
  ll::net::Message& message = decoded.value();
  const ll::wire::Envelope& e = message.envelope();
  switch (e.body_case()) {
    case ll::wire::Envelope::kStep: check_step(e.step(), message.frames, in); break;
    case ll::wire::Envelope::kShardData: {
      // What the check promises the cache: exactly the declared bytes in one frame.
      if (ll::cluster::validate_shard_chunk(e.shard_data(), message.frames).ok() &&
          message.frames[0].size() != e.shard_data().chunk_bytes()) {
        __builtin_trap();
      }
      break;
    }
    case ll::wire::Envelope::kPing: (void)ll::cluster::validate_ping(e.ping(), message.frames); break;
    case ll::wire::Envelope::kLoadSegment: {
      const bool insecure = in.ConsumeBool();
      const ll::wire::LoadSegment& load = e.load_segment();
      if (ll::cluster::validate_load_fields(load, insecure).ok() &&
          (load.unit_begin() >= load.unit_end() || load.n_ctx() == 0 || load.n_ctx() > ll::cluster::kMaxWorkerContext)) {
        __builtin_trap();
      }
      break;
    }
    case ll::wire::Envelope::kReshape: {
      const ll::wire::Reshape& reshape = e.reshape();
      if (ll::cluster::validate_reshape_fields(reshape, in.ConsumeBool()).ok() && reshape.unit_begin() != reshape.unit_end() &&
          (reshape.unit_begin() > reshape.unit_end() || reshape.n_ctx() == 0 ||
           reshape.n_ctx() > ll::cluster::kMaxWorkerContext || reshape.source_case() == ll::wire::Reshape::SOURCE_NOT_SET)) {
        __builtin_trap();
      }
      break;
    }
    case ll::wire::Envelope::kSendKv: {
      const ll::wire::SendKv& send = e.send_kv();
      const int64_t n_units = in.ConsumeIntegralInRange<int64_t>(0, 64);
      if (ll::cluster::validate_send_kv(send, n_units, in.ConsumeBool()).ok() &&
          (send.unit_begin() >= send.unit_end() || send.unit_end() > n_units || send.to_endpoint().empty())) {
        __builtin_trap();
      }
      break;
    }
    case ll::wire::Envelope::kKvData: check_kv_data(e.kv_data(), message.frames, in); break;
    case ll::wire::Envelope::kSpeedProbe: {
      const uint32_t repetitions = e.speed_probe().repetitions();
      if (ll::cluster::validate_speed_probe(e.speed_probe()).ok() && (repetitions < 1 || repetitions > 100)) __builtin_trap();
      break;
    }
    case ll::wire::Envelope::kProfileRequest:
      (void)ll::cluster::validate_profile_request(e.profile_request(), in.ConsumeBool());
      break;
    default: break;
  }

  std::vector<zmq::message_t> frames;
  for (const zmq::message_t& f : message.frames) frames.emplace_back(f.data(), f.size());
  std::vector<zmq::message_t> again = ll::net::encode(e, std::move(frames));
  ll::net::Limits roomy = fuzz_limits();
  roomy.max_envelope_bytes = again[0].size();  // re-serializing may spell fields differently
  auto round_trip = ll::net::decode(again, roomy);
  if (!round_trip.ok() || round_trip.value().frames.size() != message.frames.size()) __builtin_trap();
  return 0;
}
