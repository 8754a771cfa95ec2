#pragma once
// The `stop` strings of a request: text is released as it is generated, except a tail that may
// still grow into a stop string, and nothing from the first stop string on (OpenAI leaves the
// stop string out of the text).
#include <string>
#include <string_view>
#include <vector>

namespace ll::server {

// Not thread-safe: one generation feeds it.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // The next piece of generated text; returns what can be sent now.
  std::string push(std::string_view piece);
  bool stopped() const { return stopped_; }
  // The generation ended without a stop string: what was held back.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // held back: may be the start of a stop string
  bool stopped_ = false;
};

}  // namespace ll::server
