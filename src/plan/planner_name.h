#pragma once
// The planners by name: the one parser and printer every command and the plan file use.
#include <string>
#include <vector>

#include "core/status.h"

namespace ll::plan {

enum class Planner { Milp, Dp, Even, Memory };

const char* planner_name(Planner p);
// "milp", "dp", "even" or "memory".
Result<Planner> parse_planner(const std::string& name);
// "milp,even,memory": one or more, in order.
Result<std::vector<Planner>> parse_planner_list(const std::string& names);

}  // namespace ll::plan
