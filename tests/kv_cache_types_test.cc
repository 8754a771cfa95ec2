// KV caches in f32, f16 and q8_0: their sizes, the streaming attention kernel against its scalar
// twin, logits of f16 / q8_0 caches against f32, and state moved between executors in each type.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "exec/kv_cache.h"
#include "exec/segment_executor.h"
#include "highway_target_scope.h"
#include "hwy/targets.h"
#include "kernels/attention.h"
#include "kernels/quantize.h"
#include "model/kv_types.h"
#include "model/model.h"
#include "model/synth.h"
#include "model/units.h"
#include "test_data.h"

namespace ll {
namespace {

constexpr model::KvTypes kF32{DType::F32, DType::F32}, kF16{DType::F16, DType::F16}, kQ8{DType::Q8_0, DType::Q8_0};

TEST(KvCacheTypes, BytesFollowTheTypes) {
  // 2 layers x 16 positions of 64 values: F32 256 bytes a row, F16 128, Q8_0 2 blocks of 34.
  EXPECT_EQ(exec::KvCache::create(2, 16, 64, kF32).value()->bytes(), 2u * 16 * (256 + 256));
  EXPECT_EQ(exec::KvCache::create(2, 16, 64, kF16).value()->bytes(), 2u * 16 * (128 + 128));
  EXPECT_EQ(exec::KvCache::create(2, 16, 64, kQ8).value()->bytes(), 2u * 16 * (68 + 68));
  EXPECT_EQ(exec::KvCache::create(2, 16, 64, {DType::Q8_0, DType::F32}).value()->bytes(), 2u * 16 * (68 + 256));
  EXPECT_EQ(exec::KvCache::create(1, 4, 40, kQ8).status().message(), "a KV cache of type q8_0 cannot hold rows of 40 values");

  // stories260K: 5 attention layers, kv_dim 4 heads x 8.
  auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(m.ok()) << m.error();
  const model::HParams& hp = (*m)->hparams();
  const model::UnitRange all = model::all_units(hp);
  EXPECT_EQ(model::kv_bytes_per_token(hp, all, kF32), 5u * 2 * 32 * 4);
  EXPECT_EQ(model::kv_bytes_per_token(hp, all, kF16), 5u * 2 * 32 * 2);
  EXPECT_EQ(model::kv_bytes_per_token(hp, all, {DType::F32, DType::F16}), 5u * 32 * (4 + 2));
  // Its heads of 8 values are not whole Q8_0 blocks: refused, as llama.cpp does.
  EXPECT_EQ(model::check_kv_types(hp, kQ8).message(),
            "K cache type q8_0 stores blocks of 32 values, which do not divide the model's head length of 8: use f16 "
            "or f32 for this model");
  EXPECT_EQ(model::check_kv_types(hp, {DType::F16, DType::Q8_0}).message().substr(0, 18), "V cache type q8_0 ");
  EXPECT_TRUE(model::check_kv_types(hp, kF16).ok());
  EXPECT_EQ(model::parse_kv_type("Q8_0").value(), DType::Q8_0);
  EXPECT_EQ(model::parse_kv_type("q4_0").status().message(), "unknown KV cache type 'q4_0': use f32, f16 or q8_0");
}

// Key rows of `positions` positions laid out in tiles as a KvCache keeps F32 and F16 keys, and
// their description: value i of head g at kernels::tiled_offset.
struct TiledKeys {
  std::vector<uint8_t> bytes;
  kernels::KvRows rows;
};
TiledKeys tile_keys(const std::vector<uint8_t>& rows, DType type, int64_t positions, int64_t n_kv, int64_t hd) {
  const int64_t element = row_bytes(type, 1), row = n_kv * hd * element;
  const int64_t tiles = (positions + kernels::kKeyTile - 1) / kernels::kKeyTile;
  TiledKeys t{std::vector<uint8_t>(tiles * kernels::kKeyTile * row),
              {type, nullptr, static_cast<size_t>(kernels::kKeyTile * row), static_cast<size_t>(kernels::kKeyTile * hd * element), true}};
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t g = 0; g < n_kv; ++g) {
      for (int64_t i = 0; i < hd; ++i) {
        std::memcpy(&t.bytes[kernels::tiled_offset(t.rows, p, g, i)], &rows[p * row + (g * hd + i) * element], element);
      }
    }
  }
  t.rows.data = t.bytes.data();
  return t;
}

