// The cluster end to end: `lingualinked worker` processes on loopback TCP, driven by a head in
// this process (or by `lingualinked run --workers`), against the single-device references.
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "cluster/head.h"
#include "emulate/local_cluster.h"
#include "cluster/pipeline.h"
#include "cluster/sampler_wire.h"
#include "core/thread_pool.h"
#include "emulated_devices.h"
#include "exec/generate.h"
#include "model/model.h"
#include "model/synth.h"
#include "net/transport.h"
#include "profile/device_profile.h"
#include "test_data.h"
#include "wire.pb.h"

namespace ll {
namespace {

using Clock = std::chrono::steady_clock;
using emulate::LocalCluster;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

std::unique_ptr<LocalCluster> start_workers(size_t n, bool insecure = false, bool no_mmap = false) {
  emulate::LocalClusterOptions o;
  o.no_mmap = no_mmap;
  o.cli_path = LL_CLI_PATH;
  for (size_t i = 0; i < n; ++i) o.devices.push_back({fmt::format("w{}", i + 1)});
  o.insecure = insecure;
  // The shared models and the synthetic ones the tests write.
  o.model_dirs = {test::shared_data("models"), std::filesystem::path(test::temp_path("x")).parent_path().string()};
  auto c = LocalCluster::start(o);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? std::move(c).value() : nullptr;
}

// A head's options reaching every one of the local workers.
cluster::HeadOptions head_of(const LocalCluster& workers) {
  cluster::HeadOptions head;
  head.workers = workers.addresses();
  head.keys = workers.head_keys();
  return head;
}

std::unique_ptr<model::Model> load(const std::string& path) {
  auto m = model::Model::load(path);
  EXPECT_TRUE(m.ok()) << m.error();
  return m.ok() ? std::move(m).value() : nullptr;
}

cluster::Pipeline start(LocalCluster& workers, const model::Model& m, const std::string& path,
                        const std::string& cuts = "", bool insecure = false) {
  cluster::PipelineOptions p;
  p.head = head_of(workers);
  p.head.insecure = insecure;
  p.cuts = cuts;
  p.planning.planner = plan::Planner::Even;  // every worker holds a segment, whatever the profiles say
  p.load.n_ctx = 512;
  auto r = cluster::start_pipeline(path, m, std::move(p));
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? std::move(r).value() : cluster::Pipeline{};
}

cluster::Request greedy(std::string prompt, int64_t n) {
  cluster::Request r;
  r.prompt = std::move(prompt);
  r.n_predict = n;
  r.sampling.temp = 0;
  return r;
}

std::string run_command(const std::string& command) {
  std::FILE* p = popen(command.c_str(), "r");
  EXPECT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << command;
  return out;
}

bool alive(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == 0; }

TEST(ClusterE2E, Stories260KGreedyOverThreeWorkersViaRunCommandEqualsReference) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers);
  ASSERT_FALSE(flags.empty());
  const std::string out =
      run_command(fmt::format("'{}' run -m '{}' --temp 0 -n 200 {} 2>/dev/null", LL_CLI_PATH, kStories, flags));
  EXPECT_EQ(out, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")) + "\n");
}

TEST(ClusterE2E, WorkersReadingTheirWeightsIntoMemoryGiveTheReferenceText) {
  auto workers = start_workers(3, /*insecure=*/false, /*no_mmap=*/true);
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers);
  ASSERT_FALSE(flags.empty());
  const std::string out = run_command(
      fmt::format("'{}' run -m '{}' --no-mmap --temp 0 -n 200 {} 2>/dev/null", LL_CLI_PATH, kStories, flags));
  EXPECT_EQ(out, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")) + "\n");
}

// A worker times the weights as it will hold them: its profile of a copy in memory (packed where
// the kernels use it) is what its segments will run at, not the file's mapping.
TEST(ClusterE2E, WorkersReadingTheirWeightsIntoMemoryAreProfiledThatWay) {
  for (const bool no_mmap : {false, true}) {
    auto workers = start_workers(1, /*insecure=*/false, no_mmap);
    ASSERT_TRUE(workers);
    cluster::PlanningOptions planning;
    planning.profile.repetitions = 1;
    auto profile = cluster::profile_workers(kStories, head_of(*workers), planning, 512, {});
    ASSERT_TRUE(profile.ok()) << profile.error();
    ASSERT_EQ(profile->devices.size(), 1u);
    EXPECT_EQ(profile->devices[0].weights_mapped, !no_mmap);
  }
}

TEST(ClusterE2E, HeadHoldingTheFirstSegmentItselfGivesTheReferenceText) {
  auto workers = start_workers(2);
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers, "head-own.key");
  ASSERT_FALSE(flags.empty());
  // Even placement, so that the head and both workers hold layers; stderr shows the report.
  const std::string out = run_command(
      fmt::format("'{}' run -m '{}' --temp 0 -n 200 {} --head-listen tcp://127.0.0.1:0 --planner even 2>'{}'",
                  LL_CLI_PATH, kStories, flags, test::temp_path("head-own.log")));
  EXPECT_EQ(out, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")) + "\n");
  const std::string log = test::read_text(test::temp_path("head-own.log"));
  EXPECT_NE(log.find("head "), std::string::npos) << log;  // the head's own device is in the report
  EXPECT_NE(log.find("embed .."), std::string::npos) << log;
}

// `profile --no-mmap` (and `plan`'s own profile) time this machine with its weights in memory.
TEST(ClusterE2E, ProfileWithNoMmapTimesWeightsInMemory) {
  for (const bool no_mmap : {false, true}) {
    const std::string json = test::temp_path(no_mmap ? "profile-no-mmap.json" : "profile-mapped.json");
    run_command(fmt::format("'{}' profile -m '{}' -t 1 -r 1 {} --json '{}' 2>/dev/null", LL_CLI_PATH, kStories,
                            no_mmap ? "--no-mmap" : "", json));
    auto read = profile::read_json_file(json);
    ASSERT_TRUE(read.ok()) << read.error();
    auto device = profile::device_profile_from_json(read.value());
    ASSERT_TRUE(device.ok()) << device.error();
    EXPECT_EQ(device->weights_mapped, !no_mmap);
  }
}

// `run --no-mmap` holds the head's own segment in memory too, and profiles it that way.
TEST(ClusterE2E, HeadHoldingASegmentReadsItIntoMemoryWithNoMmap) {
  auto workers = start_workers(1);
  ASSERT_TRUE(workers);
  const std::string flags = test::cluster_flags(*workers, "head-no-mmap.key");
  ASSERT_FALSE(flags.empty());
  const std::string profiles = test::temp_path("head-no-mmap-profiles.json");
  const std::string out = run_command(fmt::format(
      "'{}' run -m '{}' --no-mmap --temp 0 -n 200 {} --head-listen tcp://127.0.0.1:0 --planner even --save-profiles '{}' "
      "2>/dev/null",
      LL_CLI_PATH, kStories, flags, profiles));
  EXPECT_EQ(out, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")) + "\n");
  auto json = profile::read_json_file(profiles);
  ASSERT_TRUE(json.ok()) << json.error();
  auto cluster = profile::cluster_profile_from_json(json.value());
  ASSERT_TRUE(cluster.ok()) << cluster.error();
  ASSERT_EQ(cluster->devices.size(), 2u);
  EXPECT_EQ(cluster->devices[0].name, "head");
  EXPECT_FALSE(cluster->devices[0].weights_mapped);  // the head's, as `run --no-mmap` asks
  EXPECT_TRUE(cluster->devices[1].weights_mapped);   // the worker's, started without --no-mmap
}

TEST(ClusterE2E, WorkersProfiledOverTheNetworkThenMilpPlanGivesTheReferenceText) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto m = load(kStories);
  ASSERT_TRUE(m);
  const cluster::HeadOptions head = head_of(*workers);
  cluster::PlanningOptions planning;
  planning.profile.repetitions = 2;
  auto profile = cluster::profile_workers(kStories, head, planning, 512, {});
  ASSERT_TRUE(profile.ok()) << profile.error();
  const graph::Graph g = graph::build_graph(*m);
  ASSERT_EQ(profile->devices.size(), 3u);
  for (const auto& d : profile->devices) {
    EXPECT_EQ(d.decode_seconds.size(), g.units.size()) << d.name;
    EXPECT_GT(d.usable_memory_bytes, 0u) << d.name;
    for (double t : d.decode_seconds) EXPECT_GT(t, 0) << d.name;
  }
  // Every ordered pair of workers, measured by the sending worker over a CURVE link.
  ASSERT_EQ(profile->links.size(), 6u);
  for (const auto& l : profile->links) {
    EXPECT_NE(l.from, l.to);
    EXPECT_GT(l.rtt_seconds, 0) << l.from << " -> " << l.to;
    EXPECT_LT(l.rtt_seconds, 0.05) << l.from << " -> " << l.to;  // loopback
    EXPECT_GT(l.bandwidth_bytes_per_s, 10e6) << l.from << " -> " << l.to;
  }
  // Asked again, each worker answers from its cache with the same numbers.
  auto again = cluster::profile_workers(kStories, head, planning, 512, {});
  ASSERT_TRUE(again.ok()) << again.error();
  EXPECT_EQ(again->devices[1].decode_seconds, profile->devices[1].decode_seconds);
  // Another KV cache type is timed anew, not answered from that cache.
  auto f32_cache = cluster::profile_workers(kStories, head, planning, 512, {DType::F32, DType::F32});
  ASSERT_TRUE(f32_cache.ok()) << f32_cache.error();
  EXPECT_NE(f32_cache->devices[1].decode_seconds, profile->devices[1].decode_seconds);
  // A type this model's heads cannot hold (q8_0 blocks of 32 values, heads of 8) is refused.
  auto q8_cache = cluster::profile_workers(kStories, head, planning, 512, {DType::Q8_0, DType::F16});
  ASSERT_FALSE(q8_cache.ok());
  EXPECT_NE(q8_cache.error().find("K cache type q8_0 stores blocks of 32 values, which do not divide the model's head "
                                  "length of 8"), std::string::npos) << q8_cache.error();

  auto plan = cluster::plan_pipeline(*m, profile.value(), planning, 512);
  ASSERT_TRUE(plan.ok()) << plan.error();
  EXPECT_EQ(plan->planner, "milp");
  cluster::SegmentLoadOptions load_options;
  load_options.n_ctx = 512;
  auto p = cluster::start_planned_pipeline(kStories, *m, head, plan.value(), load_options);
  ASSERT_TRUE(p.ok()) << p.error();
  // Every worker is connected; those the plan leaves out hold nothing.
  ASSERT_EQ(p->head->workers().size(), 3u);
  for (size_t d = 0; d < 3; ++d) EXPECT_EQ(p->head->segments()[d].empty(), plan->devices[d].units.empty());
  auto gens = p->head->generate({greedy("", 200)}, [](size_t, const std::string&) {});
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].text, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
}

