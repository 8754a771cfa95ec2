// Planners against brute force on random small instances, memory limits, the infeasible
// error, the baselines' splits, the MILP's speed at a real size, and plans as data.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "plan/planners.h"
#include "test_data.h"

namespace ll::plan {
namespace {

using namespace ll::profile;

// A Llama-shaped graph: embed, attn/ffn pairs, head; every tensor of the chain has its own size.
graph::Graph llama_graph(int n_layers, std::mt19937& rng) {
  std::uniform_int_distribution<uint64_t> weights(1 << 20, 64 << 20), hidden(1024, 16384);
  graph::Graph g;
  g.tensors.push_back({"tokens", -1, 1, 4});
  std::string previous = "tokens";
  const int64_t n = 2 * n_layers + 2;
  for (int64_t i = 0; i < n; ++i) {
    graph::GraphUnit u;
    u.unit = i == 0 ? model::Unit{model::UnitKind::Embed, -1}
             : i == n - 1
                 ? model::Unit{model::UnitKind::Head, -1}
                 : model::Unit{(i - 1) % 2 == 0 ? model::UnitKind::Attention : model::UnitKind::Ffn, (i - 1) / 2};
    u.name = model::unit_name(u.unit);
    u.weight_bytes = weights(rng);
    if (u.unit.kind == model::UnitKind::Attention) u.kv_bytes_per_token = 2048;
    u.flops_fixed_per_token = static_cast<double>(u.weight_bytes);
    u.inputs = {previous};
    u.outputs = {u.name + ".out"};
    const uint64_t bytes = hidden(rng);
    g.tensors.push_back({u.outputs[0], i, static_cast<int64_t>(bytes / 4), bytes});
    previous = u.outputs[0];
    g.units.push_back(std::move(u));
  }
  return g;
}

struct Instance {
  graph::Graph graph;
  std::vector<DeviceProfile> devices;
  std::vector<LinkProfile> links;
  CostOptions cost;
  bool pin_first = false;
};

// Random speeds (per unit too), memories from "holds it all" to "cannot hold it", and
// asymmetric links from fast to slower than the compute.
Instance random_instance(uint32_t seed, int max_devices = 4, int max_layers = 5) {
  std::mt19937 rng(seed);
  Instance in;
  in.graph = llama_graph(std::uniform_int_distribution<int>(0, max_layers)(rng), rng);
  const int n_devices = std::uniform_int_distribution<int>(1, max_devices)(rng);
  in.cost.n_ctx = 256;
  in.cost.n_parallel = std::uniform_int_distribution<int>(1, 2)(rng);
  in.cost.working_bytes = std::uniform_int_distribution<uint64_t>(0, 4 << 20)(rng);
  in.pin_first = rng() % 4 == 0;
  uint64_t total = 0;
  for (const auto& u : in.graph.units) total += u.weight_bytes + u.kv_bytes_per_token * 512;
  std::uniform_real_distribution<double> speed(0.2, 2.0), noise(0.8, 1.25), share(0.15, 1.1);
  for (int d = 0; d < n_devices; ++d) {
    DeviceProfile p;
    p.name = "dev" + std::to_string(d);
    const double s = speed(rng);
    for (const auto& u : in.graph.units) {
      p.decode_seconds.push_back(u.weight_bytes / 1e9 / s * noise(rng));
      p.prompt_seconds_per_token.push_back(p.decode_seconds.back() / 10);
    }
    p.usable_memory_bytes = static_cast<uint64_t>(total * share(rng));
    in.devices.push_back(std::move(p));
  }
  std::uniform_real_distribution<double> rtt(1e-5, 5e-3), bandwidth(1e6, 1e9);
  for (int a = 0; a < n_devices; ++a) {
    for (int b = 0; b < n_devices; ++b) {
      if (a != b) in.links.push_back({in.devices[a].name, in.devices[b].name, rtt(rng), bandwidth(rng)});
    }
  }
  return in;
}

CostModel cost_model(const Instance& in) {
  auto c = CostModel::create(in.graph, in.devices, in.links, in.cost);
  EXPECT_TRUE(c.ok()) << c.error();
  return std::move(c).value();
}

struct BruteForce {
  bool feasible = false;
  double latency = INFINITY;                // the smallest latency
  double bottleneck = INFINITY;             // the smallest slowest stage
  double latency_at_bottleneck = INFINITY;  // the smallest latency among those
};

// Every way to give each device (in order) a contiguous, possibly empty range, within memory
// and battery shares.
std::vector<Evaluation> every_plan(const CostModel& c, bool pin_first) {
  std::vector<Evaluation> all;
  std::vector<model::UnitRange> ranges(c.n_devices());
  std::function<void(int, int64_t)> place = [&](int d, int64_t begin) {
    if (d == c.n_devices() - 1) {
      ranges[d] = {begin, c.n_units()};
      if (pin_first && ranges[0].empty()) return;
      Evaluation e = c.evaluate(ranges);
      if (e.fits && e.within_shares) all.push_back(e);
      return;
    }
    for (int64_t end = begin; end <= c.n_units(); ++end) {
      ranges[d] = {begin, end};
      place(d + 1, end);
    }
  };
  place(0, 0);
  return all;
}

// The best of `all`, every plan of an instance (every_plan).
BruteForce brute_force(const std::vector<Evaluation>& all) {
  BruteForce b;
  for (const auto& e : all) {
    b.feasible = true;
    b.latency = std::min(b.latency, e.latency_seconds);
    b.bottleneck = std::min(b.bottleneck, e.bottleneck_seconds);
  }
  for (const auto& e : all) {
    if (e.bottleneck_seconds <= b.bottleneck * (1 + 1e-9)) {
      b.latency_at_bottleneck = std::min(b.latency_at_bottleneck, e.latency_seconds);
    }
  }
  return b;
}

void expect_within_memory(const Plan& p) {
  for (const auto& d : p.devices) EXPECT_LE(d.memory_bytes, d.memory_limit_bytes) << d.name;
}

// Both optimal planners against brute force, both objectives, ~200 instances.
void check_against_brute_force(const std::string& planner) {
  int feasible = 0, infeasible = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    const Instance in = random_instance(seed);
    const CostModel c = cost_model(in);
    const BruteForce best = brute_force(every_plan(c, in.pin_first));
    for (Objective objective : {Objective::Latency, Objective::Throughput}) {
      SCOPED_TRACE(fmt::format("seed {} planner {} objective {} devices {} units {} pinned {}", seed, planner,
                               objective_name(objective), c.n_devices(), c.n_units(), in.pin_first));
      PlanOptions o;
      o.planner = parse_planner(planner).value();
      o.objective = objective;
      o.pin_first = in.pin_first;
      auto plan = make_plan(c, o);
      if (!best.feasible) {
        ASSERT_FALSE(plan.ok());
        EXPECT_NE(plan.error().find("does not fit"), std::string::npos) << plan.error();
        ++infeasible;
        continue;
      }
      ASSERT_TRUE(plan.ok()) << plan.error();
      ++feasible;
      EXPECT_TRUE(plan->proven_optimal);
      expect_within_memory(plan.value());
      if (in.pin_first) {
        EXPECT_EQ(plan->devices[0].units.begin, 0);
      }
      if (objective == Objective::Latency) {
        EXPECT_NEAR(plan->latency_seconds, best.latency, 1e-6 * best.latency);
      } else {
        EXPECT_NEAR(plan->bottleneck_seconds, best.bottleneck, 1e-6 * best.bottleneck);
        EXPECT_NEAR(plan->latency_seconds, best.latency_at_bottleneck, 1e-6 * best.latency_at_bottleneck);
      }
    }
  }
  // The generator must exercise both outcomes.
  EXPECT_GT(feasible, 200);
  EXPECT_GT(infeasible, 20);
}

TEST(Planner, MilpEqualsBruteForce) { check_against_brute_force("milp"); }

TEST(Planner, DpEqualsBruteForce) { check_against_brute_force("dp"); }

// Energy figures for every device of `in` (and, for some, a low battery), from their own
// generator so that the instances stay those of the other tests.
void add_energy(Instance& in, uint32_t seed) {
  std::mt19937 rng(seed + 7919);
  std::uniform_real_distribution<double> watts(1, 30), idle_part(0.02, 0.6), radio(1e-8, 1e-5);
  for (DeviceProfile& d : in.devices) {
    const double compute = watts(rng);
    d.energy = EnergyFigures{compute, compute * idle_part(rng), radio(rng)};
    if (rng() % 3 == 0) d.battery_percent = std::uniform_real_distribution<double>(0, 40)(rng);
  }
}

// The energy objective against brute force: the least joules per token among the plans within
// the latency bound (bounds from the fastest plan to 2.5 times it), and every objective of both
// optimal planners within the low-battery shares. ~200 instances.
TEST(Planner, MilpEnergyEqualsBruteForce) {
  int bounded = 0, low_battery = 0, infeasible = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    Instance in = random_instance(seed);
    add_energy(in, seed);
    const CostModel c = cost_model(in);
    ASSERT_TRUE(c.energy_known());
    for (int d = 0; d < c.n_devices(); ++d) low_battery += c.low_battery(d);
    const std::vector<Evaluation> all = every_plan(c, in.pin_first);
    const BruteForce best = brute_force(all);
    std::mt19937 rng(seed);
    const double bound = best.latency * std::uniform_real_distribution<double>(1.0, 2.5)(rng);
    double least_joules = INFINITY;
    for (const Evaluation& e : all) {
      if (e.latency_seconds <= bound * (1 + 1e-9)) least_joules = std::min(least_joules, e.joules);
    }
    SCOPED_TRACE(fmt::format("seed {} devices {} units {} pinned {} bound {}", seed, c.n_devices(), c.n_units(),
                             in.pin_first, bound));
    PlanOptions o;
    o.objective = Objective::Energy;
    o.pin_first = in.pin_first;
    o.max_latency_seconds = best.feasible ? bound : 1.0;
    auto plan = make_plan(c, o);
    if (!best.feasible) {
      ASSERT_FALSE(plan.ok());
      EXPECT_NE(plan.error().find("does not fit"), std::string::npos) << plan.error();
      ++infeasible;
      continue;
    }
    ASSERT_TRUE(plan.ok()) << plan.error();
    ++bounded;
    EXPECT_TRUE(plan->proven_optimal);
    EXPECT_TRUE(plan->energy_known);
    EXPECT_LE(plan->latency_seconds, bound * (1 + 1e-6));
    EXPECT_NEAR(plan->joules_per_token, least_joules, 1e-6 * least_joules);
    double sum = 0;
    for (const auto& d : plan->devices) {
      sum += d.joules;
      EXPECT_LE(d.units.end - d.units.begin, c.max_units(d.device)) << d.name;
    }
    EXPECT_NEAR(sum, plan->joules_per_token, 1e-9 * sum);

    // A bound below the fastest plan names it.
    o.max_latency_seconds = best.latency * 0.99;
    auto too_tight = make_plan(c, o);
    ASSERT_FALSE(too_tight.ok());
    EXPECT_NE(too_tight.error().find(fmt::format("the fastest takes {:.3f} ms", best.latency * 1e3)), std::string::npos)
        << too_tight.error();

    // Latency and throughput keep to the battery shares too, both optimal planners.
    for (Planner planner : {Planner::Milp, Planner::Dp}) {
      for (Objective objective : {Objective::Latency, Objective::Throughput}) {
        PlanOptions p;
        p.planner = planner;
        p.objective = objective;
        p.pin_first = in.pin_first;
        auto other = make_plan(c, p);
        ASSERT_TRUE(other.ok()) << other.error();
        if (objective == Objective::Latency) {
          EXPECT_NEAR(other->latency_seconds, best.latency, 1e-6 * best.latency) << planner_name(planner);
        } else {
          EXPECT_NEAR(other->bottleneck_seconds, best.bottleneck, 1e-6 * best.bottleneck) << planner_name(planner);
        }
        EXPECT_TRUE(other->energy_known);
      }
    }
  }
  EXPECT_GT(bounded, 100);
  EXPECT_GT(infeasible, 10);
  EXPECT_GT(low_battery, 50);
}

