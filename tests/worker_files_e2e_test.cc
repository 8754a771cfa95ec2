// A worker opens model files only inside the directories its owner allowed and only regular
// files, and refuses everything else with a reason while it keeps serving.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
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

wire::Envelope ping_envelope(uint64_t request_id) {
  wire::Envelope e;
  e.set_request_id(request_id);
  e.mutable_ping()->set_payload_bytes(0);
  return e;
}

// The next envelope within 5 s, or an empty one.
wire::Envelope receive(net::Client& client) {
  auto r = client.receive(std::chrono::seconds(5));
  EXPECT_TRUE(r.ok()) << r.error();
  if (!r.ok() || !r.value()) return {};
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