TEST(ClusterE2E, ShardsStreamedToWorkerCachesGiveTheSameText) {
  const std::string cache = test::temp_path("xdg-cache");
  setenv("XDG_CACHE_HOME", cache.c_str(), 1);  // the workers inherit it
  auto workers = start_workers(2);
  unsetenv("XDG_CACHE_HOME");
  ASSERT_TRUE(workers);
  auto m = load(kStories);
  ASSERT_TRUE(m);
  std::map<std::string, std::filesystem::file_time_type> written;
  for (int round = 0; round < 2; ++round) {  // the second round finds the shards cached
    cluster::PipelineOptions p;
    p.head = head_of(*workers);
    p.planning.planner = plan::Planner::Even;
    p.load.n_ctx = 512;
    p.load.send_shards = true;
    p.load.shard_dir = test::temp_path("shards-out");
    auto pipeline = cluster::start_pipeline(kStories, *m, std::move(p));
    ASSERT_TRUE(pipeline.ok()) << pipeline.error();
    auto gens = pipeline->head->generate({greedy("", 200)}, [](size_t, const std::string&) {});
    ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
    EXPECT_EQ(gens[0].text, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
    // One shard per worker (they share this cache directory), written once.
    std::map<std::string, std::filesystem::file_time_type> now;
    for (const auto& e : std::filesystem::directory_iterator(cache + "/lingualinked")) {
      now[e.path().filename().string()] = e.last_write_time();
    }
    EXPECT_EQ(now.size(), 2u);
    if (round == 1) {
      EXPECT_EQ(now, written);
    }
    written = now;
  }
}

std::string synthetic_model() {
  const std::string path = test::temp_path("test-4l-q4_0.gguf");
  if (!std::filesystem::exists(path)) {
    model::SynthOptions o{.preset = "test-4l", .type = "q4_0",
                          .vocab_path = test::shared_data("vocab/llamacpp/ggml-vocab-llama-spm.gguf")};
    ThreadPool pool(2);
    Status s = model::write_synthetic_model(o, path, pool);
    EXPECT_TRUE(s.ok()) << s.message();
  }
  return path;
}

// "| a | b c |" -> {"a", "b c"}
std::vector<std::string> table_cells(const std::string& line) {
  std::vector<std::string> cells;
  std::istringstream row(line);
  std::string cell;
  std::getline(row, cell, '|');  // before the first bar
  while (std::getline(row, cell, '|')) {
    const size_t first = cell.find_first_not_of(' '), last = cell.find_last_not_of(' ');
    cells.push_back(first == std::string::npos ? "" : cell.substr(first, last - first + 1));
  }
  return cells;
}

// The figure that follows `prefix` in `text` (NaN when absent).
double number_after(const std::string& text, const std::string& prefix) {
  const size_t at = text.find(prefix);
  return at == std::string::npos ? std::nan("") : std::atof(text.c_str() + at + prefix.size());
}

// The text between `prefix` and the next occurrence of `end` ("" when absent).
std::string text_between(const std::string& text, const std::string& prefix, const std::string& end) {
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return "";
  const size_t from = at + prefix.size();
  return text.substr(from, text.find(end, from) - from);
}

TEST(ClusterE2E, ClusterBenchReportsOneAndTwoSequencesAgainstOneProcess) {
  const std::string out = run_command(fmt::format(
      "'{}' cluster-bench -m '{}' -t 1 --local-cluster 2 --planner even -p 4 -n 16 --parallel 2 -r 2 2>/dev/null",
      LL_CLI_PATH, kStories));
  // | model | placement | workers | threads/process | sequences | pp t/s | tg t/s | tg vs 1 process |
  //   ms/token (round trip) | predicted ms/token | predicted tg t/s (measured vs) | KiB/token on the wire |
  std::map<std::string, std::vector<std::string>> rows;  // "placement xSEQUENCES" -> cells
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    const std::vector<std::string> cells = table_cells(line);
    if (cells.size() == 12 && cells[0] == "llama") rows[cells[1] + " x" + cells[4]] = cells;
  }
  ASSERT_EQ(rows.size(), 3u) << out;
  ASSERT_TRUE(rows.count("1 process x1") && rows.count("even x1") && rows.count("even x2")) << out;
  auto number = [&](const std::string& row, size_t cell) { return std::atof(rows[row][cell].c_str()); };

  // What was asked: one process, then 2 workers with 1 thread each, 1 and 2 sequences.
  for (const auto& [row, workers, sequences] : {std::tuple{"1 process x1", "1", "1"}, std::tuple{"even x1", "2", "1"},
                                                std::tuple{"even x2", "2", "2"}}) {
    EXPECT_EQ(rows[row][2], workers) << row << "\n" << out;
    EXPECT_EQ(rows[row][3], "1") << row << "\n" << out;
    EXPECT_EQ(rows[row][4], sequences) << row << "\n" << out;
    // Speeds a 260K-parameter model can reach on one thread: positive, finite, not absurd.
    EXPECT_GT(number(row, 5), 0) << row << "\n" << out;
    EXPECT_LT(number(row, 5), 1e7) << row << "\n" << out;
    EXPECT_GT(number(row, 6), 0) << row << "\n" << out;
    EXPECT_LT(number(row, 6), 1e6) << row << "\n" << out;
    EXPECT_GT(number(row, 8), 0) << row << "\n" << out;  // ms per token
  }
  const double base_tg = number("1 process x1", 6);
  // One process: the reference of the ratio column, a round trip of 1 / tg, nothing on the wire.
  EXPECT_EQ(rows["1 process x1"][7], "100%") << out;
  EXPECT_NEAR(number("1 process x1", 8), 1000 / base_tg, 0.01 * 1000 / base_tg + 0.01) << out;
  EXPECT_EQ(rows["1 process x1"][11], "0") << out;
  for (const char* row : {"even x1", "even x2"}) {
    // The ratio column is this row's tg over the single process's, in percent.
    EXPECT_NEAR(number(row, 7), 100 * number(row, 6) / base_tg, 1) << row << "\n" << out;
    // Every token's hidden state (64 floats of stories260K) crosses the cut between the workers.
    EXPECT_GE(number(row, 11), 0.25) << row << "\n" << out;
    // The plan's prediction is filled in.
    EXPECT_GT(number(row, 9), 0) << row << "\n" << out;
  }
  EXPECT_NEAR(number_after(out, "even: 2 sequences give "), number("even x2", 6) / number("even x1", 6), 0.01) << out;

  // The per-stage reports state the table's figures: the same round trip and tokens/s, over as
  // many sequences, with the two workers holding the model from the embedding to the head.
  for (const auto& [k, row] : {std::pair{1, "even x1"}, std::pair{2, "even x2"}}) {
    const std::string report = text_between(out, fmt::format("even, {} sequence(s), per stage:\n", k), "\n\n");
    ASSERT_FALSE(report.empty()) << out;
    EXPECT_NE(report.find(fmt::format("round trip {} ms per token", rows[row][8])), std::string::npos) << report;
    EXPECT_NE(report.find(fmt::format("; {} tokens/s over {} sequence(s)", rows[row][6], k)), std::string::npos)
        << report;
    EXPECT_NE(report.find(fmt::format("{:.1f} KiB on the wire per token", number(row, 11))), std::string::npos)
        << report;
    EXPECT_NE(report.find(" embed .. "), std::string::npos) << report;
    EXPECT_NE(report.find(" .. head "), std::string::npos) << report;
  }
}