// The energy objective's options: a bound it needs and others refuse, the milp planner, figures.
TEST(Planner, EnergyObjectiveSaysWhatItNeeds) {
  Instance in = random_instance(11);
  add_energy(in, 11);
  for (DeviceProfile& d : in.devices) {
    d.battery_percent.reset();
    d.usable_memory_bytes = 1ull << 40;
  }
  const CostModel c = cost_model(in);
  PlanOptions o;
  o.objective = Objective::Energy;
  for (double bound : {0.0, -1.0, double{NAN}, double{INFINITY}, 1e9}) {
    o.max_latency_seconds = bound;
    auto p = make_plan(c, o);
    ASSERT_FALSE(p.ok()) << bound;
    EXPECT_NE(p.error().find("needs a latency bound: --max-latency-ms"), std::string::npos) << p.error();
  }
  o.max_latency_seconds = 10;
  o.planner = Planner::Dp;
  auto dp = make_plan(c, o);
  ASSERT_FALSE(dp.ok());
  EXPECT_NE(dp.error().find("needs --planner milp"), std::string::npos) << dp.error();
  PlanOptions latency;
  latency.max_latency_seconds = 10;
  auto refused = make_plan(c, latency);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("belongs to --objective energy"), std::string::npos) << refused.error();

  in.devices.back().energy.reset();
  o.planner = Planner::Milp;
  auto unknown = make_plan(cost_model(in), o);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().find("has no energy figures"), std::string::npos) << unknown.error();
  // Without every device's figures the other objectives still plan, with no energy to show.
  auto plain = make_plan(cost_model(in), PlanOptions{});
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_FALSE(plain->energy_known);
  EXPECT_EQ(format_plan(plain.value()).find("mJ/token"), std::string::npos);
}

