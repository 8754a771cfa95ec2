#include "server/cluster_engine.h"

#include <cstdio>
#include <set>

namespace ll::server {

// A job between its caller's thread and the driver: the request, the caller's stop flag, and
// the text the driver produced that the caller has not taken yet.
struct ClusterEngine::Job {
  cluster::Request request;
  std::atomic<bool>* stop = nullptr;  // the caller's; valid until `done`
  std::mutex mutex;
  std::condition_variable changed;
  std::string text;  // not yet streamed
  bool done = false;
  EngineOutcome outcome;

  // From the driver: the caller is woken by notify() after the turn, off the path from one
  // token to the next step.
  void push_text(const std::string& piece) {
    std::lock_guard lock(mutex);
    text += piece;
  }
  void notify() { changed.notify_one(); }
  void end(EngineOutcome o) {
    {
      std::lock_guard lock(mutex);
      outcome = std::move(o);
      done = true;
    }
    changed.notify_one();
  }
};

ClusterEngine::ClusterEngine(cluster::Head& head, std::unique_ptr<text::Tokenizer> tokenizer, int64_t n_ctx,
                             size_t parallel)
    : head_(head), tokenizer_(std::move(tokenizer)), n_ctx_(n_ctx), parallel_(std::max<size_t>(parallel, 1)) {
  driver_ = std::thread([this] { drive(); });
}

ClusterEngine::~ClusterEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  driver_.join();
}

EngineOutcome ClusterEngine::generate(const EngineJob& job, const OnText& on_text, std::atomic<bool>& stop) {
  auto j = std::make_shared<Job>();
  j->request.prompt_tokens = tokenizer_->encode(job.prompt, /*add_special=*/true, job.parse_special);
  if (j->request.prompt_tokens.empty()) j->request.prompt_tokens.push_back(tokenizer_->vocab().bos);
  j->request.n_predict = job.max_tokens;
  j->request.sampling = job.sampling;
  j->stop = &stop;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return {Status::Error("the server is stopping")};
    waiting_.push_back(j);
  }
  wake_.notify_all();
  // The text is streamed from this thread, so a slow client holds back only its own job.
  std::unique_lock lock(j->mutex);
  while (true) {
    j->changed.wait(lock, [&] { return j->done || !j->text.empty(); });
    if (!j->text.empty()) {
      const std::string piece = std::move(j->text);
      j->text.clear();
      lock.unlock();
      on_text(piece);
      lock.lock();
      continue;
    }
    EngineOutcome outcome = j->outcome;
    if (stop.load()) outcome.status = Status::Ok();  // ended on purpose
    return outcome;
  }
}

void ClusterEngine::drive() {
  std::unique_lock lock(mutex_);
  while (true) {
    // Idle: keep the session alive until a job comes.
    const bool woken = wake_.wait_for(lock, head_.keep_alive_interval(), [this] { return stopping_ || !waiting_.empty(); });
    if (stopping_) break;
    if (!woken) {
      lock.unlock();
      const Status alive = head_.keep_alive();
      if (!alive.ok()) std::fprintf(stderr, "warning: %s\n", alive.message().c_str());
      lock.lock();
      continue;
    }
    lock.unlock();
    run_jobs();
    lock.lock();
  }
  // No caller waits any more (the server stopped first), but end any job left all the same.
  for (auto& j : waiting_) j->end({Status::Error("the server is stopping")});
  waiting_.clear();
}

void ClusterEngine::run_jobs() {
  std::map<size_t, std::shared_ptr<Job>> running;  // by the run's request index
  std::set<Job*> streamed;  // jobs with new text this turn
  HeadStatusFeed* feed = feed_.load();
  if (feed != nullptr) feed->begin_run();
  std::unique_ptr<cluster::GenerationRun> run = head_.open_run(
      [&](size_t i, const std::string& text) {
        auto it = running.find(i);
        if (it == running.end()) return;
        it->second->push_text(text);
        streamed.insert(it->second.get());
      },
      /*trace_tokens=*/feed != nullptr);
  if (!run) {
    std::lock_guard lock(mutex_);
    for (auto& j : waiting_) j->end({Status::Error("no model loaded")});
    waiting_.clear();
    return;
  }
  while (true) {
    admit_waiting(*run, running);
    for (auto& [i, j] : running) {
      if (j->stop->load()) run->cancel(i);
    }
    for (Job* j : streamed) j->notify();
    streamed.clear();
    // Hand each ended job its outcome, and free its place in the run for a later one.
    for (auto it = running.begin(); it != running.end();) {
      if (!run->ended(it->first)) {
        ++it;
        continue;
      }
      cluster::Generation g = run->release(it->first);
      it->second->end({g.status, g.prompt_tokens.size(), g.tokens.size()});
      it = running.erase(it);
    }
    if (running.empty()) {
      std::lock_guard lock(mutex_);
      const bool more = !waiting_.empty() && !stopping_;
      if (!more && !run->active()) break;  // (active: a cancelled step still on its way back)
      if (more) continue;
    }
    run->turn();
    if (feed != nullptr) feed->follow();
  }
  head_.close_run(*run);
  if (feed != nullptr) feed->follow();
}

void ClusterEngine::admit_waiting(cluster::GenerationRun& run, std::map<size_t, std::shared_ptr<Job>>& running) {
  std::lock_guard lock(mutex_);
  while (!waiting_.empty() && running.size() < parallel_) {
    std::shared_ptr<Job> j = std::move(waiting_.front());
    waiting_.pop_front();
    const size_t i = run.admit(j->request);
    running.emplace(i, std::move(j));
  }
}

}  // namespace ll::server