TEST(ClusterE2E, SyntheticModelCutInsideAndBetweenLayersEqualsOneDevice) {
  const std::string path = synthetic_model();
  auto m = load(path);
  ASSERT_TRUE(m);
  exec::SegmentExecutor whole(*m, model::all_units(m->hparams()), {.n_ctx = 512, .n_threads = 1});
  auto tok = text::Tokenizer::create(m->vocab());
  ASSERT_TRUE(tok.ok());
  exec::GenerateOptions g;
  g.prompt = "The quick brown fox";
  g.n_predict = 40;
  g.sampling.temp = 0;
  auto expected = exec::generate(whole, tok.value(), g, [](const std::string&) {});
  ASSERT_TRUE(expected.ok()) << expected.error();

  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  // attn[1]: between layers 0 and 1; ffn[2]: inside layer 2. Then inside layer 0 and between 2 and 3.
  for (const char* cuts : {"attn[1],ffn[2]", "ffn[0],attn[3]"}) {
    auto p = start(*workers, *m, path, cuts);
    ASSERT_TRUE(p.head);
    auto gens = p.head->generate({greedy(g.prompt, g.n_predict)}, [](size_t, const std::string&) {});
    ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
    EXPECT_EQ(gens[0].prompt_tokens, expected->prompt_tokens) << cuts;
    EXPECT_EQ(gens[0].tokens, expected->tokens) << cuts;
  }
}

