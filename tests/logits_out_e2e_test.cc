// `lingualinked run --logits-out`: the raw logits of a generation, as the engine computes them
// and within the tolerance of llama2.c's for stories260K, in the layout of llama.cpp's references.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "exec/segment_executor.h"
#include "model/model.h"
#include "test_data.h"

namespace ll {
namespace {

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");
constexpr int64_t kVocab = 512;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome run_cli(const std::string& args) {
  std::FILE* p = popen(fmt::format("timeout 20 '{}' {} 2>&1", LL_CLI_PATH, args).c_str(), "r");
  Outcome o;
  if (p == nullptr) return o;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) o.output.append(buf, n);
  const int status = pclose(p);
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  return o;
}

std::vector<float> read_floats(const std::string& path) {
  const std::vector<unsigned char> bytes = test::read_bytes(path);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  EXPECT_EQ(bytes.size() % sizeof(float), 0u);
  return out;
}

// The engine's logits for the greedy run from BOS: row k after input token k (BOS, 403, 407),
// with the KV cache types `run` uses by default or those given.
std::vector<float> engine_logits(model::KvTypes kv_types = {}) {
  auto m = model::Model::load(kStories);
  EXPECT_TRUE(m.ok()) << m.error();
  if (!m.ok()) return {};
  exec::SegmentExecutor ex(*m.value(), model::all_units(m.value()->hparams()), {.n_ctx = 64, .n_threads = 1, .kv_types = kv_types});
  EXPECT_TRUE(ex.create_sequence(0).ok());
  const int32_t tokens[3] = {1, 403, 407};
  std::vector<float> hidden(64), logits(3 * kVocab);
  for (int pos = 0; pos < 3; ++pos) {
    EXPECT_TRUE(ex.forward(0, pos, {&tokens[pos], 1}, hidden.data(), 1, logits.data() + pos * kVocab).ok());
  }
  return logits;
}

// llama2.c's logits at positions 0..2 of the same run (derived/stories260K/ABOUT.json).
std::vector<float> llama2c_logits() {
  std::istringstream in(test::read_text(test::shared_data("derived/stories260K/greedy_t0_n200.logits_pos0-2.txt")));
  std::vector<float> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.rfind("pos", 0) != 0) out.push_back(std::stof(line));
  }
  return out;
}

TEST(LogitsOutE2E, WritesEveryRowAsTheEngineComputesIt) {
  const std::string path = test::temp_path("greedy.logits.f32");
  const Outcome o = run_cli(fmt::format("run -m '{}' -p '' --temp 0 -n 3 -t 1 --cache-type-k f32 --cache-type-v f32 --logits-out '{}'",
                                       kStories, path));  // llama2.c's float math
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const std::vector<float> written = read_floats(path);
  const std::vector<float> engine = engine_logits({DType::F32, DType::F32});
  ASSERT_EQ(written.size(), 3u * kVocab) << "3 tokens: the prompt's row, then one after each token but the last";
  EXPECT_EQ(written, engine) << "bit-identical";
  const std::vector<float> reference = llama2c_logits();
  ASSERT_EQ(reference.size(), written.size());
  float max_err = 0;
  for (size_t i = 0; i < written.size(); ++i) max_err = std::max(max_err, std::fabs(written[i] - reference[i]));
  EXPECT_LT(max_err, 1e-4f);
}

TEST(LogitsOutE2E, WritesOnlyTheChosenRowsInOrder) {
  const std::string path = test::temp_path("rows.logits.f32");
  const Outcome o = run_cli(
      fmt::format("run -m '{}' -p '' --temp 0 -n 3 -t 1 --logits-out '{}' --logits-positions 2,0", kStories, path));
  ASSERT_EQ(o.exit_code, 0) << o.output;
  const std::vector<float> written = read_floats(path);
  const std::vector<float> engine = engine_logits();
  ASSERT_EQ(written.size(), 2u * kVocab);
  EXPECT_TRUE(std::equal(written.begin(), written.begin() + kVocab, engine.begin()));
  EXPECT_TRUE(std::equal(written.begin() + kVocab, written.end(), engine.begin() + 2 * kVocab));
}

TEST(LogitsOutE2E, SaysWhatIsWrong) {
  const std::string path = test::temp_path("bad.logits.f32");
  struct Case {
    std::string flags, message;
  };
  const std::vector<Case> cases = {
      {fmt::format("--logits-out '{}' --logits-positions 1,x", path),
       "--logits-positions: 'x' is not a row number (0 = the last prompt position, k = after the k-th generated "
       "token); give e.g. 0,1,2"},
      {fmt::format("--logits-out '{}' --logits-positions -1", path), "--logits-positions: '-1' is not a row number"},
      {fmt::format("--logits-out '{}' --logits-positions 1,1", path), "--logits-positions: row 1 is listed twice"},
      {fmt::format("--logits-out '{}' --logits-positions 3", path),
       "row 3 was asked for, but the generation ended after 3 row(s); generate more tokens (-n) or ask for earlier rows"},
      {"--logits-out /nonexistent/dir/x.f32", "--logits-out /nonexistent/dir/x.f32: cannot create: No such file or directory"},
      {fmt::format("--logits-out '{}' --workers 127.0.0.1:1", path),
       "--logits-out works on one device only: drop --workers, or drop --logits-out"},
  };
  for (const Case& c : cases) {
    const Outcome o = run_cli(fmt::format("run -m '{}' -p '' --temp 0 -n 3 -t 1 {}", kStories, c.flags));
    EXPECT_EQ(o.exit_code, 1) << c.flags << "\n" << o.output;
    EXPECT_NE(o.output.find(c.message), std::string::npos) << c.flags << "\n" << o.output;
  }
}

}  // namespace
}  // namespace ll
