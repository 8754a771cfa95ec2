// Bandwidth-limited links for emulated devices: `bw=` in device descriptions, and a local
// cluster whose workers run in network namespaces behind tbf-shaped veth pairs (needs root;
// skipped without it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"
#include "emulate/netns.h"
#include "cluster/model_access.h"
#include "cluster/pipeline.h"
#include "model/model.h"
#include "net/transport.h"
#include "test_data.h"
#include "wire.pb.h"

namespace ll {
namespace {

using Clock = std::chrono::steady_clock;
using emulate::DeviceSpec;
using emulate::LocalCluster;

const std::string kStories = test::shared_data("models/stories260K/stories260K.gguf");

TEST(ShapedLinkE2E, PlainTextLinksAreRefusedWithShapedLinks) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = {{"a"}, {"b"}};
  o.devices[0].link_bps = 8'000'000;
  o.insecure = true;
  auto c = LocalCluster::start(o);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("loopback"), std::string::npos) << c.error();
}

// Namespaces and host-side veth ends this process has made and not removed.
std::vector<std::string> leftovers() {
  std::vector<std::string> out;
  std::error_code ec;
  const std::string ns_prefix = fmt::format("ll-{}-", getpid()), if_prefix = fmt::format("ll{}-", getpid());
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    if (e.path().filename().string().starts_with(ns_prefix)) out.push_back(e.path().string());
  }
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/net", ec)) {
    if (e.path().filename().string().starts_with(if_prefix)) out.push_back(e.path().string());
  }
  return out;
}

#define SKIP_WITHOUT_SHAPING()                                                         \
  do {                                                                                 \
    if (Status st = emulate::ShapedLink::available(); !st.ok()) GTEST_SKIP() << st.message(); \
  } while (0)