TEST(ClusterE2E, HeadWithoutAllowedKeyIsRefused) {
  auto workers = start_workers(1);
  ASSERT_TRUE(workers);
  cluster::HeadOptions o;
  o.workers = workers->addresses();
  o.keys = net::generate_keypair();  // not in the worker's allow-list
  const auto t0 = Clock::now();
  auto head = cluster::Head::connect(o);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.error().find(workers->addresses()[0].endpoint), std::string::npos) << head.error();
  EXPECT_NE(head.error().find("refused"), std::string::npos) << head.error();
  EXPECT_LT(seconds, 10.0);
  EXPECT_TRUE(alive(workers->pid(0)));
}

// Sends raw multipart messages to an insecure worker, as a broken or hostile peer would.
class RawPeer {
 public:
  explicit RawPeer(const std::string& endpoint) : socket_(net::context(), zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 3000);
    socket_.connect(endpoint);
  }
  void send(std::vector<zmq::message_t> parts) {
    for (size_t i = 0; i < parts.size(); ++i) {
      socket_.send(parts[i], i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void send(const wire::Envelope& e, std::vector<zmq::message_t> frames = {}) { send(net::encode(e, std::move(frames))); }
  // The next envelope, or nullopt after 3 s.
  std::optional<wire::Envelope> receive() {
    std::vector<zmq::message_t> parts;
    do {
      if (!socket_.recv(parts.emplace_back())) return std::nullopt;
    } while (parts.back().more());
    wire::Envelope e;
    if (!e.ParseFromArray(parts[0].data(), static_cast<int>(parts[0].size()))) return std::nullopt;
    return e;
  }

 private:
  zmq::socket_t socket_;
};

wire::Envelope step_envelope(uint64_t session, uint64_t seq, uint32_t pos, std::vector<int32_t> tokens) {
  wire::Envelope e;
  e.set_request_id(7);
  wire::Step* s = e.mutable_step();
  s->set_session(session);
  s->set_sequence(seq);
  s->set_position(pos);
  s->set_n_tokens(static_cast<uint32_t>(tokens.size()));
  for (int32_t t : tokens) s->add_tokens(t);
  text::SamplerParams greedy;
  greedy.temp = 0;
  cluster::sampler_to_wire(greedy, s->mutable_sampler());
  return e;
}

TEST(ClusterE2E, MalformedMessagesAreRejectedAndTheWorkerStillServes) {
  auto workers = start_workers(1, /*insecure=*/true);
  ASSERT_TRUE(workers);
  RawPeer peer(workers->addresses()[0].endpoint);

  // Dropped by the transport: garbage, truncated, wrong version, oversized envelope, too many frames.
  wire::Envelope hello;
  hello.set_version(wire::PROTOCOL_VERSION);
  hello.mutable_hello()->set_client(std::string(300, 'x'));
  const std::string valid = hello.SerializeAsString();
  std::vector<zmq::message_t> garbage;
  garbage.emplace_back(std::string("\xff\xff\xff\xff not protobuf"));
  peer.send(std::move(garbage));
  std::vector<zmq::message_t> truncated;
  truncated.emplace_back(valid.substr(0, valid.size() / 2));
  peer.send(std::move(truncated));
  wire::Envelope wrong_version = hello;
  wrong_version.set_version(99);
  std::vector<zmq::message_t> versioned;
  versioned.emplace_back(wrong_version.SerializeAsString());
  peer.send(std::move(versioned));
  wire::Envelope huge = hello;
  huge.mutable_hello()->set_client(std::string(2 << 20, 'x'));
  peer.send(huge);
  std::vector<zmq::message_t> many;
  for (int i = 0; i < 8; ++i) many.emplace_back(16);
  peer.send(hello, std::move(many));

  // Answered with errors: steps that do not fit what was loaded.
  wire::Envelope load;
  load.set_request_id(1);
  wire::LoadSegment* l = load.mutable_load_segment();
  l->set_session(42);
  l->set_model_path(kStories);
  l->set_unit_begin(0);
  l->set_unit_end(12);
  l->set_n_ctx(64);
  peer.send(load);
  auto reply = peer.receive();
  ASSERT_TRUE(reply && reply->has_load_reply()) << (reply ? reply->DebugString() : "no reply");

  struct Bad {
    const char* what;
    wire::Envelope e;
    std::vector<zmq::message_t> frames;
    std::string error = "";  // a part of the expected message, when the test names one
  };
  std::vector<Bad> bad;
  bad.push_back({"unknown session", step_envelope(43, 1, 0, {1}), {}});
  bad.push_back({"token outside vocab", step_envelope(42, 1, 0, {1, 100000}), {}});
  bad.push_back({"negative token", step_envelope(42, 1, 0, {-5}), {}});
  bad.push_back({"position past the end", step_envelope(42, 2, 5, {1}), {}});
  bad.push_back({"beyond the context", step_envelope(42, 3, 0, std::vector<int32_t>(65, 1)), {}});
  wire::Envelope count_mismatch = step_envelope(42, 4, 0, {1, 2});
  count_mismatch.mutable_step()->set_n_tokens(5);
  bad.push_back({"token count mismatch", count_mismatch, {}});
  wire::Envelope hidden_to_first = step_envelope(42, 5, 0, {1});
  hidden_to_first.mutable_step()->set_hidden_bytes(256);
  std::vector<zmq::message_t> frame;
  frame.emplace_back(256);
  bad.push_back({"hidden state to the first segment", hidden_to_first, std::move(frame)});
  wire::Envelope min_p_2 = step_envelope(42, 6, 0, {1});
  min_p_2.mutable_step()->mutable_sampler()->set_min_p(2);
  bad.push_back({"min-p 2", min_p_2, {}, "sequence 6: min-p 2 is outside 0..1 (0 = off)"});
  wire::Envelope temp_nan = step_envelope(42, 7, 0, {1});
  temp_nan.mutable_step()->mutable_sampler()->set_temp(std::nanf(""));
  bad.push_back({"temperature NaN", temp_nan, {}, "sequence 7: temperature nan is not a finite number"});
  wire::Envelope shard;
  shard.mutable_shard_data()->set_shard_hash("../../etc/passwd");
  shard.mutable_shard_data()->set_total_bytes(4);
  shard.mutable_shard_data()->set_chunk_bytes(4);
  std::vector<zmq::message_t> chunk;
  chunk.emplace_back(4);
  bad.push_back({"shard name that is not a hash", shard, std::move(chunk)});
  for (Bad& b : bad) {
    peer.send(b.e, std::move(b.frames));
    auto r = peer.receive();
    ASSERT_TRUE(r) << b.what << ": no reply";
    EXPECT_TRUE(r->has_error()) << b.what << ": " << r->DebugString();
    EXPECT_NE(r->error().message().find(b.error), std::string::npos) << b.what << ": " << r->DebugString();
  }
  ASSERT_TRUE(alive(workers->pid(0)));

  // A correct step still gives the reference's first token ("Once" follows BOS).
  peer.send(step_envelope(42, 9, 0, {1}));
  auto token = peer.receive();
  ASSERT_TRUE(token && token->has_token()) << (token ? token->DebugString() : "no reply");
  EXPECT_EQ(token->token().token(), 403);
  EXPECT_EQ(token->token().timings_size(), 1);
}

// Generates until on_token has been called `after` times, then lets it act on the workers.
// Without recovery (recovery_e2e_test has it): a lost worker ends the run.
struct Interrupted {
  cluster::Generation result;
  double seconds_after_action = 0;
};

Interrupted generate_and(LocalCluster& workers, const std::function<void()>& action, int after = 20) {
  auto m = load(kStories);
  auto p = start(workers, *m, kStories);
  Interrupted out;
  if (!p.head) return out;
  cluster::BalanceOptions no_recovery;
  no_recovery.enabled = false;
  no_recovery.recover = false;
  p.head->set_balancing(no_recovery, std::nullopt);
  int pieces = 0;
  Clock::time_point acted;
  auto gens = p.head->generate({greedy("", 480)}, [&](size_t, const std::string&) {
    if (++pieces == after) {
      action();
      acted = Clock::now();
    }
  });
  out.result = std::move(gens[0]);
  out.seconds_after_action = std::chrono::duration<double>(Clock::now() - acted).count();
  return out;
}

TEST(ClusterE2E, WithoutRecoveryAKilledWorkerEndsTheGenerationWithAnError) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto r = generate_and(*workers, [&] { kill(workers->pid(1), SIGKILL); });
  ASSERT_FALSE(r.result.status.ok());
  EXPECT_LT(r.seconds_after_action, 10.0);
  EXPECT_NE(r.result.status.message().find(workers->addresses()[1].endpoint), std::string::npos)
      << r.result.status.message();
  EXPECT_GE(r.result.tokens.size(), 20u);
}

TEST(ClusterE2E, WithoutRecoveryAStoppedWorkerEndsTheGenerationWithAnError) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto r = generate_and(*workers, [&] { kill(workers->pid(2), SIGSTOP); });
  ASSERT_FALSE(r.result.status.ok());
  EXPECT_LT(r.seconds_after_action, 10.0);
  EXPECT_NE(r.result.status.message().find(workers->addresses()[2].endpoint), std::string::npos)
      << r.result.status.message();
  kill(workers->pid(2), SIGCONT);
}