// The energy model by hand: two devices, one unit each, a known link.
TEST(Planner, EnergyOfAPlanByHand) {
  std::mt19937 rng(1);
  Instance in;
  in.graph = llama_graph(0, rng);  // embed, head
  for (int d = 0; d < 2; ++d) {
    DeviceProfile p;
    p.name = d ? "b" : "a";
    p.decode_seconds = {1e-3 * (d + 1), 2e-3 * (d + 1)};
    p.prompt_seconds_per_token = {1e-4, 1e-4};
    p.usable_memory_bytes = 1ull << 40;
    p.energy = EnergyFigures{d ? 10.0 : 4.0, d ? 2.0 : 0.5, d ? 1e-6 : 2e-6};
    in.devices.push_back(p);
  }
  in.links.push_back({"a", "b", 2e-3, 1e6});
  in.links.push_back({"b", "a", 2e-3, 1e6});
  const CostModel c = cost_model(in);
  const Evaluation e = c.evaluate({{0, 1}, {1, 2}});
  const double cut = static_cast<double>(c.cut_bytes(0)), ret = static_cast<double>(c.return_bytes());
  const double latency = 1e-3 + (cut / 1e6 + 1e-3) + 4e-3 + (ret / 1e6 + 1e-3);
  ASSERT_NEAR(e.latency_seconds, latency, 1e-12);
  // a: idle all token long, computing 1 ms more, its radio sends the cut and receives the token.
  EXPECT_NEAR(e.stages[0].joules, 0.5 * latency + 3.5 * 1e-3 + 2e-6 * (cut + ret), 1e-12);
  EXPECT_NEAR(e.stages[1].joules, 2.0 * latency + 8.0 * 4e-3 + 1e-6 * (cut + ret), 1e-12);
  EXPECT_NEAR(e.joules, e.stages[0].joules + e.stages[1].joules, 1e-12);
  // One device alone: b idles while a computes, and nothing crosses the air.
  const Evaluation alone = c.evaluate({{0, 2}, {}});
  EXPECT_NEAR(alone.joules, (0.5 + 2.0) * 3e-3 + 3.5 * 3e-3, 1e-12);
}

