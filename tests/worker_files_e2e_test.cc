// A worker opens model files only inside the directories its owner allowed and only regular
// files, and refuses everything else with a reason while it keeps serving; it reads and hashes
// them without keeping its network waiting.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cluster/pipeline.h"
#include "emulate/local_cluster.h"
#include "model/model.h"
#include "net/transport.h"
#include "test_data.h"
#include "wire.pb.h"

namespace ll {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

// A directory the worker serves, holding a FIFO and a symbolic link out of it.
struct Served {
  fs::path dir = fs::path(test::temp_path("served"));
  fs::path fifo = dir / "model.fifo";
  fs::path link_out = dir / "escape.gguf";
  Served() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    EXPECT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    fs::create_symlink("/etc/hostname", link_out);
  }
};

std::unique_ptr<emulate::LocalCluster> start_worker(const std::vector<std::string>& model_dirs) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = {{"w1"}};
  o.model_dirs = model_dirs;
  auto c = emulate::LocalCluster::start(o);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? std::move(c).value() : nullptr;
}

// A shard cache holding a shard this process has not hashed yet and that takes a while to hash
// (0.8 s or more: the worker hashes 150-250 MB/s): a sparse file of zeros named by a hash it does not
// have, so loading it ends, after the hash, in an ErrorReply.
struct SlowShard {
  // The ErrorReply comes once the hash is done: seconds on a machine busy with other work.
  static constexpr std::chrono::seconds kHashWait{60};
  static constexpr uint64_t kBytes = 192ull << 20;
  fs::path xdg_cache = fs::path(test::temp_path("xdg-cache"));
  std::string hash = std::string(64, 'a');
  fs::path file = xdg_cache / "lingualinked" / (hash + ".gguf");
  SlowShard() {
    fs::remove_all(xdg_cache);
    fs::create_directories(file.parent_path());
    std::ofstream(file).close();
    fs::resize_file(file, kBytes);
  }
  ~SlowShard() { fs::remove_all(xdg_cache); }
};

std::unique_ptr<emulate::LocalCluster> start_worker_with_cache(const SlowShard& shard) {
  setenv("XDG_CACHE_HOME", shard.xdg_cache.c_str(), 1);  // the worker inherits it
  auto worker = start_worker({});
  unsetenv("XDG_CACHE_HOME");
  return worker;
}

// A second head-keyed connection to the worker, sending raw requests.
std::unique_ptr<net::Client> connect(const emulate::LocalCluster& c) {
  net::SecurityOptions sec;
  sec.keys = c.head_keys();
  auto client = net::Client::connect(c.addresses()[0].endpoint, c.addresses()[0].public_key, sec);
  EXPECT_TRUE(client.ok()) << client.error();
  return client.ok() ? std::move(client).value() : nullptr;
}

wire::Envelope load_envelope(uint64_t request_id, uint64_t session, const std::string& path) {
  wire::Envelope e;
  e.set_request_id(request_id);
  wire::LoadSegment* l = e.mutable_load_segment();
  l->set_session(session);
  l->set_model_path(path);
  l->set_unit_begin(0);
  l->set_unit_end(1);
  l->set_n_ctx(64);
  return e;
}

wire::Envelope shard_load_envelope(uint64_t request_id, uint64_t session, const std::string& hash) {
  wire::Envelope e = load_envelope(request_id, session, "");
  e.mutable_load_segment()->set_shard_hash(hash);  // instead of the model path
  return e;
}

wire::Envelope ping_envelope(uint64_t request_id) {
  wire::Envelope e;
  e.set_request_id(request_id);
  e.mutable_ping()->set_payload_bytes(0);
  return e;
}

// The next envelope within `wait`, or an empty one.
wire::Envelope receive(net::Client& client, std::chrono::seconds wait = std::chrono::seconds(5)) {
  auto r = client.receive(wait);
  EXPECT_TRUE(r.ok()) << r.error();
  if (!r.ok()) return {};
  EXPECT_TRUE(r.value()) << "no reply within " << wait.count() << " s";
  if (!r.value()) return {};
  return r.value()->envelope();
}

