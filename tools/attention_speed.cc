// Speed of one decoding token's attention over a long cache, against the machine's memory read
// bandwidth. Built with -DLL_BUILD_TOOLS=ON:
//   build/attention_speed [f16|f32|q8_0] [context=4096] [layers=22] [kv_heads=4] [group=8] [head_dim=64] [threads=1]
// The defaults are TinyLlama's shapes. The rows lie in a KvCache as in generation: every layer
// has its own, so together they exceed the last-level cache and are streamed from DRAM. With
// threads, each takes a share of the chunks, as a decoding token's attention does.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/memory_bandwidth.h"
#include "core/thread_pool.h"
#include "exec/kv_cache.h"
#include "kernels/attention.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t value_of(const std::string& arg, const char* key, int64_t fallback) {
  const std::string prefix = std::string(key) + "=";
  return arg.rfind(prefix, 0) == 0 ? std::atoll(arg.c_str() + prefix.size()) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ll;
  DType type = DType::F16;
  int64_t context = 4096, layers = 22, n_kv = 4, group = 8, head_dim = 64, threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "f16") type = DType::F16;
    else if (a == "f32") type = DType::F32;
    else if (a == "q8_0") type = DType::Q8_0;
    context = value_of(a, "context", context);
    layers = value_of(a, "layers", layers);
    n_kv = value_of(a, "kv_heads", n_kv);
    group = value_of(a, "group", group);
    head_dim = value_of(a, "head_dim", head_dim);
    threads = value_of(a, "threads", threads);
  }
  if (context < 1 || layers < 1 || n_kv < 1 || group < 1 || head_dim < 1 || threads < 1 || threads > 256) {
    std::fprintf(stderr, "context, layers, kv_heads, group and head_dim must be at least 1, threads 1 to 256\n");
    return 1;
  }
  auto made = exec::KvCache::create(layers, context, n_kv * head_dim, {type, type});
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().message().c_str());
    return 1;
  }
  exec::KvCache& cache = **made;
  {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    std::vector<float> x(n_kv * head_dim);
    for (int64_t l = 0; l < layers; ++l) {
      for (int64_t p = 0; p < context; ++p) {
        for (float& v : x) v = normal(rng);
        cache.store_k(l, p, x.data(), 1);
        for (float& v : x) v = normal(rng);
        cache.store_v(l, p, x.data(), 1);
      }
    }
  }
  std::vector<float> q(n_kv * group * head_dim, 0.1f), out(q.size());
  kernels::AttentionQuery query;
  query.q = q.data();
  query.n_q = group;
  query.n_kv = n_kv;
  query.head_dim = head_dim;
  query.scale = 0.125f;
  query.query = context - 1;
  ThreadPool pool(static_cast<int>(threads));
  const int64_t chunk = kernels::attention_chunk(context), n_parts = (context + chunk - 1) / chunk;
  const int64_t heads = n_kv * group, state = heads * (head_dim + 2);
  std::vector<float> states(n_parts * state);
  std::vector<kernels::AttentionPart> parts(n_parts);
  for (int64_t c = 0; c < n_parts; ++c) parts[c] = {&states[c * state], &states[c * state] + heads, &states[c * state] + 2 * heads};
  const auto one_token = [&] {
    for (int64_t l = 0; l < layers; ++l) {
      const kernels::KvRows keys = cache.keys(l, head_dim), values = cache.values(l, head_dim);
      pool.run([&](int ith, int nth) {
        for (int64_t c = n_parts * ith / nth; c < n_parts * (ith + 1) / nth; ++c) {
          kernels::attend_part(query, keys, values, c * chunk, std::min(chunk, context - c * chunk), parts[c]);
        }
      });
      kernels::merge_attention_parts(parts.data(), n_parts, heads, head_dim, out.data());
    }
  };
  one_token();
  double best = 1e30;
  for (int rep = 0; rep < 10; ++rep) {
    const auto t0 = Clock::now();
    one_token();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double bandwidth = measure_read_bandwidth(pool);
  const double bytes = static_cast<double>(cache.bytes());
  std::printf("%s cache, %lld positions x %lld layers, %lld kv heads x %lld query heads x %lld: %.2f ms per token, "
              "%.1f ns per position and layer, %.1f GB/s = %.0f%% of the read bandwidth (%.1f GB/s, %lld thread%s)\n",
              std::string(dtype_name(type)).c_str(), static_cast<long long>(context), static_cast<long long>(layers), static_cast<long long>(n_kv),
              static_cast<long long>(group), static_cast<long long>(head_dim), best * 1e3, best * 1e9 / (context * layers),
              bytes / best / 1e9, 100.0 * bytes / best / bandwidth, bandwidth / 1e9, static_cast<long long>(threads), threads == 1 ? "" : "s");
}
