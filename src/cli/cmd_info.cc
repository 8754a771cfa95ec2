// `lingualinked info`: what a model file holds and what it needs to run.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "model/model.h"
#include "model/summary.h"
#include "model/units.h"

namespace ll::cli {

void add_info_command(CLI::App& app) {
  auto args = std::make_shared<ModelOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Print a model's architecture, sizes, tensor types and memory needs");
  cmd->add_option("model", args->path, "model file (GGUF or llama2.c .bin)")->required();
  cmd->add_option("--tokenizer", args->tokenizer, "tokenizer.bin for a llama2.c checkpoint");
  cmd->add_option("-c,--ctx-size", args->n_ctx, "context length for the KV-cache estimate")->check(context_range());
  add_kv_type_options(*cmd, args->kv_types);
  cmd->callback([args] {
    auto m = load_model_or_exit(*args);
    const auto& hp = m->hparams();
    const auto& f = m->file();
    const model::ModelSummary summary = model::summarize(*m);
    const int64_t n_ctx = model::context_or_default(hp, args->n_ctx);
    const double mib = 1024.0 * 1024.0;
    const uint64_t kv_per_token = model::kv_bytes_per_token(hp, m->file_units(), args->kv_types);
    std::printf("file:            %s (GGUF v%u, %zu tensors, %zu metadata keys)\n", f.name().c_str(), f.version(),
                f.tensors().size(), f.metadata().size());
    if (m->is_shard()) {
      std::printf("shard:           %s; parameters, tensors and memory count only these\n",
                  model::describe_units(hp, m->file_units()).c_str());
    }
    std::printf("architecture:    %s%s%s\n", hp.arch.c_str(), hp.name.empty() ? "" : " - ", hp.name.c_str());
    std::printf("parameters:      %.2f M\n", summary.n_params / 1e6);
    std::printf("vocabulary:      %lld tokens (%s)\n", static_cast<long long>(hp.n_vocab),
                m->has_vocab() ? (m->vocab().model + " tokenizer").c_str() : "no tokenizer in this file");
    std::printf("layers:          %lld (units: %lld = embed + attn/ffn per layer + head)\n",
                static_cast<long long>(hp.n_layer), static_cast<long long>(model::unit_count(hp)));
    std::printf("embedding:       %lld, ffn %lld, heads %lld (kv %lld), head dim %lld, rope dims %lld\n",
                static_cast<long long>(hp.n_embd), static_cast<long long>(hp.n_ff), static_cast<long long>(hp.n_head),
                static_cast<long long>(hp.n_head_kv), static_cast<long long>(hp.head_dim),
                static_cast<long long>(hp.n_rot));
    if (m->arch().rope == model::RopeKind::None) {
      std::printf("positions:       ALiBi\n");
    } else {
      std::printf("rope:            %s, base %g, scale %g%s\n", m->arch().rope == model::RopeKind::Neox ? "neox" : "norm",
                  hp.rope_freq_base, hp.rope_freq_scale, m->weights().rope_freqs.present() ? ", frequency factors" : "");
    }
    if (hp.n_swa > 0) std::printf("sliding window:  %lld positions\n", static_cast<long long>(hp.n_swa));
    if (hp.attn_softcap > 0) {
      std::printf("soft-capping:    attention %g, final logits %g\n", hp.attn_softcap, hp.final_softcap);
    }
    std::printf("context:         %lld trained\n", static_cast<long long>(hp.n_ctx_train));
    std::printf("tensor types:\n");
    for (const auto& [name, totals] : summary.by_type) {
      std::printf("  %-8s %4d tensors %10.2f MiB\n", name.c_str(), totals.tensors, totals.bytes / mib);
    }
    std::printf("memory:          weights %.2f MiB (mapped) + KV cache %.2f MiB at %lld positions (K %s, V %s, %.1f "
                "KiB/token)\n", m->weight_bytes() / mib, kv_per_token * n_ctx / mib, static_cast<long long>(n_ctx),
                model::kv_type_name(args->kv_types.k).c_str(), model::kv_type_name(args->kv_types.v).c_str(),
                kv_per_token / 1024.0);
  });
}

}  // namespace ll::cli