// The SIMD kernel streams blocks with a running maximum; its twin takes the whole softmax at once.
// Both read the same rounded rows, so they differ only by float summation order: up to about
// 1e-5 of the value over 4200 positions, as the twin sums them one by one. Lengths around
// the block of 64 positions, the chunk of 256 and past 4096, one or two key/value heads per row
// (as in the cache), groups of 1, 3, 4, 5 and 8 heads (the values are added four, two or one
// heads at a time), and head lengths that are not whole vectors; F32 and F16 keys in rows and in
// tiles, with ranges that start and end inside a tile.
void ExpectStreamingAttentionFollowsItsScalarTwin() {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t positions = 4200;
  struct Shape {
    int64_t hd, n_q, n_kv;
  };
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    for (const Shape shape : {Shape{64, 4, 2}, Shape{64, 8, 1}, Shape{96, 3, 2}, Shape{128, 1, 1}, Shape{8, 2, 2},
                              Shape{80, 5, 1}, Shape{128, 5, 2}}) {
      const int64_t hd = shape.hd, n_q = shape.n_q, n_kv = shape.n_kv, heads = n_kv * n_q;
      if (type == DType::Q8_0 && hd % 32 != 0) continue;
      const int64_t head = row_bytes(type, hd), row = n_kv * head;
      std::vector<uint8_t> keys(positions * row), values(positions * row);
      std::vector<float> x(hd);
      for (int64_t p = 0; p < positions * n_kv; ++p) {
        for (float& v : x) v = 3.0f * normal(rng);
        kernels::quantize_row(type, x.data(), &keys[p * head], hd);
        for (float& v : x) v = normal(rng);
        kernels::quantize_row(type, x.data(), &values[p * head], hd);
      }
      const TiledKeys tiled = kernels::tiles_keys(type) ? tile_keys(keys, type, positions, n_kv, hd) : TiledKeys{};
      std::vector<float> q(heads * hd), slopes(heads);
      for (float& v : q) v = normal(rng);
      for (int64_t h = 0; h < heads; ++h) slopes[h] = 0.5f / static_cast<float>(1 << (h % 8));
      for (int variant = 0; variant < 3; ++variant) {
        kernels::AttentionQuery query{
            .q = q.data(), .n_q = n_q, .n_kv = n_kv, .head_dim = hd, .scale = 1.0f / std::sqrt(float(hd))};
        if (variant == 1) query.softcap = 5.0f;
        if (variant == 2) query.alibi = slopes.data();
        for (const auto& [first, len] : std::vector<std::pair<int64_t, int64_t>>{
                 {0, 1}, {0, 63}, {0, 64}, {0, 65}, {0, 200}, {37, 150}, {5, 1}, {3, 257}, {100, 4097}, {0, 4200}}) {
          query.query = first + len - 1;
          const kernels::KvRows v{type, values.data(), static_cast<size_t>(row), static_cast<size_t>(head)};
          std::vector<kernels::KvRows> key_layouts = {{type, keys.data(), static_cast<size_t>(row), static_cast<size_t>(head)}};
          if (kernels::tiles_keys(type)) key_layouts.push_back(tiled.rows);
          for (const kernels::KvRows& k : key_layouts) {
            std::vector<float> fast(heads * hd), slow(heads * hd);
            kernels::attend(query, k, v, first, len, fast.data());
            kernels::attend_reference(query, k, v, first, len, slow.data());
            for (int64_t i = 0; i < heads * hd; ++i) {
              ASSERT_NEAR(fast[i], slow[i], 2e-5f * std::max(1.0f, std::abs(slow[i])))
                  << dtype_name(type) << (k.tiled ? " tiled" : " rows") << " hd " << hd << " n_q " << n_q << " n_kv "
                  << n_kv << " variant " << variant << " first " << first << " len " << len << " i " << i;
            }
          }
        }
      }
    }
  }
}

