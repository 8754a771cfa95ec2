#include "profile/measure.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <thread>

#include "core/system_memory.h"
#include "exec/segment_executor.h"
#include "graph/graph.h"
#include "kernels/matmul.h"
#include "model/llama_weights.h"

namespace ll::profile {
namespace {

// What a timing counts: time on the wall, or CPU time this process used (which a CPU quota
// does not stretch: a throttled process uses none).
enum class Clock { Wall, Cpu };

double now_seconds(Clock clock) {
  if (clock == Clock::Wall) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Median time of one call of `fn`, after a warm-up. On the wall, each repetition makes enough
// calls to last about 20 ms, longer than a CPU quota's period, so throttling is averaged in
// rather than dodged by short samples, and is followed by an idle gap as long as itself: a
// pipeline stage computes one step and then waits for the others, and a device under a CPU
// quota (or one that heats up) runs such bursts faster than it runs nonstop. CPU time is not
// stretched by throttling, so 5 ms back to back are enough there.
template <typename Fn>
Result<double> median_seconds(Clock clock, int repetitions, Fn&& fn) {
  double t0 = now_seconds(clock);
  LL_RETURN_IF_ERROR(fn());
  const double once = std::max(now_seconds(clock) - t0, 1e-9);
  const double sample_seconds = clock == Clock::Wall ? 20e-3 : 5e-3;
  const int calls = static_cast<int>(std::clamp(sample_seconds / once, 1.0, 1000.0));
  std::vector<double> samples;
  for (int r = 0; r < repetitions; ++r) {
    const auto wall0 = std::chrono::steady_clock::now();
    t0 = now_seconds(clock);
    for (int c = 0; c < calls; ++c) LL_RETURN_IF_ERROR(fn());
    samples.push_back((now_seconds(clock) - t0) / calls);
    if (clock == Clock::Wall) {
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - wall0;
      std::this_thread::sleep_for(std::min(took, std::chrono::duration<double>(50e-3)));
    }
  }
  std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
  return samples[samples.size() / 2];
}

// Units whose weights have the same kind, types and shapes cost the same; a few of them are
// timed and the others reuse their numbers, so profiling a 22-layer model takes seconds.
std::string shape_key(const model::Model& m, int64_t index) {
  const model::Unit u = model::unit_at(m.hparams(), index);
  std::string key = std::to_string(static_cast<int>(u.kind));
  for (const model::UnitWeight& w : model::unit_weights(m.arch(), m.weights(), u)) {
    const model::WeightRef& r = *w.ref;
    key += fmt::format("|{}:{}x{}", r.present() ? dtype_name(r.type) : "-", r.rows, r.cols);
  }
  return key;
}

struct UnitTimes {
  double decode = 0;
  double prompt_per_token = 0;
};

// The profile's times of units [begin, end) added up.
UnitTimes sum_times(const DeviceProfile& p, int64_t begin, int64_t end) {
  UnitTimes t;
  for (int64_t u = begin; u < end; ++u) {
    t.decode += p.decode_seconds[u];
    t.prompt_per_token += p.prompt_seconds_per_token[u];
  }
  return t;
}

// A block of layers timed together weighs at least this much, so its weights stream from
// memory as in a real pass instead of sitting in the last-level cache between calls.
constexpr uint64_t kStreamedBytes = 96ull << 20;

// Sequence 0 of `ex` with `ctx` positions of keys and values already cached. Written rather
// than computed by a prefill, which would cost several times the timings themselves: attention
// takes as long over any values, as long as they are real memory (not the untouched pages of
// a fresh cache, which all read one zero page from the processor's cache).
Status fill_cache(exec::SegmentExecutor& ex, const model::Model& m, model::UnitRange range, int64_t ctx) {
  LL_RETURN_IF_ERROR(ex.ensure_sequence(0, ctx));
  // Every 16-bit word 0x20xx: small finite numbers read as f16, as f32 (two words) and as the
  // scales and quants of q8_0 blocks, whatever the cache's types.
  std::vector<uint8_t> kv(ex.kv_state_bytes(ctx));
  for (size_t i = 0; i < kv.size(); ++i) kv[i] = i % 2 == 0 ? static_cast<uint8_t>(i / 2) : 0x20;
  for (int64_t u = range.begin; u < range.end && ctx > 0; ++u) {
    if (model::unit_at(m.hparams(), u).kind == model::UnitKind::Attention) LL_RETURN_IF_ERROR(ex.import_kv(0, u, ctx, kv));
  }
  return Status::Ok();
}

// A contiguous range of units set up to run as a pipeline stage runs it: a decode step with
// `ctx` positions already in the KV cache, or a prompt chunk of `chunk` tokens from position 0
// (which overwrites the first positions: time the decode step first).
class StageRun {
 public:
  static Result<std::unique_ptr<StageRun>> create(const model::Model& m, model::UnitRange range, int threads,
                                                  const MeasureOptions& o) {
    std::unique_ptr<StageRun> s(new StageRun(m, range, threads, o));
    LL_RETURN_IF_ERROR(fill_cache(s->ex_, m, range, o.decode_context));
    return s;
  }

  // Seconds per decode step.
  Result<double> decode(Clock clock, int repetitions) {
    return median_seconds(clock, repetitions, [&] { return run(ctx_, 1); });
  }

  // Seconds per token of a prompt chunk.
  Result<double> prompt_per_token(Clock clock, int repetitions) {
    LL_ASSIGN_OR_RETURN(const double chunk_seconds, median_seconds(clock, repetitions, [&] { return run(0, chunk_); }));
    return chunk_seconds / static_cast<double>(chunk_);
  }

 private:
  StageRun(const model::Model& m, model::UnitRange range, int threads, const MeasureOptions& o)
      : hp_(m.hparams()),
        ex_(m, range, {.n_ctx = std::max(o.decode_context, o.prompt_chunk) + 1, .n_threads = threads, .kv_types = o.kv_types}),
        ctx_(o.decode_context),
        chunk_(o.prompt_chunk) {
    const int64_t rows = std::max(ctx_, chunk_);
    tokens_.resize(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) tokens_[i] = static_cast<int32_t>((i * 7919 + 1) % hp_.n_vocab);
    // A smooth, non-trivial residual stream: its values do not change the kernels' speed.
    input_.resize(static_cast<size_t>(rows * hp_.n_embd));
    for (size_t i = 0; i < input_.size(); ++i) input_[i] = 0.5f * std::sin(0.01f * static_cast<float>(i));
    hidden_.resize(input_.size());
    logits_.resize(static_cast<size_t>(hp_.n_vocab));
  }

  Status run(int64_t pos, int64_t n) {
    std::copy(input_.begin(), input_.begin() + n * hp_.n_embd, hidden_.begin());
    return ex_.forward(0, pos, {tokens_.data(), static_cast<size_t>(n)}, hidden_.data(), n, logits_.data());
  }

  const model::HParams& hp_;
  exec::SegmentExecutor ex_;
  int64_t ctx_, chunk_;
  std::vector<int32_t> tokens_;
  std::vector<float> input_, hidden_, logits_;
};

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf;
}

}  // namespace

Result<DeviceProfile> measure_device_profile(const model::Model& m, int threads, int repetitions,
                                             const MeasureOptions& options) {
  const auto& hp = m.hparams();
  const int64_t n_units = model::unit_count(hp);
  if (m.units().begin != 0 || m.units().end != n_units) {
    return Status::Errorf("profiling needs every unit of the model, but only units {}..{} are loaded", m.units().begin,
                          m.units().end - 1);
  }
  if (threads < 1 || repetitions < 1) return Status::Error("profiling needs at least one thread and one repetition");
  if (options.decode_context < 0 || options.prompt_chunk < 1) {
    return Status::Error("the decode context must be >= 0 and the prompt chunk >= 1");
  }
  LL_RETURN_IF_ERROR(model::check_kv_types(hp, options.kv_types));
  DeviceProfile p;
  p.name = options.name.empty() ? host_name() : options.name;
  p.threads = threads;
  p.usable_memory_bytes = usable_memory_bytes(options.memory_limit_bytes);
  p.simd = kernels::simd_target_name();
  p.weights_mapped = m.weights_mapped();
  p.model = hp.name.empty() ? hp.arch : hp.name;
  p.decode_context = options.decode_context;
  p.prompt_chunk = options.prompt_chunk;
  // One unit of each shape, timed alone: the split between the kinds of unit. In CPU time: a
  // unit's calls last a few quota periods, and on the wall how many throttled periods fall
  // into them varies by several times between identical capped devices, where the CPU time
  // does not. The wall-clock block below puts them on the wall's scale.
  std::map<std::string, UnitTimes> measured;
  std::vector<std::string> keys;
  for (int64_t u = 0; u < n_units; ++u) {
    keys.push_back(shape_key(m, u));
    if (measured.count(keys.back()) == 0) {
      LL_ASSIGN_OR_RETURN(auto unit, StageRun::create(m, {u, u + 1}, threads, options));
      UnitTimes& t = measured[keys.back()];
      LL_ASSIGN_OR_RETURN(t.decode, unit->decode(Clock::Cpu, repetitions));
      LL_ASSIGN_OR_RETURN(t.prompt_per_token, unit->prompt_per_token(Clock::Cpu, repetitions));
    }
  }
  for (int64_t u = 0; u < n_units; ++u) {
    p.decode_seconds.push_back(measured[keys[u]].decode);
    p.prompt_seconds_per_token.push_back(measured[keys[u]].prompt_per_token);
  }
  const int64_t first = n_units > 2 ? 1 : n_units, last_layer_unit = n_units - 1;  // between embed and head
  if (first >= last_layer_unit) return p;
  // A unit timed alone over and over keeps its weights in cache. A block of layers, timed as
  // one stage, streams them: its decode step scales the layers' to what a real pass takes.
  const graph::Graph g = graph::build_graph(m);
  int64_t end = first;
  uint64_t bytes = 0;
  while (end < last_layer_unit && (bytes < kStreamedBytes || (end - first) % 2 != 0)) bytes += g.units[end++].weight_bytes;
  LL_ASSIGN_OR_RETURN(auto block, StageRun::create(m, {first, end}, threads, options));
  LL_ASSIGN_OR_RETURN(const double block_decode, block->decode(Clock::Wall, repetitions));
  const double hot_block = sum_times(p, first, end).decode;
  for (int64_t u = first; u < last_layer_unit && hot_block > 0; ++u) p.decode_seconds[u] *= block_decode / hot_block;
  // The head, timed alone, also stays partly cached (its output matrix is about the size of a
  // last-level cache): time it behind as many layers, as the last stage runs it, and keep what
  // it adds to their scaled times; never less than the head timed alone, which the difference
  // of two noisy timings may undershoot.
  const int64_t tail = std::max(first, last_layer_unit - (end - first));
  LL_ASSIGN_OR_RETURN(auto last_stage, StageRun::create(m, {tail, n_units}, threads, options));
  LL_ASSIGN_OR_RETURN(const double tail_decode, last_stage->decode(Clock::Wall, repetitions));
  double& head_decode = p.decode_seconds[last_layer_unit];
  head_decode = std::max(head_decode, tail_decode - sum_times(p, tail, last_layer_unit).decode);
  // A prompt chunk streams the weights too (once per tile of tokens): the same layers and the
  // head timed together put the prompt times on a real pass's scale. The head's own share of a
  // prompt is small, so one scale serves both.
  LL_ASSIGN_OR_RETURN(const double tail_prompt, last_stage->prompt_per_token(Clock::Wall, repetitions));
  const double hot_tail = sum_times(p, tail, n_units).prompt_per_token;
  for (int64_t u = first; u < n_units && hot_tail > 0; ++u) p.prompt_seconds_per_token[u] *= tail_prompt / hot_tail;
  return p;
}

}  // namespace ll::profile
