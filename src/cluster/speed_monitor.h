#pragma once
// How fast each worker runs now compared with its profile, from the per-step timings the head
// receives. A sample is (time, observed compute seconds, expected compute seconds): expected is
// what the worker's profile predicts for the units it holds, so the ratio observed / expected
// (the slowdown) compares workers whatever they hold. Profiles time attention at their decode
// context: a much longer context reads as a mild slowdown of the workers holding attention units.
//
// The window: the samples of the last `window_seconds`, or the last `window_tokens` samples when
// those reach further back (the longer of the two). A worker's slowdown is the median of the
// window's ratios, so one noisy token moves nothing. It is known only once the samples since the
// last reset cover a full window (at least `window_tokens` samples spanning at least
// `window_seconds`) and the window holds at least `min_samples`: after a switch the head resets
// the monitor, and the next decision waits for a fresh window measured on the new placement.
//
// A worker that holds nothing sends no timings: its factor comes from SpeedProbe,
// probe seconds now / probe seconds at the start (set_idle_probe). Compute samples, once they
// cover a window, take precedence over the probe.
#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "cluster/run_trace.h"
#include "model/units.h"
#include "profile/device_profile.h"

namespace ll::cluster {

struct SpeedMonitorOptions {
  double window_seconds = 1.0;
  size_t window_tokens = 8;
  size_t min_samples = 4;
};

class SpeedMonitor {
 public:
  explicit SpeedMonitor(size_t n_workers, SpeedMonitorOptions options = {});

  size_t n_workers() const { return workers_.size(); }
  const SpeedMonitorOptions& options() const { return options_; }

  // One step of worker `w` finished at `now` (seconds on the head's clock, non-decreasing per
  // worker). Samples with expected <= 0 or a negative observed time are ignored.
  void add_compute(size_t w, double now, double observed_seconds, double expected_seconds);
  // The hand-off of one step from worker `from` to worker `to` took `seconds`.
  void add_send(size_t from, size_t to, double now, double seconds);
  // A decode token: every stage's compute, with `expected_seconds[worker]` the profile's time for
  // the units that worker holds, and the send of each stage to the next one in the pipeline.
  void add_token(const TokenTrace& token, const std::vector<double>& expected_seconds);
  // A worker that holds nothing: its slowdown from a SpeedProbe (one measurement, no window).
  void set_idle_probe(size_t w, double factor);

  // The median observed / expected over the window; nullopt until a full window was seen.
  std::optional<double> slowdown(size_t w, double now) const;
  // Every worker's slowdown, or nullopt while any of them is unknown (an idle worker is known
  // only through a probe).
  std::optional<std::vector<double>> slowdowns(double now) const;
  // The median send seconds of the link from -> to over the window (no full window needed:
  // links are not reset by a switch); nullopt with fewer than min_samples.
  std::optional<double> send_seconds(size_t from, size_t to, double now) const;

  // Forget worker w's compute samples and probe (its range or its device changed); idle
  // workers then need a new probe. Link samples stay.
  void reset(size_t w);
  void reset_all();

 private:
  struct Sample {
    double time;
    double value;
  };
  struct Worker {
    std::vector<Sample> ratios;  // the recent ones since the last reset, oldest first
    size_t count = 0;            // samples since the last reset
    double first_time = 0;       // of the first of them
    std::optional<double> probe;
  };

  // The first sample of the window ending at `now`: the samples of the last window_seconds, or
  // the last window_tokens when those reach further back.
  size_t window_begin(const std::vector<Sample>& samples, double now) const;
  std::vector<double> window_values(const std::vector<Sample>& samples, double now) const;

  SpeedMonitorOptions options_;
  std::vector<Worker> workers_;
  std::map<std::pair<size_t, size_t>, std::vector<Sample>> sends_;
};

// What add_token expects: per worker, its profile's decode seconds summed over the units it
// holds (0 when it holds nothing). `profiles` and `ranges` per worker.
std::vector<double> expected_compute_seconds(const std::vector<profile::DeviceProfile>& profiles,
                                             const std::vector<model::UnitRange>& ranges);

// The middle value (the mean of the two middle ones for an even count); `values` is reordered.
// nullopt when empty.
std::optional<double> median(std::vector<double> values);

}  // namespace ll::cluster