// On every compiled Highway target this CPU runs: the four-head pass is compiled only for those
// with 32 registers.
TEST(KvCacheTypes, StreamingAttentionFollowsItsScalarTwin) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    test::TargetScope scope(target);
    SCOPED_TRACE(hwy::TargetName(target));
    ExpectStreamingAttentionFollowsItsScalarTwin();
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// attend cut by hand, as the executor cuts a few tokens' attention among threads: each chunk
// (attention_chunk) on its own, for one key/value head at a time, then merged in order. The
// result is attend's to the bit, whatever the range.
TEST(KvCacheTypes, AttentionInChunksAndHeadsEqualsAttendBitForBit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t hd = 64, n_q = 4, n_kv = 2, heads = n_kv * n_q, positions = 5000;
  const int64_t head = row_bytes(DType::F16, hd), row = n_kv * head;
  std::vector<uint8_t> keys(positions * row), values(positions * row);
  std::vector<float> x(hd), q(heads * hd);
  for (int64_t p = 0; p < positions * n_kv; ++p) {
    for (float& v : x) v = 3.0f * normal(rng);
    kernels::quantize_row(DType::F16, x.data(), &keys[p * head], hd);
    for (float& v : x) v = normal(rng);
    kernels::quantize_row(DType::F16, x.data(), &values[p * head], hd);
  }
  for (float& v : q) v = normal(rng);
  const TiledKeys tiled = tile_keys(keys, DType::F16, positions, n_kv, hd);
  const kernels::KvRows v{DType::F16, values.data(), static_cast<size_t>(row), static_cast<size_t>(head)};
  for (const kernels::KvRows& k :
       {kernels::KvRows{DType::F16, keys.data(), static_cast<size_t>(row), static_cast<size_t>(head)}, tiled.rows}) {
    for (const auto& [first, len] :
         std::vector<std::pair<int64_t, int64_t>>{{0, 1}, {0, 256}, {0, 257}, {9, 1000}, {0, 4096}, {0, 5000}}) {
      kernels::AttentionQuery query{.q = q.data(), .n_q = n_q, .n_kv = n_kv, .head_dim = hd, .scale = 0.125f};
      query.query = first + len - 1;
      std::vector<float> whole(heads * hd), merged(heads * hd);
      kernels::attend(query, k, v, first, len, whole.data());
      const int64_t chunk = kernels::attention_chunk(len), n_parts = (len + chunk - 1) / chunk;
      EXPECT_LE(n_parts, 16);
      std::vector<float> state(n_parts * heads * (hd + 2));
      std::vector<kernels::AttentionPart> parts(n_parts);
      for (int64_t c = 0; c < n_parts; ++c) {
        float* base = &state[c * heads * (hd + 2)];
        parts[c] = {base, base + heads, base + 2 * heads};
        for (int64_t g = 0; g < n_kv; ++g) {
          kernels::AttentionQuery one = query;
          one.q = q.data() + g * n_q * hd;
          one.n_kv = 1;
          kernels::KvRows kg = k, vg = v;
          kg.data += g * k.head_stride;
          vg.data += g * v.head_stride;
          kernels::attend_part(one, kg, vg, first + c * chunk, std::min(chunk, len - c * chunk),
                               {parts[c].max + g * n_q, parts[c].sum + g * n_q, parts[c].out + g * n_q * hd});
        }
      }
      kernels::merge_attention_parts(parts.data(), n_parts, heads, hd, merged.data());
      EXPECT_EQ(0, std::memcmp(whole.data(), merged.data(), whole.size() * sizeof(float)))
          << (k.tiled ? "tiled" : "rows") << " first " << first << " len " << len << " in " << n_parts << " chunks";
    }
  }
}

// A synthetic model with heads of 32 values (whole Q8_0 blocks), written once per test process.
const std::string& synth_model() {
  static const std::string path = [] {
    ThreadPool pool(2);
    const std::string p = test::temp_path("kv-types-test-4l.gguf");
    const model::SynthOptions o{.preset = "test-4l", .type = "f32",
                                .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf"),
                                .n_layer_override = 2};
    const Status s = model::write_synthetic_model(o, p, pool);
    EXPECT_TRUE(s.ok()) << s.message();
    return p;
  }();
  return path;
}

// Logits after a prompt of 24 tokens and after each of 4 more, one at a time.
std::vector<float> logits_with(const model::Model& m, model::KvTypes types) {
  exec::SegmentExecutor ex(m, model::all_units(m.hparams()), {.n_ctx = 64, .n_threads = 2, .kv_types = types});
  EXPECT_TRUE(ex.create_sequence(0).ok());
  const int64_t n_vocab = m.hparams().n_vocab;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 28; ++i) tokens.push_back(static_cast<int32_t>(1 + (i * 37) % (n_vocab - 1)));
  std::vector<float> hidden(24 * m.hparams().n_embd), logits(5 * n_vocab);
  EXPECT_TRUE(ex.forward(0, 0, {tokens.data(), 24}, hidden.data(), 24, logits.data()).ok());
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(ex.forward(0, 24 + i, {&tokens[24 + i], 1}, hidden.data(), 1, &logits[(1 + i) * n_vocab]).ok());
  }
  return logits;
}

// max |a - b| over max |a|: the error relative to the logits' scale.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(a[i])));
  }
  return diff / scale;
}

