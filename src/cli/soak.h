#pragma once
// `cluster-bench --soak N --faults M`: at least N short greedy requests (more until M faults
// were made), several in flight, through an emulated cluster while every few seconds a random
// worker is killed (and started again a little later), frozen for a while, or restarted at once. Checked: every request ends with the text of an
// undisturbed run of its prompt (computed first, before any fault), or with an error only when
// no placement of the survivors can hold the model; no request outlives its watchdog; the head's
// and the workers' resident memory stays flat; and once it is over no session, file descriptor,
// child process or network namespace is left behind.
#include <cstdint>
#include <string>
#include <vector>

#include "cluster/pipeline.h"
#include "emulate/process_census.h"
#include "model/model.h"

namespace ll::cli {

struct SoakOptions {
  std::string model_path;
  std::string devices = "a;b;c";  // as for demo --devices; faults need survivors that hold the model
  int threads = 1;
  cluster::PlanningOptions planning;
  size_t requests = 300;
  size_t min_faults = 10;   // requests go on until this many faults were made
  size_t in_flight = 3;     // requests generated at once
  double fault_every = 3;   // seconds between faults
  uint64_t seed = 1;        // which worker and which fault
  int64_t n_prompt = 16, n_gen = 16;
  size_t prompts = 8;               // distinct prompts, taken in turn
  double request_timeout = 120;     // the watchdog: a request running longer is a hang
};

struct SoakReport {
  size_t requests = 0;       // ended
  size_t identical = 0;      // with the reference's tokens
  size_t honest_errors = 0;  // no placement could hold the model
  size_t fault_count = 0;           // faults made (a kill and its restart are one)
  std::vector<std::string> faults;  // each step as applied: "12.3 s: b killed"
  std::vector<emulate::ResidentSeries> memory;  // the head, then each device's worker
  size_t descriptors_before = 0, descriptors_after = 0;
  size_t sessions_probed = 0;        // fresh sessions every worker took after the soak
  std::vector<pid_t> children_after;  // once the cluster stopped
  std::vector<std::string> namespaces_before, namespaces_after;  // empty when `ip` cannot list them
  double seconds = 0;
  std::vector<std::string> violations;  // empty: passed
};

// Resident memory may grow by this much (plus kSoakMemorySlackFraction of the first sample)
// before it counts as a leak: allocators and ZeroMQ keep some.
inline constexpr uint64_t kSoakMemorySlackBytes = 32ull << 20;
inline constexpr double kSoakMemorySlackFraction = 0.25;
// File descriptors the head may hold beyond those it held after the reference run.
inline constexpr size_t kSoakDescriptorSlack = 8;

// Errors only for a soak that could not begin (the cluster or the reference run); everything
// found while it runs is in the report's violations.
Result<SoakReport> run_soak(const model::Model& model, const SoakOptions& o);

std::string soak_markdown(const SoakReport& report);

}  // namespace ll::cli
