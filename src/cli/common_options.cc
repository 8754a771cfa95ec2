#include "cli/common_options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <tuple>

#include "core/thread_pool.h"
#include "exec/generate.h"
#include "kernels/matmul.h"

namespace ll::cli {

void add_model_options(CLI::App& cmd, ModelOptions& o) {
  cmd.add_option("-m,--model", o.path, "model file (GGUF, or a llama2.c .bin checkpoint)")->required();
  cmd.add_option("--tokenizer", o.tokenizer, "tokenizer.bin for a llama2.c checkpoint (default: found beside it)");
  cmd.add_option("-t,--threads", o.threads, "threads (default: all cores)")->check(thread_range());
  cmd.add_option("-c,--ctx-size", o.n_ctx,
                 fmt::format("context length (default: the model's, at most {})", model::kMaxDefaultContext))
      ->check(context_range());
  add_kv_type_options(cmd, o.kv_types);
  add_no_mmap_option(cmd, o);
}

void add_no_mmap_option(CLI::App& cmd, ModelOptions& o) {
  cmd.add_flag("--no-mmap", o.no_mmap,
               "read the weights into memory instead of using them where the file is mapped, repacked where this "
               "CPU's kernels read them faster so: slower to load, faster to generate");
}

void add_kv_type_options(CLI::App& cmd, model::KvTypes& types) {
  const CLI::Validator kv_type(
      [](std::string& value) -> std::string {
        const auto t = model::parse_kv_type(value);
        return t.ok() ? std::string() : t.error();
      },
      "f32|f16|q8_0");
  for (auto [name, field, what] : {std::tuple{"--cache-type-k", &types.k, "keys"}, std::tuple{"--cache-type-v", &types.v, "values"}}) {
    cmd.add_option_function<std::string>(
           name, [field](const std::string& v) { *field = model::parse_kv_type(v).value(); },
           fmt::format("KV cache type of the {}: f32, f16 or q8_0 (default: {})", what, model::kv_type_name(*field)))
        ->check(kv_type);
  }
}

namespace {

// A sampling flag's range is text::validate's: the value is checked alone, over the defaults.
template <typename T>
CLI::Validator sampler_range(T text::SamplerParams::*field) {
  return CLI::Validator(
      [field](std::string& value) -> std::string {
        T v{};
        if (!CLI::detail::lexical_cast(value, v)) return "";  // the option's own conversion reports it
        text::SamplerParams p;
        p.*field = v;
        const Status st = text::validate(p);
        return st.ok() ? "" : st.message();
      },
      "");
}

}  // namespace

void add_sampling_options(CLI::App& cmd, SamplingOptions& o) {
  using P = text::SamplerParams;
  cmd.add_option("--temp", o.temp, "temperature; 0 or less = greedy")->capture_default_str()->check(sampler_range(&P::temp));
  cmd.add_option("--top-k", o.top_k, "top-k sampling; 0 = off")->capture_default_str()->check(sampler_range(&P::top_k));
  cmd.add_option("--top-p", o.top_p, "top-p (nucleus) sampling, 0..1; 1 = off")->capture_default_str()
      ->check(sampler_range(&P::top_p));
  cmd.add_option("--min-p", o.min_p, "min-p sampling, 0..1; 0 = off")->capture_default_str()
      ->check(sampler_range(&P::min_p));
  cmd.add_option("--repeat-penalty", o.repeat_penalty, "repetition penalty, above 0; 1 = off")->capture_default_str()
      ->check(sampler_range(&P::repeat_penalty));
  cmd.add_option("--repeat-last-n", o.repeat_last_n, "tokens the repetition penalty looks back; 0 = off, -1 = all")
      ->capture_default_str()->check(sampler_range(&P::repeat_last_n));
  cmd.add_option("-s,--seed", o.seed, "random seed; -1 = random")->capture_default_str();
}

CLI::Validator thread_range() {
  return CLI::Range(0, kMaxThreads).description(fmt::format("0..{}", kMaxThreads));
}

CLI::Validator context_range() {
  return CLI::Range(int64_t{0}, model::kMaxContextLength)
      .description(fmt::format("0..{}", model::kMaxContextLength));
}

CLI::Validator seconds_range(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(value, v)) return "";  // the option's own conversion reports it
        if (std::isfinite(v) && v >= min && v <= max) return "";
        return fmt::format("{} is not a number of seconds in {}..{}", value, min, max);
      },
      fmt::format("{}..{} s", min, max));
}

void add_n_predict_option(CLI::App& cmd, int64_t& n_predict) {
  cmd.add_option("-n,--n-predict", n_predict,
                 "tokens to generate; -1 = until the end of the text or context, -2 = until the context is full")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            int64_t v = 0;
            if (!CLI::detail::lexical_cast(value, v)) return "";  // the option's own conversion reports it
            const Status st = exec::validate_n_predict(v);
            return st.ok() ? "" : st.message();
          },
          ""));
}

void fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  throw CLI::RuntimeError(1);
}

void print_progress(const std::string& message) {
  std::fprintf(stderr, "%s%s", message.c_str(), message.ends_with('\n') ? "" : "\n");
}

std::unique_ptr<model::Model> load_model_or_exit(const ModelOptions& o) {
  model::LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  lo.units = o.units;
  lo.whole_model = o.whole_model;
  lo.mmap = !o.no_mmap;
  auto m = model::Model::load(o.path, lo);
  if (!m.ok()) fail(m.error());
  return std::move(m).value();
}

ModelOptions head_model_options(ModelOptions o) {
  o.no_mmap = false;
  return o;
}

exec::ExecOptions exec_options(const ModelOptions& o, const model::HParams& hp) {
  exec::ExecOptions e;
  e.n_threads = thread_count_or_default(o.threads);
  e.n_ctx = model::context_or_default(hp, o.n_ctx);
  if (Status st = model::check_kv_types(hp, o.kv_types); !st.ok()) fail(st.message());
  e.kv_types = o.kv_types;
  return e;
}

text::SamplerParams sampler_params(const SamplingOptions& o) {
  text::SamplerParams p;
  p.temp = o.temp;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.repeat_penalty = o.repeat_penalty;
  p.repeat_last_n = o.repeat_last_n;
  p.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  return p;
}

const char* simd_name() { return kernels::simd_target_name(); }

}  // namespace ll::cli