// A device on low battery holds at most ceil(units / devices), whatever it could hold.
TEST(Planner, LowBatteryDeviceTakesNoMoreThanItsShare) {
  std::mt19937 rng(9);
  Instance in;
  in.graph = llama_graph(4, rng);  // 10 units
  for (int d = 0; d < 3; ++d) {
    DeviceProfile p;
    p.name = "d" + std::to_string(d);
    p.decode_seconds.assign(10, d == 0 ? 1e-4 : 1e-3);  // d0 is ten times as fast
    p.prompt_seconds_per_token.assign(10, 1e-5);
    p.usable_memory_bytes = d == 0 ? 1ull << 42 : 1ull << 40;
    in.devices.push_back(p);
  }
  in.cost.default_link = LinkProfile{"", "", 1e-3, 1e8};
  PlanOptions o;
  auto full = make_plan(cost_model(in), o);
  ASSERT_TRUE(full.ok()) << full.error();
  EXPECT_EQ(full->devices[0].units.end - full->devices[0].units.begin, 10);  // all on the fast one
  in.devices[0].battery_percent = 19.5;
  for (Planner planner : {Planner::Milp, Planner::Dp}) {
    o.planner = planner;
    auto low = make_plan(cost_model(in), o);
    ASSERT_TRUE(low.ok()) << low.error();
    EXPECT_EQ(low->devices[0].units.end - low->devices[0].units.begin, 4) << planner_name(planner);  // ceil(10 / 3)
  }
  o.planner = Planner::Memory;  // 4 of 6 parts of the memory: 3 of the 4 layers, 7 units
  auto by_memory = make_plan(cost_model(in), o);
  ASSERT_FALSE(by_memory.ok());
  EXPECT_NE(by_memory.error().find("gives 'd0' 7 units, but it is below 20% battery and takes at most its share, 4"),
            std::string::npos)
      << by_memory.error();
  in.devices[0].battery_percent = 20;  // the threshold itself is not low
  o.planner = Planner::Milp;
  auto at = make_plan(cost_model(in), o);
  ASSERT_TRUE(at.ok()) << at.error();
  EXPECT_EQ(at->devices[0].units.end - at->devices[0].units.begin, 10);
}

