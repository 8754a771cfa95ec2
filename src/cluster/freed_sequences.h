#pragma once
// The sequences of a session its head freed lately. The head frees a sequence over its own link to
// each worker, so the free can overtake a step of that sequence still on its way from the previous
// worker; such a late step must not bring the sequence back (it would hold a slot for good, and a
// recovery's switch would find it without the state of the units the worker takes over).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_set>

namespace ll::cluster {

class FreedSequences {
 public:
  void add(uint64_t sequence) {
    if (!ids_.insert(sequence).second) return;
    order_.push_back(sequence);
    if (order_.size() > kRemembered) {
      ids_.erase(order_.front());
      order_.pop_front();
    }
  }
  bool contains(uint64_t sequence) const { return ids_.count(sequence) != 0; }

 private:
  // A late step is at most a link's latency behind its free; the head never reuses an id.
  static constexpr size_t kRemembered = 1024;
  std::deque<uint64_t> order_;
  std::unordered_set<uint64_t> ids_;
};

}  // namespace ll::cluster
