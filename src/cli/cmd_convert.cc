// `lingualinked convert`: llama2.c checkpoint + tokenizer -> GGUF.
#include <cstdio>

#include "cli/commands.h"
#include "model/llama2c_import.h"

namespace ll::cli {

void add_convert_command(CLI::App& app) {
  struct Args {
    std::string checkpoint, tokenizer, output;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a llama2.c checkpoint (.bin) to GGUF");
  cmd->add_option("checkpoint", args->checkpoint, "llama2.c checkpoint")->required()->check(CLI::ExistingFile);
  cmd->add_option("--tokenizer", args->tokenizer, "llama2.c tokenizer.bin")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output, "output GGUF file")->required();
  cmd->callback([args] {
    Status s = model::convert_llama2c(args->checkpoint, args->tokenizer, args->output);
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.message().c_str());
      throw CLI::RuntimeError(1);
    }
    std::fprintf(stderr, "wrote %s\n", args->output.c_str());
  });
}

}  // namespace ll::cli