// Rounding K and V to F16 keeps 11 significant bits (relative error up to 2^-11 ~ 5e-4 per
// value); Q8_0 keeps 8 bits of each block's largest value (up to 1/254 ~ 4e-3). Through the
// layers these errors add up to a few times their size in the logits, measured relative to the
// largest logit: f16 1.1e-3 on stories260K (5 layers) and 1.7e-4 on the synthetic model, q8_0
// 3.9e-3. The bounds, f16 3e-3 and q8_0 1.5e-2, leave room of about 3x for other prompts, and
// are the order of llama.cpp's own F16 cache, within 3.7e-3 of its F32 one on llama-2-tiny-random.
TEST(KvCacheTypes, F16AndQ8_0LogitsFollowF32) {
  {
    auto m = model::Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
    ASSERT_TRUE(m.ok()) << m.error();
    const std::vector<float> f32 = logits_with(**m, kF32), f16 = logits_with(**m, kF16);
    EXPECT_LT(relative_error(f32, f16), 3e-3);
    EXPECT_NE(f32, f16);  // the cache really is rounded
  }
  auto m = model::Model::load(synth_model());
  ASSERT_TRUE(m.ok()) << m.error();
  const std::vector<float> f32 = logits_with(**m, kF32);
  EXPECT_LT(relative_error(f32, logits_with(**m, kF16)), 3e-3);
  const std::vector<float> q8 = logits_with(**m, kQ8);
  EXPECT_LT(relative_error(f32, q8), 1.5e-2);
  EXPECT_NE(f32, q8);
}

// State exported in the cache's types and imported (or adopted) by another executor continues
// bit-identically; an executor with other types refuses it by size or by type.
TEST(KvCacheTypes, ExportImportAndAdoptContinueBitIdenticallyInEachType) {
  auto loaded = model::Model::load(synth_model());
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const model::Model& m = **loaded;
  const model::UnitRange all = model::all_units(m.hparams());
  const int64_t n_vocab = m.hparams().n_vocab, n_embd = m.hparams().n_embd;
  for (const model::KvTypes types : {kF32, kF16, kQ8, model::KvTypes{DType::Q8_0, DType::F16}}) {
    const exec::ExecOptions o{.n_ctx = 32, .n_threads = 1, .kv_types = types};
    exec::SegmentExecutor a(m, all, o), imported(m, all, o), adopted(m, all, o);
    ASSERT_TRUE(a.create_sequence(5).ok());
    const std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701, 29889};
    std::vector<float> hidden(prompt.size() * n_embd), logits(n_vocab);
    ASSERT_TRUE(a.forward(5, 0, prompt, hidden.data(), static_cast<int64_t>(prompt.size()), logits.data()).ok());
    for (int64_t u = all.begin; u < all.end; ++u) {
      if (model::unit_at(m.hparams(), u).kind != model::UnitKind::Attention) continue;
      auto kv = a.export_kv(5, u);
      ASSERT_TRUE(kv.ok()) << kv.error();
      EXPECT_EQ(kv->size(), a.kv_state_bytes(6));
      ASSERT_TRUE(imported.import_kv(5, u, 6, kv.value()).ok());
      EXPECT_EQ(imported.export_kv(5, u).value(), kv.value());
    }
    ASSERT_TRUE(adopted.adopt(a).ok());
    const int32_t next = 3681;
    std::vector<float> want(n_vocab), got(n_vocab);
    ASSERT_TRUE(a.forward(5, 6, {&next, 1}, hidden.data(), 1, want.data()).ok());
    ASSERT_TRUE(imported.forward(5, 6, {&next, 1}, hidden.data(), 1, got.data()).ok());
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
    ASSERT_TRUE(adopted.forward(5, 6, {&next, 1}, hidden.data(), 1, got.data()).ok());
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
  }
  exec::SegmentExecutor f16(m, all, {.n_ctx = 32, .n_threads = 1, .kv_types = kF16});
  exec::SegmentExecutor q8(m, all, {.n_ctx = 32, .n_threads = 1, .kv_types = kQ8});
  ASSERT_TRUE(f16.create_sequence(1).ok());
  EXPECT_EQ(q8.adopt(f16).message(), "cannot adopt the sequences of an executor with other KV cache types");
  EXPECT_NE(q8.import_kv(1, 1, 2, std::vector<uint8_t>(f16.kv_state_bytes(2))).message().find(
                "KV of unit 1 for 2 positions in a q8_0/q8_0 cache must be 272 bytes"),
            std::string::npos);
}

}  // namespace
}  // namespace ll
