#pragma once
// Options shared by the commands that load and run a model (-m, -t, -c, sampling flags).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "exec/segment_executor.h"
#include "model/model.h"
#include "text/sampler.h"

namespace ll::cli {

struct ModelOptions {
  std::string path;
  std::string tokenizer;  // llama2.c checkpoints only
  int threads = 0;        // 0: default_thread_count()
  int64_t n_ctx = 0;      // 0: model::default_context()
  std::optional<model::UnitRange> units;  // bind only these units
  bool whole_model = false;               // refuse a shard: the command runs every unit
  model::KvTypes kv_types;
  bool no_mmap = false;  // read the weights into memory instead of using the mapped file
};

struct SamplingOptions {
  float temp = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  int64_t seed = -1;  // -1: random
};

void add_model_options(CLI::App& cmd, ModelOptions& o);
void add_no_mmap_option(CLI::App& cmd, ModelOptions& o);  // part of add_model_options
// --cache-type-k / --cache-type-v: f32, f16 (the default) or q8_0.
void add_kv_type_options(CLI::App& cmd, model::KvTypes& types);
// The check of every -t/--threads flag: 0 (all cores) to kMaxThreads.
CLI::Validator thread_range();
// The check of every context length (and token count) flag: 0 (the default) to model::kMaxContextLength.
CLI::Validator context_range();
// Seconds in min..max; refuses NaN and infinities, which CLI::Range lets through.
CLI::Validator seconds_range(double min, double max);
// The -n/--n-predict flag of the commands that generate text (exec::validate_n_predict's range).
void add_n_predict_option(CLI::App& cmd, int64_t& n_predict);
void add_sampling_options(CLI::App& cmd, SamplingOptions& o);

// Prints "error: ..." and ends the command with exit status 1.
[[noreturn]] void fail(const std::string& message);
// A library's progress message on stderr, one line each.
void print_progress(const std::string& message);
// The value, or fail() with the error.
template <typename T>
T or_exit(Result<T> r) {
  if (!r.ok()) fail(r.error());
  return std::move(r).value();
}
std::unique_ptr<model::Model> load_model_or_exit(const ModelOptions& o);
// The options a cluster head loads its model with: mapped whatever --no-mmap says, since the
// workers read the weights (--no-mmap goes to the workers a command starts itself).
ModelOptions head_model_options(ModelOptions o);
exec::ExecOptions exec_options(const ModelOptions& o, const model::HParams& hp);
text::SamplerParams sampler_params(const SamplingOptions& o);
const char* simd_name();

}  // namespace ll::cli
