#include "plan/cost_model.h"

#include <algorithm>

#include "core/energy_figures.h"

namespace ll::plan {

uint64_t working_buffer_bytes(const model::HParams& hp, int64_t n_ctx, int threads, int64_t batch) {
  const int64_t floats = batch * (3 * hp.n_embd + 2 * hp.q_dim() + 2 * hp.n_ff) + threads * n_ctx + hp.n_vocab;
  return static_cast<uint64_t>(floats) * sizeof(float);
}

uint64_t working_buffer_bytes(const model::HParams& hp, int64_t n_ctx, const std::vector<profile::DeviceProfile>& devices,
                              int64_t batch) {
  int threads = 1;
  for (const auto& d : devices) threads = std::max(threads, d.threads);
  return working_buffer_bytes(hp, n_ctx, threads, batch);
}

Result<CostModel> CostModel::create(const graph::Graph& g, const std::vector<profile::DeviceProfile>& devices,
                                    const std::vector<profile::LinkProfile>& links, const CostOptions& options) {
  const int64_t n = static_cast<int64_t>(g.units.size());
  if (n == 0) return Status::Error("the model has no units");
  if (devices.empty()) return Status::Error("no devices to plan for");
  if (options.n_ctx < 1 || options.n_parallel < 1) return Status::Error("--ctx and --parallel must be at least 1");
  CostModel c;
  c.graph_ = g;
  c.devices_ = devices;
  c.options_ = options;
  for (size_t d = 0; d < devices.size(); ++d) {
    const auto& p = devices[d];
    for (size_t e = 0; e < d; ++e) {
      if (devices[e].name == p.name) return Status::Errorf("two devices are named '{}'", p.name);
    }
    if (static_cast<int64_t>(p.decode_seconds.size()) != n) {
      return Status::Errorf(
          "the profile of '{}' times {} units but the model has {}: it was measured for another "
          "model ('{}'); profile the device again",
          p.name, p.decode_seconds.size(), n, p.model);
    }
    if (p.energy) LL_RETURN_IF_ERROR(check_energy_figures(*p.energy, p.name));
    if (p.battery_percent) LL_RETURN_IF_ERROR(check_battery_percent(*p.battery_percent, p.name));
    std::vector<double> prefix(n + 1, 0.0);
    for (int64_t u = 0; u < n; ++u) prefix[u + 1] = prefix[u] + p.decode_seconds[u];
    c.compute_prefix_.push_back(std::move(prefix));
  }

  c.energy_known_ = std::all_of(devices.begin(), devices.end(), [](const auto& d) { return d.energy.has_value(); });
  for (const auto& d : devices) c.idle_watts_ += d.energy ? d.energy->idle_watts : 0.0;
  const int64_t share = (n + static_cast<int64_t>(devices.size()) - 1) / static_cast<int64_t>(devices.size());
  for (const auto& d : devices) {
    c.max_units_.push_back(d.battery_percent && *d.battery_percent < kLowBatteryPercent ? share : n);
  }

  // Links: the measured direction, else the reverse one, else the default.
  const size_t nd = devices.size();
  c.link_.assign(nd, std::vector<profile::LinkProfile>(nd));
  for (size_t a = 0; a < nd; ++a) {
    for (size_t b = 0; b < nd; ++b) {
      if (a == b) continue;
      const profile::LinkProfile* found = nullptr;
      for (const auto& l : links) {
        if (l.from == devices[a].name && l.to == devices[b].name) found = &l;
      }
      for (const auto& l : links) {
        if (!found && l.from == devices[b].name && l.to == devices[a].name) found = &l;
      }
      if (!found && options.default_link) found = &*options.default_link;
      if (!found) {
        return Status::Errorf("no link profile between '{}' and '{}': measure it or give a default link",
                              devices[a].name, devices[b].name);
      }
      if (found->bandwidth_bytes_per_s <= 0 || found->rtt_seconds < 0) {
        return Status::Errorf("the link between '{}' and '{}' needs a bandwidth > 0 and a round-trip time >= 0",
                              devices[a].name, devices[b].name);
      }
      c.link_[a][b] = *found;
      c.link_[a][b].from = devices[a].name;
      c.link_[a][b].to = devices[b].name;
    }
  }

  const uint64_t kv_positions = static_cast<uint64_t>(options.n_ctx) * static_cast<uint64_t>(options.n_parallel);
  c.memory_prefix_.assign(n + 1, 0);
  for (int64_t u = 0; u < n; ++u) {
    const auto& unit = g.units[u];
    c.weight_bytes_ += unit.weight_bytes;
    c.kv_bytes_ += unit.kv_bytes_per_token * kv_positions;
    c.memory_prefix_[u + 1] = c.memory_prefix_[u] + unit.weight_bytes + unit.kv_bytes_per_token * kv_positions;
  }

  // Every tensor crosses the cuts between its producer and its last reader.
  c.cut_bytes_.assign(n, 0);
  for (const auto& t : g.tensors) {
    if (t.producer < 0) {
      c.return_bytes_ += t.bytes_per_token;  // graph inputs: the token ids the last device samples
      continue;
    }
    int64_t last_reader = -1;
    for (int64_t u = 0; u < n; ++u) {
      const auto& in = g.units[u].inputs;
      if (std::find(in.begin(), in.end(), t.name) != in.end()) last_reader = u;
    }
    for (int64_t u = t.producer; u < last_reader; ++u) c.cut_bytes_[u] += t.bytes_per_token;
  }
  return c;
}

uint64_t CostModel::capacity_bytes(int d) const {
  const uint64_t limit = limit_bytes(d);
  return limit > options_.working_bytes ? limit - options_.working_bytes : 0;
}

double CostModel::transfer_seconds(uint64_t bytes, int from, int to) const {
  if (from == to) return 0.0;
  const profile::LinkProfile& l = link_[from][to];
  return static_cast<double>(bytes) / l.bandwidth_bytes_per_s + l.rtt_seconds / 2;
}

double CostModel::stage_joules(int d, int to, double compute, double stage, uint64_t bytes) const {
  if (!energy_known_) return 0.0;
  const EnergyFigures& e = *devices_[d].energy;
  const double radio = to >= 0 && to != d ? e.radio_joules_per_byte + devices_[to].energy->radio_joules_per_byte : 0.0;
  return idle_watts_ * stage + (e.compute_watts - e.idle_watts) * compute + radio * static_cast<double>(bytes);
}

Status CostModel::check_assignment(const std::vector<model::UnitRange>& ranges) const {
  if (static_cast<int>(ranges.size()) != n_devices()) {
    return Status::Errorf("{} unit ranges for {} devices", ranges.size(), n_devices());
  }
  int64_t next = 0;
  for (const auto& r : ranges) {
    if (r.empty()) continue;
    if (r.begin != next || r.end > n_units()) {
      return Status::Errorf("unit range [{}, {}) does not continue at unit {}", r.begin, r.end, next);
    }
    next = r.end;
  }
  if (next != n_units()) return Status::Errorf("units {}..{} are on no device", next, n_units() - 1);
  return Status::Ok();
}

Evaluation CostModel::evaluate(const std::vector<model::UnitRange>& ranges) const {
  Evaluation e;
  e.stages.resize(ranges.size());
  std::vector<int> used;
  for (int d = 0; d < n_devices(); ++d) {
    if (!ranges[d].empty()) used.push_back(d);
  }
  for (size_t i = 0; i < used.size(); ++i) {
    const int d = used[i];
    StageCost& s = e.stages[d];
    s.units = ranges[d];
    s.compute_seconds = compute_seconds(s.units, d);
    s.memory_bytes = memory_bytes(s.units) + options_.working_bytes;
    if (i + 1 < used.size()) {
      s.send_to = used[i + 1];
      s.send_bytes = cut_bytes(s.units.end - 1);
      s.transfer_seconds = cut_seconds(s.units.end - 1, d, s.send_to);
    } else if (d != used.front()) {
      s.send_to = used.front();
      s.send_bytes = return_bytes();
      s.transfer_seconds = return_seconds(d, s.send_to);
    }
    e.latency_seconds += s.compute_seconds + s.transfer_seconds;
    e.bottleneck_seconds = std::max(e.bottleneck_seconds, s.compute_seconds + s.transfer_seconds);
    if (s.memory_bytes > limit_bytes(d)) e.fits = false;
    if (s.units.end - s.units.begin > max_units(d)) e.within_shares = false;
  }
  if (!energy_known_) return e;
  for (int d = 0; d < n_devices(); ++d) {
    const EnergyFigures& f = *devices_[d].energy;
    e.stages[d].joules += f.idle_watts * e.latency_seconds;
  }
  for (int d = 0; d < n_devices(); ++d) {
    const StageCost& s = e.stages[d];
    const EnergyFigures& f = *devices_[d].energy;
    e.stages[d].joules += (f.compute_watts - f.idle_watts) * s.compute_seconds;
    if (s.send_to >= 0 && s.send_to != d) {
      e.stages[d].joules += f.radio_joules_per_byte * static_cast<double>(s.send_bytes);
      e.stages[s.send_to].joules += devices_[s.send_to].energy->radio_joules_per_byte * static_cast<double>(s.send_bytes);
    }
  }
  for (const StageCost& s : e.stages) e.joules += s.joules;
  return e;
}

}  // namespace ll::plan
