// The soak's census: resident memory, parents, network namespaces parsed from their texts, and
// the live readings of this very process.
#include "emulate/process_census.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace ll::emulate {
namespace {

TEST(ProcessCensus, ParsesResidentBytes) {
  EXPECT_EQ(parse_resident_bytes("Name:\tx\nVmPeak:\t 9000 kB\nVmRSS:\t    1234 kB\nRssAnon: 5 kB\n"), 1234u * 1024);
  EXPECT_EQ(parse_resident_bytes("Name:\tkthreadd\n"), std::nullopt);  // kernel threads have none
}

TEST(ProcessCensus, ParsesTheParentPastACommandWithSpacesAndParentheses) {
  EXPECT_EQ(parse_parent_pid("4321 (a (b) c) S 77 4321 4321 0 -1"), 77);
  EXPECT_EQ(parse_parent_pid("garbage"), std::nullopt);
}

TEST(ProcessCensus, ParsesNetnsList) {
  EXPECT_EQ(parse_netns_list("ll-b-12 (id: 1)\nll-a-12 (id: 0)\nplain\n\n"),
            (std::vector<std::string>{"ll-b-12", "ll-a-12", "plain"}));
  EXPECT_TRUE(parse_netns_list("").empty());
}

TEST(ProcessCensus, ReadsThisProcess) {
  EXPECT_GT(resident_bytes_of(getpid()).value_or(0), 0u);
  const size_t before = open_descriptors();
  const int fd = open("/proc/self/status", O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(open_descriptors(), before + 1);
  close(fd);
  EXPECT_EQ(open_descriptors(), before);

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  const auto children = child_processes();
  EXPECT_NE(std::find(children.begin(), children.end(), child), children.end());
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  const auto after = child_processes();
  EXPECT_EQ(std::find(after.begin(), after.end(), child), after.end());
}

TEST(ProcessCensus, ResidentSeriesIsFlatWithinItsSlack) {
  ResidentSeries s{"head", {100, 180, 120}};
  EXPECT_EQ(s.first(), 100u);
  EXPECT_EQ(s.last(), 120u);
  EXPECT_EQ(s.max(), 180u);
  EXPECT_TRUE(s.flat(0, 0.2));
  EXPECT_FALSE(s.flat(0, 0.1));
  EXPECT_TRUE(s.flat(10, 0.1));
  EXPECT_TRUE(ResidentSeries{}.flat(0, 0));
}

}  // namespace
}  // namespace ll::emulate
