#pragma once
// Where `lingualinked demo` gets a model when none is given with -m.
#include <functional>
#include <string>

#include "core/status.h"

namespace ll::model {

struct DemoModelOptions {
  bool allow_download = true;
  // The checkout's shared models are looked for as shared/data/... beside every ancestor of
  // this file's directory; "" skips them (tests, which must not find the real ones).
  std::string exe_path = "/proc/self/exe";
  // Told what a download is doing (where it goes, what it wrote); curl draws its own progress bar on stderr.
  std::function<void(const std::string&)> progress = [](const std::string&) {};
};

// In order: $LINGUALINKED_MODEL (an error naming it if it is not a file); stories15M.gguf in
// the cache ($XDG_CACHE_HOME/lingualinked/models, else ~/.cache/lingualinked/models); the
// shared stories260K beside the checkout; then, if allowed and curl is on PATH, llama2.c's
// stories15M downloaded into the cache and converted to GGUF there. When all of these fail the
// error says how to get a model.
Result<std::string> find_or_fetch_demo_model(const DemoModelOptions& options = {});

// The cache directory above; "" when neither XDG_CACHE_HOME (absolute) nor HOME is set.
std::string demo_model_cache_dir();

}  // namespace ll::model
