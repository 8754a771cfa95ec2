#include "plan/planner_name.h"

#include <sstream>

namespace ll::plan {

const char* planner_name(Planner p) {
  switch (p) {
    case Planner::Milp: return "milp";
    case Planner::Dp: return "dp";
    case Planner::Even: return "even";
    case Planner::Memory: return "memory";
  }
  return "?";
}

Result<Planner> parse_planner(const std::string& name) {
  for (Planner p : {Planner::Milp, Planner::Dp, Planner::Even, Planner::Memory}) {
    if (name == planner_name(p)) return p;
  }
  return Status::Errorf("unknown planner '{}': use milp, dp, even or memory", name);
}

Result<std::vector<Planner>> parse_planner_list(const std::string& names) {
  std::vector<Planner> out;
  std::stringstream ss(names);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    LL_ASSIGN_OR_RETURN(Planner p, parse_planner(name));
    out.push_back(p);
  }
  if (out.empty()) return Status::Error("--planner lists no planner");
  return out;
}

}  // namespace ll::plan