TEST(Planner, BaselinesStayWithinMemoryOrSayWhy) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    const Instance in = random_instance(seed);
    const CostModel c = cost_model(in);
    for (const char* planner : {"even", "memory"}) {
      PlanOptions o;
      o.planner = parse_planner(planner).value();
      auto plan = make_plan(c, o);
      if (plan.ok()) {
        expect_within_memory(plan.value());
      } else {
        EXPECT_NE(plan.error().find("over its"), std::string::npos) << plan.error();
      }
    }
  }
}

TEST(Planner, BaselineSplits) {
  std::mt19937 rng(7);
  Instance in;
  in.graph = llama_graph(8, rng);  // 18 units
  for (int d = 0; d < 4; ++d) {
    DeviceProfile p;
    p.name = "d" + std::to_string(d);
    p.decode_seconds.assign(18, 1e-3);
    p.prompt_seconds_per_token.assign(18, 1e-4);
    p.usable_memory_bytes = d == 0 ? (12ull << 30) : (4ull << 30);
    in.devices.push_back(p);
  }
  in.cost.default_link = LinkProfile{"", "", 1e-3, 1e8};
  const CostModel c = cost_model(in);
  PlanOptions o;
  o.planner = Planner::Even;
  auto even = make_plan(c, o);
  ASSERT_TRUE(even.ok()) << even.error();
  // Two layers each; the embedding with the first, the head with the last.
  EXPECT_EQ(even->cuts(), (std::vector<int64_t>{5, 9, 13}));
  EXPECT_EQ(even->devices[0].first_unit, "embed");
  EXPECT_EQ(even->devices[3].last_unit, "head");
  for (const auto& d : even->devices) EXPECT_EQ(d.layers, 2);
  o.planner = Planner::Memory;
  auto memory = make_plan(c, o);
  ASSERT_TRUE(memory.ok()) << memory.error();
  // 12:4:4:4 GiB -> 4, 4/3, 4/3, 4/3 layers: cumulative 4, 5.33, 6.67, 8 -> 4, 5, 7, 8.
  EXPECT_EQ(memory->cuts(), (std::vector<int64_t>{9, 11, 15}));
  EXPECT_EQ(memory->devices[0].layers, 4);
}

