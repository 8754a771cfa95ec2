#pragma once
// A worker served from a thread of this process: lets the head hold a segment itself. It is
// an ordinary Worker on a real socket (so the pipeline, its encryption and the planner treat
// it like any other device), whose identity is the head's own key pair.
// Threading: it owns the Worker and the thread serving it; its owner calls address() and
// destroys it from any one thread, never touching the Worker itself.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/head.h"
#include "cluster/worker.h"
#include "core/status.h"

namespace ll::cluster {

class InProcessWorker {
 public:
  // `listen`: where the other workers can reach it (tcp://0.0.0.0:PORT is not an address they
  // can use; give the host's own address, or tcp://127.0.0.1:0 when all are local).
  // `model_dirs`: where the head may name model files (WorkerOptions::model_dirs); `no_mmap`:
  // its segment's weights read into memory (WorkerOptions::no_mmap).
  static Result<std::unique_ptr<InProcessWorker>> start(const std::string& listen, const net::KeyPair& head_keys,
                                                        bool insecure, int threads, bool no_mmap,
                                                        std::vector<std::string> model_dirs,
                                                        const std::string& name = "head");
  ~InProcessWorker();  // stops serving and joins the thread

  // Its address for HeadOptions::workers (pinned to the head's own public key).
  WorkerAddress address() const;

 private:
  InProcessWorker() = default;
  std::unique_ptr<Worker> worker_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  bool insecure_ = false;
};

}  // namespace ll::cluster
