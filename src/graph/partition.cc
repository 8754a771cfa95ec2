#include "graph/partition.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

namespace ll::graph {

int Partition::segment_of(int64_t unit) const {
  for (size_t s = 0; s < segments.size(); ++s) {
    if (segments[s].contains(unit)) return static_cast<int>(s);
  }
  return -1;
}

std::vector<const Dependency*> Partition::inputs_of(int s) const {
  std::vector<const Dependency*> out;
  for (const auto& d : dependencies) {
    if (std::find(d.consumer_segments.begin(), d.consumer_segments.end(), s) != d.consumer_segments.end()) {
      out.push_back(&d);
    }
  }
  return out;
}

std::vector<const Dependency*> Partition::outputs_of(int s) const {
  std::vector<const Dependency*> out;
  for (const auto& d : dependencies) {
    if (d.producer_segment == s) out.push_back(&d);
  }
  return out;
}

std::string Partition::describe(const Graph& g, const std::vector<std::string>& segment_files) const {
  // Numbered from 1, as the shard files of the segments are (shard_file_name).
  std::ostringstream os;
  for (size_t s = 0; s < segments.size(); ++s) {
    const auto& r = segments[s];
    os << fmt::format("segment {}: units {}..{} ({} .. {})", s + 1, r.begin, r.end - 1, g.units[r.begin].name,
                      g.units[r.end - 1].name);
    if (s < segment_files.size()) os << " in " << segment_files[s];
    os << '\n';
  }
  for (const auto& d : dependencies) {
    std::string from = d.producer_segment < 0 ? "input" : fmt::format("segment {}", d.producer_segment + 1);
    std::vector<int> consumers = d.consumer_segments;
    for (int& c : consumers) ++c;
    os << fmt::format("  {} -> segment {}: '{}' ({} bytes/token)\n", from, fmt::join(consumers, ","), d.tensor,
                      d.bytes_per_token);
  }
  return os.str();
}

Result<Partition> partition_from_cuts(const Graph& g, const std::vector<int64_t>& cuts) {
  const int64_t n = static_cast<int64_t>(g.units.size());
  Partition p;
  int64_t begin = 0;
  for (int64_t c : cuts) {
    if (c <= begin || c >= n) {
      return Status::Errorf("cut at unit {} is invalid: cuts must increase strictly and lie between 1 and {}", c,
                            n - 1);
    }
    p.segments.push_back({begin, c});
    begin = c;
  }
  p.segments.push_back({begin, n});

  // For every tensor, the segments (other than its producer's) whose units read it.
  std::map<std::string, size_t> order;
  for (size_t i = 0; i < g.tensors.size(); ++i) order[g.tensors[i].name] = i;
  std::vector<std::vector<int>> consumers(g.tensors.size());
  for (int64_t u = 0; u < n; ++u) {
    const int s = p.segment_of(u);
    for (const auto& in : g.units[u].inputs) {
      auto it = order.find(in);
      if (it == order.end()) return Status::Errorf("unit '{}' reads unknown tensor '{}'", g.units[u].name, in);
      const TensorSpec& t = g.tensors[it->second];
      if (t.producer >= u) {
        return Status::Errorf("unit '{}' reads '{}' before it is produced", g.units[u].name, in);
      }
      const int producer = t.producer < 0 ? -1 : p.segment_of(t.producer);
      auto& c = consumers[it->second];
      if (producer != s && std::find(c.begin(), c.end(), s) == c.end()) c.push_back(s);
    }
  }
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    if (consumers[i].empty()) continue;
    const TensorSpec& t = g.tensors[i];
    p.dependencies.push_back({t.name, t.producer < 0 ? -1 : p.segment_of(t.producer), consumers[i], t.bytes_per_token});
  }
  return p;
}

Result<std::vector<int64_t>> parse_cuts(const Graph& g, const std::string& text) {
  std::vector<int64_t> cuts;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    int64_t index = -1;
    for (size_t u = 0; u < g.units.size(); ++u) {
      if (g.units[u].name == item) index = static_cast<int64_t>(u);
    }
    if (index < 0) {
      char* end = nullptr;
      long long v = std::strtoll(item.c_str(), &end, 10);
      if (end == item.c_str() || *end != '\0') {
        return Status::Errorf("cut '{}' is neither a unit index nor a unit name such as 'attn[3]'", item);
      }
      index = v;
    }
    cuts.push_back(index);
  }
  return cuts;
}

std::vector<int64_t> even_layer_cuts(const Graph& g, int n_segments) {
  int64_t n_layers = 0;
  for (const auto& u : g.units) n_layers += u.unit.kind == model::UnitKind::Attention;
  std::vector<int64_t> cuts;
  n_segments = static_cast<int>(std::clamp<int64_t>(n_segments, 1, std::max<int64_t>(n_layers, 1)));
  for (int s = 1; s < n_segments; ++s) {
    const int64_t layer = n_layers * s / n_segments;
    cuts.push_back(1 + 2 * layer);  // the unit index of attn[layer]
  }
  return cuts;
}

Result<Partition> partition_from_cuts_or_count(const Graph& g, const std::string& cuts_text, int n_segments) {
  std::vector<int64_t> cuts;
  if (!cuts_text.empty()) {
    LL_ASSIGN_OR_RETURN(cuts, parse_cuts(g, cuts_text));
  } else if (n_segments > 0) {
    cuts = even_layer_cuts(g, n_segments);
  } else {
    return Status::Error("give --cuts or --segments");
  }
  return partition_from_cuts(g, cuts);
}

}  // namespace ll::graph