TEST(Planner, InfeasibleSaysWhatIsNeededAndWhatToDo) {
  std::mt19937 rng(3);
  Instance in;
  in.graph = llama_graph(4, rng);
  for (int d = 0; d < 2; ++d) {
    DeviceProfile p;
    p.name = d ? "phone" : "laptop";
    p.decode_seconds.assign(in.graph.units.size(), 1e-3);
    p.prompt_seconds_per_token.assign(in.graph.units.size(), 1e-4);
    p.usable_memory_bytes = 32 << 20;
    in.devices.push_back(p);
  }
  in.cost.default_link = LinkProfile{"", "", 1e-3, 1e8};
  for (const char* planner : {"milp", "dp"}) {
    PlanOptions o;
    o.planner = parse_planner(planner).value();
    auto plan = make_plan(cost_model(in), o);
    ASSERT_FALSE(plan.ok());
    const std::string& e = plan.error();
    EXPECT_NE(e.find("does not fit: it needs"), std::string::npos) << e;
    EXPECT_NE(e.find("the devices offer 64.0 MiB in total (laptop 32.0 MiB, phone 32.0 MiB)"), std::string::npos) << e;
    EXPECT_NE(e.find("Add a device"), std::string::npos) << e;
    EXPECT_NE(e.find("smaller quantization"), std::string::npos) << e;
    EXPECT_NE(e.find("--ctx / --parallel"), std::string::npos) << e;
  }
}

TEST(Planner, SlowDevicesAndSlowLinksAreLeftOut) {
  std::mt19937 rng(5);
  Instance in;
  in.graph = llama_graph(4, rng);
  const size_t n = in.graph.units.size();
  for (int d = 0; d < 3; ++d) {
    DeviceProfile p;
    p.name = "d" + std::to_string(d);
    p.decode_seconds.assign(n, d == 1 ? 1.0 : 1e-3);  // d1 is a thousand times slower
    p.prompt_seconds_per_token.assign(n, 1e-4);
    p.usable_memory_bytes = 1ull << 40;
    in.devices.push_back(p);
  }
  in.cost.default_link = LinkProfile{"", "", 1e-3, 1e8};
  for (const char* planner : {"milp", "dp"}) {
    PlanOptions o;
    o.planner = parse_planner(planner).value();
    auto plan = make_plan(cost_model(in), o);
    ASSERT_TRUE(plan.ok()) << plan.error();
    // With room for everything, the fastest ring is one device: no transfers at all.
    EXPECT_EQ(plan->used_devices().size(), 1u);
    EXPECT_TRUE(plan->devices[1].units.empty());
    EXPECT_NEAR(plan->latency_seconds, n * 1e-3, 1e-9);
  }
}

