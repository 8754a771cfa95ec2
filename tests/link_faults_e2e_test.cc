// A drop fault cuts an emulated device's network link (its namespace's host end down): the
// head's link to its worker is reported lost within the heartbeat timeout, and once the link is
// restored a new connection works. A device with a drop fault runs in a namespace even without
// bw= (needs root; skipped without it).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "emulate/device_spec.h"
#include "emulate/local_cluster.h"
#include "emulated_devices.h"
#include "net/transport.h"
#include "wire.pb.h"

namespace ll {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using emulate::LocalCluster;
using emulate::ScheduleChange;

std::unique_ptr<net::Client> link_to(const LocalCluster& cluster, size_t i) {
  net::SecurityOptions s;
  s.keys = cluster.head_keys();
  auto client = net::Client::connect(cluster.addresses()[i].endpoint, cluster.addresses()[i].public_key, s);
  EXPECT_TRUE(client.ok()) << client.error();
  return client.ok() ? std::move(client).value() : nullptr;
}

// The worker's name from its HelloReply, or "" when none comes within `timeout`.
std::string hello(net::Client& client, std::chrono::milliseconds timeout = 3s) {
  wire::Envelope e;
  e.mutable_hello()->set_client("link fault test");
  if (!client.send(e).ok()) return "";
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !client.disconnected()) {
    auto m = client.receive(50ms);
    if (m.ok() && m->has_value() && (*m)->envelope().has_hello_reply()) return (*m)->envelope().hello_reply().worker();
  }
  return "";
}

TEST(LinkFaultsE2E, ACutLinkIsReportedLostAndARestoredOneConnectsAgain) {
  if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  // The drop far in the future: only the namespace it asks for is used here.
  auto cluster = test::start_devices("a:threads=1,fail=drop@1000s;b:threads=1");
  ASSERT_TRUE(cluster);
  ASSERT_NE(cluster->link(0), nullptr);
  ASSERT_NE(cluster->link(1), nullptr) << "every worker must reach the one in a namespace";
  const auto& notes = cluster->notes();
  EXPECT_TRUE(std::any_of(notes.begin(), notes.end(), [](const std::string& n) {
    return n.starts_with("a: link not shaped (netns ") && n.ends_with("), in a namespace for its drop fault");
  })) << fmt::format("{}", fmt::join(notes, " | "));
  auto head = link_to(*cluster, 0);
  ASSERT_TRUE(head);
  ASSERT_EQ(hello(*head), "a");

  ASSERT_TRUE(cluster->cut_link(0).ok());
  const auto cut = Clock::now();
  while (!head->disconnected() && Clock::now() - cut < 6s) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(head->disconnected()) << "the head's link did not report the cut within 6 s";
  EXPECT_GE(Clock::now() - cut, 500ms) << "lost before any heartbeat could miss";
  auto during = link_to(*cluster, 0);
  ASSERT_TRUE(during);
  EXPECT_EQ(hello(*during, 500ms), "");

  ASSERT_TRUE(cluster->restore_link(0).ok());
  auto after = link_to(*cluster, 0);
  ASSERT_TRUE(after);
  EXPECT_EQ(hello(*after), "a");
}

TEST(LinkFaultsE2E, ADropOnTheScheduleIsReportedCutThenRestored) {
  if (geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  auto cluster = test::start_devices("a:threads=1,fail=drop@100ms+300ms");
  ASSERT_TRUE(cluster);
  std::mutex mutex;
  std::vector<ScheduleChange> changes;
  ASSERT_TRUE(cluster
                  ->start_schedules([&](const ScheduleChange& c) {
                    std::lock_guard lock(mutex);
                    changes.push_back(c);
                  })
                  .ok());
  std::this_thread::sleep_for(800ms);
  std::lock_guard lock(mutex);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].label, "a: link cut");
  EXPECT_EQ(changes[1].label, "a: link restored");
  EXPECT_TRUE(changes[0].fault && changes[1].fault);
  EXPECT_GE(changes[0].seconds, 0.1);
  EXPECT_GE(changes[1].seconds, 0.4);
  EXPECT_LT(changes[1].seconds, 0.7);
  auto head = link_to(*cluster, 0);
  ASSERT_TRUE(head);
  EXPECT_EQ(hello(*head), "a");
}

TEST(LinkFaultsE2E, WithoutRootADropFaultIsAnErrorSayingWhatToDo) {
  if (geteuid() != 0) GTEST_SKIP() << "run as root: the test drops to an unprivileged user itself";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv to drop root with";
  const std::string command = fmt::format(
      "/usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups '{}' demo --devices 'a:fail=drop@1s;b' -n 2 2>&1",
      LL_CLI_PATH);
  std::FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[512];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) output.append(buf, n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << output;
  EXPECT_NE(output.find("error: device a: a drop fault cuts the device's link in a network namespace of its own, "
                        "and none can be made here: bandwidth limits need root"),
            std::string::npos)
      << output;
  EXPECT_NE(output.find("; run as root, or leave out fail=drop"), std::string::npos) << output;
}

}  // namespace
}  // namespace ll