TEST(WorkerFilesE2E, ForbiddenModelPathsAreRefusedWhileTheWorkerKeepsServing) {
  Served served;
  const std::string shared = test::shared_data("models");
  auto workers = start_worker({shared, served.dir.string()});
  ASSERT_TRUE(workers);
  // A head's session, loaded before and used after the refused requests.
  auto m = model::Model::load(kStories);
  ASSERT_TRUE(m.ok()) << m.error();
  cluster::PipelineOptions p;
  p.head.workers = workers->addresses();
  p.head.keys = workers->head_keys();
  p.load.n_ctx = 512;
  auto pipeline = cluster::start_pipeline(kStories, *m.value(), std::move(p));
  ASSERT_TRUE(pipeline.ok()) << pipeline.error();

  auto client = connect(*workers);
  ASSERT_TRUE(client);
  const std::string dirs = fmt::format("({}, {})", fs::canonical(shared).string(), fs::canonical(served.dir).string());
  const std::string dotdot = (served.dir / ".." / "served" / "model.fifo").string();
  const std::pair<std::string, std::string> refused[] = {
      {served.fifo.string(), fmt::format("model path {} is a FIFO, not a regular file", served.fifo.string())},
      {"/dev/zero", fmt::format("model path /dev/zero is outside the directories this worker serves {}; start the "
                                "worker with --models DIR", dirs)},
      {dotdot, fmt::format("model path {} contains '..'; name the file inside the directories this worker serves {}",
                           dotdot, dirs)},
      {served.link_out.string(),
       fmt::format("model path {} (it leads to {}) is outside the directories this worker serves {}; start the worker "
                   "with --models DIR", served.link_out.string(), fs::canonical("/etc/hostname").string(), dirs)},
  };
  uint64_t id = 100;
  for (const auto& [path, message] : refused) {
    ASSERT_TRUE(client->send(load_envelope(++id, 77, path)).ok());
    const wire::Envelope error = receive(*client);
    ASSERT_TRUE(error.has_error()) << path << ": " << error.DebugString();
    EXPECT_EQ(error.request_id(), id);
    EXPECT_EQ(error.error().message(), "worker w1: " + message);
    ASSERT_TRUE(client->send(ping_envelope(++id)).ok());
    const wire::Envelope pong = receive(*client);
    EXPECT_TRUE(pong.has_pong()) << "after " << path << ": " << pong.DebugString();
    EXPECT_EQ(pong.request_id(), id);
  }

  cluster::Request greedy;
  greedy.n_predict = 200;
  greedy.sampling.temp = 0;
  auto gens = pipeline->head->generate({greedy}, [](size_t, const std::string&) {});
  ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
  EXPECT_EQ(gens[0].text, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
}

// The corrupt shard's ErrorReply to LoadSegment `request_id`, which ends its load.
void expect_corrupt_shard_refused(const wire::Envelope& reply, uint64_t request_id, const SlowShard& shard) {
  ASSERT_TRUE(reply.has_error()) << reply.DebugString();
  EXPECT_EQ(reply.request_id(), request_id);
  const std::string& message = reply.error().message();
  EXPECT_EQ(message.rfind("worker w1: cached shard " + shard.hash + " was corrupt (its SHA-256 is ", 0), 0u) << message;
  EXPECT_TRUE(message.ends_with("); removed")) << message;
  EXPECT_FALSE(fs::exists(shard.file));
}

TEST(WorkerFilesE2E, APingIsAnsweredWhileACachedShardIsHashed) {
  SlowShard shard;
  auto worker = start_worker_with_cache(shard);
  ASSERT_TRUE(worker);
  auto client = connect(*worker);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->send(shard_load_envelope(1, 5, shard.hash)).ok());
  ASSERT_TRUE(client->send(ping_envelope(2)).ok());
  const wire::Envelope pong = receive(*client);
  EXPECT_TRUE(pong.has_pong()) << pong.DebugString();
  EXPECT_EQ(pong.request_id(), 2u);
  expect_corrupt_shard_refused(pong.has_pong() ? receive(*client, SlowShard::kHashWait) : pong, 1, shard);
}

TEST(WorkerFilesE2E, ASessionStillLoadingIsNotLoadedAgain) {
  SlowShard shard;
  auto worker = start_worker_with_cache(shard);
  ASSERT_TRUE(worker);
  auto client = connect(*worker);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->send(shard_load_envelope(1, 5, shard.hash)).ok());
  ASSERT_TRUE(client->send(shard_load_envelope(2, 5, shard.hash)).ok());
  const wire::Envelope refused = receive(*client);
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.request_id(), 2u) << refused.DebugString();
  EXPECT_EQ(refused.error().message(),
            "worker w1: session 5 is still loading; wait for its LoadReply before loading it again");
  expect_corrupt_shard_refused(refused.request_id() == 2 ? receive(*client, SlowShard::kHashWait) : refused, 1, shard);
}

TEST(WorkerFilesE2E, RunWithAFifoAsModelFailsFast) {
  Served served;
  const auto t0 = Clock::now();
  const std::string command =
      fmt::format("timeout 20 '{}' run -m '{}' -n 1 2>&1; echo \"exit $?\"", LL_CLI_PATH, served.fifo.string());
  std::FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0) << out;
  EXPECT_NE(out.find(served.fifo.string() + " is a FIFO, not a regular file"), std::string::npos) << out;
  EXPECT_NE(out.find("exit 1"), std::string::npos) << out;
}

}  // namespace
}  // namespace ll