// The size of a 64-layer model on 8 devices: CBC proves the optimum within its time limit and
// agrees with the DP. (How fast it does so is a figure for a benchmark, not a test: the
// sanitized builds and a loaded machine take twice as long.)
TEST(Planner, MilpSolves8DevicesBy130UnitsToAProvenOptimum) {
  std::mt19937 rng(11);
  Instance in;
  in.graph = llama_graph(64, rng);
  ASSERT_EQ(in.graph.units.size(), 130u);
  uint64_t total = 0;
  for (const auto& u : in.graph.units) total += u.weight_bytes;
  const double speeds[] = {1.0, 0.5, 0.25, 2.0, 0.8, 1.5, 0.3, 1.2};
  const double memory[] = {0.1, 0.3, 0.2, 0.15, 0.25, 0.2, 0.1, 0.3};  // of the model; 1.6 in all
  std::uniform_real_distribution<double> noise(0.9, 1.1), rtt(2e-4, 5e-3), bandwidth(1e7, 1e9);
  for (int d = 0; d < 8; ++d) {
    DeviceProfile p;
    p.name = "d" + std::to_string(d);
    for (const auto& u : in.graph.units) p.decode_seconds.push_back(u.weight_bytes / 5e9 / speeds[d] * noise(rng));
    p.prompt_seconds_per_token.assign(130, 1e-4);
    p.usable_memory_bytes = static_cast<uint64_t>(total * memory[d]);
    in.devices.push_back(p);
  }
  for (int a = 0; a < 8; ++a) {
    for (int b = 0; b < 8; ++b) {
      if (a != b) in.links.push_back({in.devices[a].name, in.devices[b].name, rtt(rng), bandwidth(rng)});
    }
  }
  const CostModel c = cost_model(in);
  for (Objective objective : {Objective::Latency, Objective::Throughput}) {
    PlanOptions o;
    o.objective = objective;
    o.pin_first = true;
    auto milp = make_plan(c, o);
    ASSERT_TRUE(milp.ok()) << milp.error();
    EXPECT_TRUE(milp->proven_optimal) << objective_name(objective);
    expect_within_memory(milp.value());
    o.planner = Planner::Dp;
    auto dp = make_plan(c, o);
    ASSERT_TRUE(dp.ok()) << dp.error();
    const double a = objective == Objective::Latency ? milp->latency_seconds : milp->bottleneck_seconds;
    const double b = objective == Objective::Latency ? dp->latency_seconds : dp->bottleneck_seconds;
    EXPECT_NEAR(a, b, 1e-6 * b);
  }
}

TEST(Plan, JsonRoundTripPartitionAndSvg) {
  const Instance in = random_instance(42, 4, 5);
  PlanOptions o;
  o.planner = Planner::Dp;
  Instance fits = in;
  for (auto& d : fits.devices) d.usable_memory_bytes = 1ull << 40;
  add_energy(fits, 42);
  for (auto& d : fits.devices) d.battery_percent.reset();
  auto plan = make_plan(cost_model(fits), o);
  ASSERT_TRUE(plan.ok()) << plan.error();
  auto back = plan_from_json(nlohmann::json::parse(to_json(plan.value()).dump()));
  ASSERT_TRUE(back.ok()) << back.error();
  EXPECT_EQ(to_json(back.value()), to_json(plan.value()));
  EXPECT_FALSE(plan_from_json(nlohmann::json{{"planner", "dp"}}).ok());

  auto partition = back->to_partition(fits.graph);
  ASSERT_TRUE(partition.ok()) << partition.error();
  EXPECT_EQ(partition->segments.size(), back->used_devices().size());

  const std::string table = format_plan(plan.value());
  EXPECT_NE(table.find("tokens/s"), std::string::npos);
  EXPECT_NE(table.find("mJ/token"), std::string::npos);
  EXPECT_NE(table.find(fmt::format("energy {:.3f} mJ per token", plan->joules_per_token * 1e3)), std::string::npos);
  o.planner = Planner::Milp;
  o.objective = Objective::Energy;
  o.max_latency_seconds = 2 * plan->latency_seconds;
  auto frugal = make_plan(cost_model(fits), o);
  ASSERT_TRUE(frugal.ok()) << frugal.error();
  auto frugal_back = plan_from_json(nlohmann::json::parse(to_json(frugal.value()).dump()));
  ASSERT_TRUE(frugal_back.ok()) << frugal_back.error();
  EXPECT_EQ(to_json(frugal_back.value()), to_json(frugal.value()));
  EXPECT_EQ(frugal_back->objective, Objective::Energy);
  EXPECT_NE(format_plan(frugal.value()).find("latency bound"), std::string::npos);
  for (const auto& d : plan->devices) EXPECT_NE(table.find(d.name), std::string::npos);

  const std::string svg_path = test::temp_path("plan.svg");
  ASSERT_TRUE(write_svg(plan.value(), svg_path).ok());
  const std::string svg = test::read_text(svg_path);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  for (int d : plan->used_devices()) EXPECT_NE(svg.find(plan->devices[d].name), std::string::npos);
}

}  // namespace
}  // namespace ll::plan
