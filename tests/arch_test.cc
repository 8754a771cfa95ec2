// The architecture table against real files: every tensor is claimed by one table entry and
// read by the units the table names, with the shape the table computes.
#include "model/arch.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "gguf/gguf_writer.h"
#include "graph/graph.h"
#include "model/model.h"
#include "test_data.h"

namespace ll::model {
namespace {

std::unique_ptr<Model> load_stories() {
  auto m = Model::load(test::shared_data("models/stories260K/stories260K.gguf"));
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? std::move(m).value() : nullptr;
}

// Every tensor of the file is claimed by one table entry, with the shape the table computes,
// and read by the units the table names.
void expect_every_tensor_claimed(const std::string& path) {
  SCOPED_TRACE(path);
  auto loaded = Model::load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const auto& m = loaded.value();
  const HParams& hp = m->hparams();
  std::map<std::string, WeightInstance> claimed;
  for (const WeightInstance& t : weight_instances(m->arch(), hp.n_layer)) {
    EXPECT_TRUE(claimed.emplace(t.name(), t).second) << "two entries name " << t.name();
  }
  for (const auto& tensor : m->file().tensors()) {
    auto it = claimed.find(tensor.name);
    ASSERT_NE(it, claimed.end()) << tensor.name << " is in no table entry";
    EXPECT_EQ(tensor.dims, weight_shape(*it->second.spec, hp)) << tensor.name;
    if (it->second.spec->f32) {
      EXPECT_EQ(tensor.type, DType::F32) << tensor.name;
    }
    int readers = 0;
    for (int64_t i = 0; i < unit_count(hp); ++i) readers += unit_reads(unit_at(hp, i), it->second) ? 1 : 0;
    // A model-wide weight of a per-layer kind (Llama 3's rope_freqs) is read by every layer's unit.
    const bool every_layer = !it->second.spec->per_layer() && (it->second.spec->unit == UnitKind::Attention ||
                                                               it->second.spec->unit == UnitKind::Ffn);
    EXPECT_EQ(readers, every_layer ? hp.n_layer : 1) << tensor.name;
  }
  size_t present = 0;
  for (const auto& [name, t] : claimed) {
    const bool in_file = m->file().find_tensor(name) != nullptr;
    if (t.spec->required) {
      EXPECT_TRUE(in_file) << name << " is required";
    }
    present += in_file ? 1 : 0;
  }
  EXPECT_EQ(present, m->file().tensors().size());
}

TEST(ArchTable, EveryTensorOfStories260KIsClaimedOnceWithItsShape) {
  expect_every_tensor_claimed(test::shared_data("models/stories260K/stories260K.gguf"));
  auto m = load_stories();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->file().find_tensor("rope_freqs.weight"), nullptr);
}

TEST(ArchTable, EveryTensorOfEachArchitecturesModelIsClaimedOnceWithItsShape) {
  for (const char* model : {"llama/tiny-random-llama3.gguf", "qwen2/tiny-random-qwen2.gguf", "phi3/tiny-random-phi3.gguf",
                            "gemma2/tiny-random-gemma2.gguf", "bloom/tiny-random-bloom.gguf"}) {
    expect_every_tensor_claimed(test::shared_data(std::string("models/arch-tiny/") + model));
  }
}


TEST(ArchTable, TheGraphListsEachUnitsWeightsFromTheTable) {
  auto m = load_stories();
  ASSERT_TRUE(m);
  const graph::Graph g = graph::build_graph(*m);
  const HParams& hp = m->hparams();
  ASSERT_EQ(static_cast<int64_t>(g.units.size()), unit_count(hp));
  std::vector<std::string> attn1, ffn4;
  for (const auto& w : g.units[3].weights) attn1.push_back(w.name);  // attn[1]
  for (const auto& w : g.units[10].weights) ffn4.push_back(w.name);  // ffn[4]
  EXPECT_EQ(attn1, (std::vector<std::string>{"blk.1.attn_norm.weight", "blk.1.attn_q.weight", "blk.1.attn_k.weight",
                                             "blk.1.attn_v.weight", "blk.1.attn_output.weight"}));
  EXPECT_EQ(ffn4, (std::vector<std::string>{"blk.4.ffn_norm.weight", "blk.4.ffn_gate.weight", "blk.4.ffn_up.weight",
                                            "blk.4.ffn_down.weight"}));
  EXPECT_EQ(g.units.front().weights.size(), 1u);
  EXPECT_EQ(g.units.front().weights[0].name, "token_embd.weight");
  ASSERT_EQ(g.units.back().weights.size(), 2u);
  EXPECT_EQ(g.units.back().weights[1].name, "output.weight");
  // Matrix products of attn[1]: q, k, v (kv_dim 32) and the output projection, 2 FLOPs each.
  EXPECT_DOUBLE_EQ(g.units[3].flops_fixed_per_token, 2.0 * (64 * 64 + 64 * 32 + 64 * 32 + 64 * 64));
}

TEST(ArchTable, KeysCarryTheArchitecturePrefix) {
  EXPECT_EQ(key_name("llama", Key::HeadCountKv), "llama.attention.head_count_kv");
  EXPECT_EQ(key_name("mistral", Key::RmsEpsilon), "mistral.attention.layer_norm_rms_epsilon");
  EXPECT_EQ(key_name("llama", Key::VocabSize), "llama.vocab_size");
  EXPECT_EQ(supported_archs(), "llama, mistral, qwen2, phi3, gemma2, bloom");
  EXPECT_EQ(find_arch("gpt2"), nullptr);
  ASSERT_NE(find_arch("mistral"), nullptr);
  EXPECT_EQ(find_arch("mistral")->weights.size(), find_arch("llama")->weights.size());
}

TEST(ArchTable, PerLayerEntriesRepeatPerLayerInFileOrder) {
  const ArchSpec& llama = *find_arch("llama");
  const auto all = weight_instances(llama, 2);
  std::vector<std::string> names;
  for (const auto& t : all) names.push_back(t.name());
  ASSERT_EQ(names.size(), 4u + 2 * 9);
  EXPECT_EQ(names.front(), "token_embd.weight");
  EXPECT_EQ(names[1], "blk.0.attn_norm.weight");
  EXPECT_EQ(names[10], "blk.1.attn_norm.weight");
  EXPECT_EQ(names[18], "blk.1.ffn_down.weight");
  EXPECT_EQ((std::vector<std::string>(names.end() - 3, names.end())),
            (std::vector<std::string>{"output_norm.weight", "output.weight", "rope_freqs.weight"}));
  // The Llama 3 frequency factors are model-wide and read by every attention unit.
  const WeightInstance rope = all.back();
  HParams hp;
  hp.n_layer = 2;
  EXPECT_TRUE(unit_reads(unit_at(hp, 1), rope));
  EXPECT_TRUE(unit_reads(unit_at(hp, 3), rope));
  EXPECT_FALSE(unit_reads(unit_at(hp, 2), rope));
  // The output head falls back on the embedding when it is tied.
  EXPECT_EQ(llama.weight(WeightRole::Output).fallback, WeightRole::TokenEmbd);
}

TEST(ArchTable, UnitRangesAreDescribedWithTheirKvBytes) {
  auto m = load_stories();
  ASSERT_TRUE(m);
  const HParams& hp = m->hparams();
  EXPECT_EQ(describe_units(hp, {3, 7}), "units 3..6 (attn[1] to ffn[2]) of 12");
  // kv_dim 32, F32 K and V per attention unit.
  const KvTypes f32{DType::F32, DType::F32};
  EXPECT_EQ(kv_bytes_per_token(hp, {3, 7}, f32), 2u * 2 * 32 * 4);
  EXPECT_EQ(kv_bytes_per_token(hp, all_units(hp), f32), 5u * 2 * 32 * 4);
  EXPECT_EQ(kv_bytes_per_token(hp, {0, 1}, f32), 0u);
}

// Gemma 2 2B's heads (256 wide) are not n_embd / n_head (288): written hyper-parameters must
// say so, and every Gemma 2 key must read back as written.
TEST(ArchTable, HyperParametersOfAGemma2ShapeReadBackAsWritten) {
  HParams hp;
  hp.arch = "gemma2";
  hp.n_embd = 2304;
  hp.n_layer = 2;
  hp.n_head = 8;
  hp.n_head_kv = 4;
  hp.n_ff = 9216;
  hp.head_dim = hp.n_rot = 256;
  hp.n_ctx_train = 8192;
  hp.norm_eps = 1e-6f;
  hp.n_swa = 4096;
  hp.attn_softcap = 50;
  hp.final_softcap = 30;
  gguf::GgufWriter w;
  w.set_string("general.architecture", hp.arch);
  write_hparams(hp, w);
  const std::string path = test::temp_path("gemma2-hparams.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto file = gguf::GgufFile::open(path);
  ASSERT_TRUE(file.ok()) << file.error();
  auto read = read_hparams(*file.value());
  ASSERT_TRUE(read.ok()) << read.error();
  EXPECT_EQ(read->head_dim, 256);
  EXPECT_EQ(read->q_dim(), 2048);
  EXPECT_EQ(read->n_swa, 4096);
  EXPECT_EQ(read->attn_softcap, 50.0f);
  EXPECT_EQ(read->final_softcap, 30.0f);
  EXPECT_EQ(read->norm_eps, 1e-6f);
}

}  // namespace
}  // namespace ll::model