TEST(ClusterE2E, ConcurrentSequencesEqualSequentialRuns) {
  auto workers = start_workers(3);
  ASSERT_TRUE(workers);
  auto m = load(kStories);
  auto p = start(*workers, *m, kStories);
  ASSERT_TRUE(p.head);
  std::vector<cluster::Request> requests;
  const char* prompts[] = {"Once upon a time", "The little dog", "Lily and Ben"};
  for (int i = 0; i < 3; ++i) {
    cluster::Request r;
    r.prompt = prompts[i];
    r.n_predict = 120;
    r.sampling = {.temp = 0.9f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f, .repeat_penalty = 1.1f,
                  .seed = static_cast<uint64_t>(100 + i)};
    requests.push_back(r);
  }
  std::vector<std::string> streamed(3);
  auto together = p.head->generate(requests, [&](size_t i, const std::string& s) { streamed[i] += s; });
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(together[i].status.ok()) << together[i].status.message();
    auto alone = p.head->generate({requests[i]}, [](size_t, const std::string&) {});
    ASSERT_TRUE(alone[0].status.ok()) << alone[0].status.message();
    EXPECT_EQ(together[i].text, alone[0].text) << "sequence " << i;
    EXPECT_EQ(streamed[i], together[i].text);
    EXPECT_FALSE(together[i].text.empty());
    EXPECT_EQ(together[i].token_seconds.size(), together[i].tokens.size());
    EXPECT_TRUE(std::is_sorted(together[i].token_seconds.begin(), together[i].token_seconds.end()));
  }
}

TEST(ClusterE2E, DeviceGivenCoresRunsOnlyOnThem) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = {{.name = "pinned", .cores = {0}}, {.name = "free"}};
  auto workers = LocalCluster::start(o);
  ASSERT_TRUE(workers.ok()) << workers.error();
  auto allowed_cores = [](pid_t pid) {
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line)) {
      std::istringstream words(line);
      std::string key, value;
      if (words >> key >> value && key == "Cpus_allowed_list:") return value;
    }
    return std::string("(not found)");
  };
  EXPECT_EQ(allowed_cores((*workers)->pid(0)), "0");
  EXPECT_EQ(allowed_cores((*workers)->pid(1)), allowed_cores(getpid()));
  const auto& notes = (*workers)->notes();
  EXPECT_NE(std::find(notes.begin(), notes.end(), "pinned: runs on core 0"), notes.end());
}

}  // namespace
}  // namespace ll
