// Planner names: one parser and printer for every command and plan.
#include "plan/planner_name.h"

#include <gtest/gtest.h>

namespace ll::plan {
namespace {

TEST(PlannerName, EveryPlannerRoundTrips) {
  for (Planner p : {Planner::Milp, Planner::Dp, Planner::Even, Planner::Memory}) {
    auto parsed = parse_planner(planner_name(p));
    ASSERT_TRUE(parsed.ok()) << parsed.error();
    EXPECT_EQ(parsed.value(), p);
  }
  EXPECT_STREQ(planner_name(Planner::Milp), "milp");
}

TEST(PlannerName, UnknownNamesSayWhichExist) {
  for (const char* bad : {"", "MILP", "greedy", "milp "}) {
    auto r = parse_planner(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().find("use milp, dp, even or memory"), std::string::npos) << r.error();
  }
}

TEST(PlannerName, ListsKeepTheirOrder) {
  auto l = parse_planner_list("even,milp,,memory");
  ASSERT_TRUE(l.ok()) << l.error();
  EXPECT_EQ(l.value(), (std::vector<Planner>{Planner::Even, Planner::Milp, Planner::Memory}));
  EXPECT_FALSE(parse_planner_list("").ok());
  EXPECT_FALSE(parse_planner_list(",").ok());
  EXPECT_FALSE(parse_planner_list("milp,fast").ok());
}

}  // namespace
}  // namespace ll::plan
