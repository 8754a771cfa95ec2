#include "model/demo_model.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>
#include <vector>

#include "model/llama2c_import.h"

extern char** environ;

namespace ll::model {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCheckpointUrl = "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin";
constexpr const char* kTokenizerUrl = "https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin";
constexpr const char* kCachedModel = "stories15M.gguf";

std::string getenv_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// shared/data/models/stories260K/stories260K.gguf beside an ancestor of the executable's
// directory: the checkout's shared models, which CI and the tests use.
std::string shared_stories260k(const std::string& exe_path) {
  if (exe_path.empty()) return "";
  std::error_code ec;
  const fs::path exe = fs::weakly_canonical(exe_path, ec);
  if (ec) return "";
  for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
    const fs::path candidate = dir.parent_path() / "shared/data/models/stories260K/stories260K.gguf";
    if (is_file(candidate)) return candidate.lexically_normal().string();
  }
  return "";
}

// Like execvp's search, but done here so that a missing curl is a plain message, not a failed exec.
std::string find_on_path(const std::string& name) {
  const std::string path = getenv_or_empty("PATH");
  for (size_t begin = 0; begin <= path.size();) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    if (end > begin) {
      const fs::path candidate = fs::path(path.substr(begin, end - begin)) / name;
      if (is_file(candidate) && access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    begin = end + 1;
  }
  return "";
}

std::string curl_failure(int code) {
  switch (code) {
    case 6: return "could not resolve the host: is there a network?";
    case 7: return "could not connect to the server";
    case 22: return "the server answered with an HTTP error";
    case 28: return "timed out";
    default: return "see curl's message above";
  }
}

// Downloads `url` to `out` with curl (progress on stderr), under a temporary name that is
// renamed only when curl reports success, so an interrupted download never looks complete.
Status download(const std::string& curl, const std::string& url, const fs::path& out) {
  const std::string part = fmt::format("{}.part-{}", out.string(), getpid());
  // A short connect timeout: without a network the demo should say so at once, not hang.
  std::vector<std::string> args = {curl, "--fail", "--location", "--proto", "=https", "--connect-timeout", "10",
                                   "--max-time", "1800", "--progress-bar", "--output", part, url};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);  // stdout carries the story
  pid_t pid = 0;
  const int err = posix_spawn(&pid, curl.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return Status::Errorf("cannot run {}: {}", curl, std::strerror(err));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Status::Errorf("waiting for {}: {}", curl, std::strerror(errno));
  }
  std::error_code ec;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fs::remove(part, ec);
    if (!WIFEXITED(status)) return Status::Errorf("curl was killed while downloading {}", url);
    return Status::Errorf("curl could not download {} (exit status {}: {})", url, WEXITSTATUS(status),
                          curl_failure(WEXITSTATUS(status)));
  }
  fs::rename(part, out, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(part, ignored);
    return Status::Errorf("cannot rename {} to {}: {}", part, out.string(), ec.message());
  }
  return Status::Ok();
}

// stories15M.bin and tokenizer.bin into `dir`, converted there to stories15M.gguf.
Result<std::string> fetch_stories15m(const fs::path& dir, const std::string& curl,
                                     const DemoModelOptions& options) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Errorf("cannot create the model cache {}: {}", dir.string(), ec.message());
  const fs::path bin = dir / "stories15M.bin", tok = dir / "tokenizer.bin", gguf = dir / kCachedModel;
  options.progress(fmt::format("no model given: downloading stories15M (60 MB) into {}", dir.string()));
  for (const auto& [url, path] : {std::pair{kCheckpointUrl, bin}, std::pair{kTokenizerUrl, tok}}) {
    if (is_file(path)) continue;  // complete (renamed), left by a run that stopped after it
    LL_RETURN_IF_ERROR(download(curl, url, path));
  }
  const Status converted = model::convert_llama2c(bin.string(), tok.string(), gguf.string());
  // The GGUF holds both inputs; and inputs that failed to convert should be fetched afresh.
  fs::remove(bin, ec);
  fs::remove(tok, ec);
  if (!converted.ok()) return Status::Errorf("converting the download failed: {}", converted.message());
  options.progress("wrote " + gguf.string());
  return gguf.string();
}

std::string how_to_get_a_model(const std::string& cache_dir) {
  return fmt::format(
      "Pass -m MODEL.gguf or set LINGUALINKED_MODEL=MODEL.gguf; any Llama-family GGUF works. To get stories15M "
      "(60 MB), on a machine with a network:\n"
      "  curl -fLO {}\n"
      "  curl -fLO {}\n"
      "  lingualinked convert stories15M.bin --tokenizer tokenizer.bin -o stories15M.gguf\n"
      "then pass -m stories15M.gguf{}. Or make a model with random weights from a GGUF vocabulary:\n"
      "  lingualinked synth --preset test-4l --vocab VOCAB.gguf -o test.gguf",
      kCheckpointUrl, kTokenizerUrl,
      cache_dir.empty() ? "" : fmt::format(" (or copy it to {}/ to make it the default)", cache_dir));
}

}  // namespace

std::string demo_model_cache_dir() {
  // XDG: a relative XDG_CACHE_HOME is invalid and ignored.
  const std::string xdg = getenv_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty() && fs::path(xdg).is_absolute()) return (fs::path(xdg) / "lingualinked/models").string();
  const std::string home = getenv_or_empty("HOME");
  if (!home.empty()) return (fs::path(home) / ".cache/lingualinked/models").string();
  return "";
}

Result<std::string> find_or_fetch_demo_model(const DemoModelOptions& options) {
  if (const std::string env = getenv_or_empty("LINGUALINKED_MODEL"); !env.empty()) {
    if (!is_file(env)) return Status::Errorf("LINGUALINKED_MODEL is '{}', but there is no such file", env);
    return env;
  }
  const std::string cache = demo_model_cache_dir();
  if (!cache.empty() && is_file(fs::path(cache) / kCachedModel)) return (fs::path(cache) / kCachedModel).string();
  if (std::string shared = shared_stories260k(options.exe_path); !shared.empty()) return shared;

  std::string why;
  if (!options.allow_download) {
    why = "downloads are off";
  } else if (cache.empty()) {
    why = "neither XDG_CACHE_HOME nor HOME is set, so there is no cache to download one into";
  } else if (const std::string curl = find_on_path("curl"); curl.empty()) {
    why = "curl is not on PATH to download one";
  } else {
    auto fetched = fetch_stories15m(cache, curl, options);
    if (fetched.ok()) return fetched;
    why = "downloading one failed: " + fetched.error();
  }
  return Status::Errorf(
      "no model: LINGUALINKED_MODEL is not set, there is no {}, no shared stories260K beside this checkout, "
      "and {}.\n{}",
      cache.empty() ? std::string(kCachedModel) + " in a cache" : (fs::path(cache) / kCachedModel).string(), why,
      how_to_get_a_model(cache));
}

}  // namespace ll::model