std::string command_output(const std::string& command) {
  std::FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(ShapedLinkE2E, LinksGetTheirOwnSubnetsAndLeaveNothingBehind) {
  SKIP_WITHOUT_SHAPING();
  {
    auto a = emulate::ShapedLink::create(8'000'000);
    ASSERT_TRUE(a.ok()) << a.error();
    auto b = emulate::ShapedLink::create(0);
    ASSERT_TRUE(b.ok()) << b.error();
    EXPECT_NE((*a)->netns(), (*b)->netns());
    EXPECT_NE((*a)->address(), (*b)->address());
    EXPECT_TRUE(std::filesystem::exists((*a)->netns_path()));
    EXPECT_NE((*a)->description().find("link shaped to 8 Mbit/s"), std::string::npos) << (*a)->description();
    EXPECT_NE((*b)->description().find("link not shaped"), std::string::npos) << (*b)->description();
    // Both ends of a shaped link have the qdisc; an unshaped one has none.
    const std::string inner = command_output(fmt::format("tc -n {} qdisc show dev veth0", (*a)->netns()));
    EXPECT_NE(inner.find("tbf"), std::string::npos) << inner;
    EXPECT_NE(inner.find("rate 8Mbit"), std::string::npos) << inner;
    const std::string unshaped = command_output(fmt::format("tc -n {} qdisc show dev veth0", (*b)->netns()));
    EXPECT_EQ(unshaped.find("tbf"), std::string::npos) << unshaped;
  }
  EXPECT_EQ(leftovers(), std::vector<std::string>{});

  // A cluster whose workers cannot start removes its namespaces too.
  emulate::LocalClusterOptions o;
  o.cli_path = "/nonexistent/lingualinked";
  o.devices = {{"a"}, {"b"}};
  o.devices[0].link_bps = 8'000'000;
  auto c = LocalCluster::start(o);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

std::unique_ptr<LocalCluster> start_shaped(uint64_t slow_bps) {
  emulate::LocalClusterOptions o;
  o.cli_path = LL_CLI_PATH;
  o.devices = {{"slow"}, {"fast"}};
  o.devices[0].link_bps = slow_bps;
  o.model_dirs = {cluster::model_directory(kStories)};
  auto c = LocalCluster::start(o);
  EXPECT_TRUE(c.ok()) << c.error();
  return c.ok() ? std::move(c).value() : nullptr;
}

TEST(ShapedLinkE2E, Stories260KGreedyOverAShapedLinkEqualsReference) {
  SKIP_WITHOUT_SHAPING();
  {
    auto workers = start_shaped(8'000'000);
    ASSERT_TRUE(workers);
    ASSERT_EQ(workers->notes().size(), 2u);
    EXPECT_NE(workers->notes()[0].find("slow: link shaped to 8 Mbit/s (netns ll-"), std::string::npos)
        << workers->notes()[0];
    EXPECT_NE(workers->notes()[1].find("fast: link not shaped"), std::string::npos) << workers->notes()[1];
    for (size_t i = 0; i < 2; ++i) {
      ASSERT_NE(workers->link(i), nullptr);
      EXPECT_EQ(workers->addresses()[i].endpoint.rfind("tcp://" + workers->link(i)->address() + ":", 0), 0u)
          << workers->addresses()[i].endpoint;
    }
    auto m = model::Model::load(kStories);
    ASSERT_TRUE(m.ok()) << m.error();
    cluster::PipelineOptions p;
    p.head.workers = workers->addresses();
    p.head.keys = workers->head_keys();
    p.cuts = "attn[2]";
    p.load.n_ctx = 512;
    // Worker 0 sends its hidden states to worker 1 through the host, so namespaces reach each other.
    auto pipeline = cluster::start_pipeline(kStories, *m.value(), std::move(p));
    ASSERT_TRUE(pipeline.ok()) << pipeline.error();
    cluster::Request r;
    r.n_predict = 200;
    r.sampling.temp = 0;
    auto gens = pipeline->head->generate({r}, [](size_t, const std::string&) {});
    ASSERT_TRUE(gens[0].status.ok()) << gens[0].status.message();
    EXPECT_EQ(gens[0].text, test::read_text(test::shared_data("reference/stories260K/greedy_t0_n200.txt")));
  }
  EXPECT_EQ(leftovers(), std::vector<std::string>{});
}

// Seconds from sending a Hello that carries a 1 MiB frame (which the worker ignores) to its reply:
// the reply comes after the whole megabyte has crossed the link.
double seconds_to_send_a_megabyte(const LocalCluster& workers, size_t i) {
  net::SecurityOptions sec;
  sec.keys = workers.head_keys();
  auto client = net::Client::connect(workers.addresses()[i].endpoint, workers.addresses()[i].public_key, sec);
  EXPECT_TRUE(client.ok()) << client.error();
  if (!client.ok()) return 0;
  auto round_trip = [&](uint64_t id, std::vector<zmq::message_t> frames) -> bool {
    wire::Envelope e;
    e.set_request_id(id);
    e.mutable_hello()->set_client("shaped-link-test");
    Status st = (*client)->send(e, std::move(frames));
    EXPECT_TRUE(st.ok()) << st.message();
    const auto deadline = Clock::now() + std::chrono::seconds(15);
    while (Clock::now() < deadline) {
      auto m = (*client)->receive(std::chrono::milliseconds(100));
      if (!m.ok()) break;
      if (m.value() && m.value()->envelope().request_id() == id) return true;
    }
    ADD_FAILURE() << "no reply from " << workers.addresses()[i].endpoint;
    return false;
  };
  if (!round_trip(1, {})) return 0;  // connected and authenticated before the clock starts
  std::vector<zmq::message_t> frames;
  frames.emplace_back(size_t{1} << 20);
  std::memset(frames[0].data(), 0x5a, frames[0].size());
  const auto t0 = Clock::now();
  if (!round_trip(2, std::move(frames))) return 0;
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

TEST(ShapedLinkE2E, AMegabyteTakesAboutASecondAtEightMegabits) {
  SKIP_WITHOUT_SHAPING();
  auto workers = start_shaped(8'000'000);
  ASSERT_TRUE(workers);
  const double shaped = seconds_to_send_a_megabyte(*workers, 0);
  const double unshaped = seconds_to_send_a_megabyte(*workers, 1);
  // 8 Mbit / 8 Mbit/s = 1.05 s, less the 16 KiB burst; the unshaped veth is limited only by CURVE.
  EXPECT_GT(shaped, 0.5);
  EXPECT_LT(shaped, 5.0);
  EXPECT_LT(unshaped, 0.3);
  std::printf("1 MiB to the worker: %.3f s over 8 Mbit/s, %.3f s unshaped\n", shaped, unshaped);
}

}  // namespace
}  // namespace ll
