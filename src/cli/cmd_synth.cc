// `lingualinked synth`: write a random-weight model of a real shape.
#include <cstdio>

#include <unistd.h>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "model/synth.h"

namespace ll::cli {

void add_synth_command(CLI::App& app) {
  auto o = std::make_shared<model::SynthOptions>();
  auto output = std::make_shared<std::string>();
  std::string presets;
  for (const auto& p : model::synth_presets()) presets += (presets.empty() ? "" : ", ") + p.name;
  CLI::App* cmd = app.add_subcommand("synth", "Write a random-weight model of a real shape (for speed and memory tests)");
  cmd->add_option("--preset", o->preset, "shape: " + presets)->required();
  cmd->add_option("--type", o->type, "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k, q5_k, q6_k, q3_k, q2_k, iq4_xs, or a mix: q3_k_m, q4_k_m, q5_k_m")->capture_default_str();
  cmd->add_option("--vocab", o->vocab_path, "GGUF with a SentencePiece vocabulary (e.g. ggml-vocab-llama-spm.gguf)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--layers", o->n_layer_override, "override the number of layers");
  cmd->add_option("--seed", o->seed, "seed of the random weights")->capture_default_str();
  cmd->add_option("-o,--output", *output, "output GGUF file")->required();
  cmd->callback([o, output] {
    ThreadPool pool(default_thread_count());
    // A live counter on a terminal; a line per tenth of the work in a log.
    const bool tty = isatty(STDERR_FILENO) != 0;
    Status s = model::write_synthetic_model(*o, *output, pool, [tty](size_t done, size_t total) {
      if (tty) {
        std::fprintf(stderr, "\rquantizing tensors: %zu/%zu", done, total);
        if (done == total) std::fputc('\n', stderr);
      } else if (done * 10 / total != (done - 1) * 10 / total) {
        std::fprintf(stderr, "quantizing tensors: %zu/%zu\n", done, total);
      }
    });
    if (!s.ok()) fail(s.message());
    std::fprintf(stderr, "wrote %s\n", output->c_str());
  });
}

}  // namespace ll::cli
