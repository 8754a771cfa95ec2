#include "model/llama2c_import.h"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "core/mapped_file.h"
#include "gguf/gguf_writer.h"
#include "model/arch.h"

namespace ll::model {
namespace {

constexpr uint64_t kHeaderBytes = 7 * 4;
constexpr uint32_t kGgufMagic = 0x46554747;           // "GGUF"
constexpr uint32_t kLlama2cExportMagic = 0x616b3432;  // "ak42": llama2.c export versions 1 and 2
constexpr int32_t kBos = 1, kEos = 2, kUnk = 0;
constexpr int32_t kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeByte = 6;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

struct Config {
  int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;  // vocab_size was positive: output.weight is token_embd.weight
  int64_t head_size() const { return dim / n_heads; }
  int64_t kv_dim() const { return dim * n_kv_heads / n_heads; }

  HParams hparams() const {
    HParams hp;
    hp.arch = "llama";
    hp.n_vocab = vocab_size;
    hp.n_embd = dim;
    hp.n_layer = n_layers;
    hp.n_head = n_heads;
    hp.n_head_kv = n_kv_heads;
    hp.n_ff = hidden_dim;
    hp.head_dim = head_size();
    hp.n_rot = head_size();
    hp.n_ctx_train = seq_len;
    return hp;
  }

  std::string describe() const {
    return fmt::format("dim {}, hidden_dim {}, n_layers {}, n_heads {}, n_kv_heads {}, vocab_size {}, seq_len {}", dim,
                       hidden_dim, n_layers, n_heads, n_kv_heads, shared_classifier ? vocab_size : -vocab_size,
                       seq_len);
  }

  // fp32 values after the header, in file order. int32 inputs keep this far below 2^100.
  unsigned __int128 n_floats() const {
    using U = unsigned __int128;
    const U d = dim, h = hidden_dim, l = n_layers, v = vocab_size, kv = kv_dim();
    U n = v * d;                                  // tok_embeddings
    n += l * d + l * d * d * 2 + l * kv * d * 2;  // rms_att, wq, wo, wk, wv
    n += l * d + l * h * d * 3;                   // rms_ffn, w1, w2, w3
    n += d + U(seq_len) * head_size();            // rms_final, freq_cis_real + freq_cis_imag
    if (!shared_classifier) n += v * d;           // wcls
    return n;
  }
};

// Validates the 7-int32 header and the file size it implies.
Result<Config> parse_header(const uint8_t* data, uint64_t size, const std::string& path) {
  if (size >= 4 && load<uint32_t>(data) == kGgufMagic) {
    return Status::Errorf("{}: is a GGUF file, not a llama2.c checkpoint", path);
  }
  if (size >= 4 && load<uint32_t>(data) == kLlama2cExportMagic) {
    return Status::Errorf("{}: llama2.c export version {} is not supported, only legacy version 0 checkpoints", path,
                          size >= 8 ? load<int32_t>(data + 4) : -1);
  }
  if (size < kHeaderBytes) {
    return Status::Errorf("{}: truncated at byte {} while reading the 28-byte llama2.c header", path, size);
  }
  int32_t h[7];
  std::memcpy(h, data, sizeof h);
  Config c{h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[5] > 0};
  c.vocab_size = c.shared_classifier ? h[5] : -int64_t{h[5]};
  auto bad = [&](std::string_view why) {
    return Status::Errorf("{}: not a llama2.c checkpoint: header ({}) {}", path, c.describe(), why);
  };
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.seq_len <= 0 ||
      c.vocab_size == 0) {
    return bad("has a value that is not positive");
  }
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0) return bad("has n_heads not a multiple of n_kv_heads");
  if (c.dim % c.n_heads != 0 || c.head_size() % 2 != 0) return bad("has dim not a multiple of 2 * n_heads");
  const unsigned __int128 expected = kHeaderBytes + c.n_floats() * 4;
  if (expected != size) {
    return Status::Errorf("{}: file is {} bytes, but its llama2.c header ({}) describes {} bytes{}", path, size,
                          c.describe(), expected, expected > size ? ": the file is truncated" : "");
  }
  return c;
}

bool is_byte_token(std::string_view s) {
  auto hex = [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F'); };
  return s.size() == 6 && s.substr(0, 3) == "<0x" && hex(s[3]) && hex(s[4]) && s[5] == '>';
}

std::string gguf_spelling(std::string_view raw) {
  if (raw == "\n<s>\n") return "<s>";
  if (raw == "\n</s>\n") return "</s>";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    if (ch == ' ') {
      out += "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space
    } else {
      out += ch;
    }
  }
  return out;
}

// The writer references the mapped checkpoint, so both travel together.
struct Conversion {
  std::unique_ptr<MappedFile> checkpoint;
  gguf::GgufWriter writer;
};

Result<Conversion> prepare(const std::string& checkpoint_path, const std::string& tokenizer_path) {
  Conversion conv;
  LL_ASSIGN_OR_RETURN(conv.checkpoint, MappedFile::open(checkpoint_path));
  LL_ASSIGN_OR_RETURN(const Config c, parse_header(conv.checkpoint->data(), conv.checkpoint->size(), checkpoint_path));
  LL_ASSIGN_OR_RETURN(Llama2cTokenizer tok, read_llama2c_tokenizer(tokenizer_path));
  if (static_cast<int64_t>(tok.tokens.size()) != c.vocab_size) {
    return Status::Errorf("{}: has {} tokens, but the checkpoint {} has a vocabulary of {}", tokenizer_path,
                          tok.tokens.size(), checkpoint_path, c.vocab_size);
  }

  gguf::GgufWriter& w = conv.writer;
  const HParams hp = c.hparams();
  w.set_string("general.architecture", hp.arch);
  w.set_string("general.name", std::filesystem::path(checkpoint_path).stem().string());
  w.set_uint32("general.file_type", 0);  // all F32
  write_hparams(hp, w);
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string_array("tokenizer.ggml.tokens", tok.tokens);
  w.set_float32_array("tokenizer.ggml.scores", tok.scores);
  w.set_int32_array("tokenizer.ggml.token_type", tok.types);
  w.set_uint32("tokenizer.ggml.bos_token_id", kBos);
  w.set_uint32("tokenizer.ggml.eos_token_id", kEos);
  w.set_uint32("tokenizer.ggml.unknown_token_id", kUnk);
  w.set_bool("tokenizer.ggml.add_bos_token", true);

  // Weights in file order. A llama2.c matrix [out, in] (row-major) is a ggml tensor {in, out}.
  const int64_t d = c.dim, h = c.hidden_dim, L = c.n_layers, v = c.vocab_size, kv = c.kv_dim();
  const uint8_t* p = conv.checkpoint->data() + kHeaderBytes;
  auto take = [&p](int64_t n_floats) {
    const uint8_t* start = p;
    p += n_floats * 4;
    return start;
  };
  const uint8_t* tok_emb = take(v * d);  // [vocab, dim]
  const uint8_t* rms_att = take(L * d);  // [L, dim]
  const uint8_t* wq = take(L * d * d);   // [L, dim, dim]
  const uint8_t* wk = take(L * kv * d);  // [L, kv_dim, dim]
  const uint8_t* wv = take(L * kv * d);  // [L, kv_dim, dim]
  const uint8_t* wo = take(L * d * d);   // [L, dim, dim]
  const uint8_t* rms_ffn = take(L * d);  // [L, dim]
  const uint8_t* w1 = take(L * h * d);   // [L, hidden, dim]
  const uint8_t* w2 = take(L * d * h);   // [L, dim, hidden]
  const uint8_t* w3 = take(L * h * d);   // [L, hidden, dim]
  const uint8_t* rms_final = take(d);    // [dim]
  take(c.seq_len * c.head_size());       // freq_cis_real, freq_cis_imag: RoPE is computed instead
  const uint8_t* wcls = c.shared_classifier ? tok_emb : take(v * d);  // [vocab, dim]

  // Same order as llama.cpp's converter, so the data section matches its GGUF byte for byte;
  // names and shapes come from the architecture's table.
  const ArchSpec& arch = *find_arch(hp.arch);
  auto add = [&](WeightRole role, int64_t layer, const uint8_t* data) {
    const WeightInstance t{&arch.weight(role), layer};
    std::vector<int64_t> dims = weight_shape(*t.spec, hp);
    int64_t n = 1;
    for (int64_t x : dims) n *= x;
    w.add_tensor_ref(t.name(), DType::F32, std::move(dims), data, static_cast<size_t>(n) * 4);
  };
  add(WeightRole::TokenEmbd, -1, tok_emb);
  add(WeightRole::OutputNorm, -1, rms_final);
  add(WeightRole::Output, -1, wcls);
  for (int64_t l = 0; l < L; ++l) {
    add(WeightRole::AttnQ, l, wq + l * d * d * 4);
    add(WeightRole::AttnK, l, wk + l * kv * d * 4);
    add(WeightRole::AttnV, l, wv + l * kv * d * 4);
    add(WeightRole::AttnOutput, l, wo + l * d * d * 4);
    add(WeightRole::AttnNorm, l, rms_att + l * d * 4);
    add(WeightRole::FfnGate, l, w1 + l * h * d * 4);
    add(WeightRole::FfnDown, l, w2 + l * d * h * 4);
    add(WeightRole::FfnUp, l, w3 + l * h * d * 4);
    add(WeightRole::FfnNorm, l, rms_ffn + l * d * 4);
  }
  return conv;
}

}  // namespace

Result<Llama2cTokenizer> read_llama2c_tokenizer(const std::string& path) {
  LL_ASSIGN_OR_RETURN(auto file, MappedFile::open(path));
  const uint8_t* data = file->data();
  const uint64_t size = file->size();
  if (size < 4) return Status::Errorf("{}: truncated at byte 0 while reading max_token_length", path);
  if (load<uint32_t>(data) == kGgufMagic) return Status::Errorf("{}: is a GGUF file, not a llama2.c tokenizer", path);
  const auto max_token_length = load<int32_t>(data);
  if (max_token_length <= 0) {
    return Status::Errorf("{}: max_token_length at byte 0 is {}, not a llama2.c tokenizer", path, max_token_length);
  }

  // Each token takes at least 8 bytes, so the vectors grow with the file, never beyond it.
  Llama2cTokenizer tok;
  uint64_t pos = 4;
  while (pos < size) {
    const size_t id = tok.tokens.size();
    if (size - pos < 8) {
      return Status::Errorf("{}: truncated at byte {} while reading the score and length of token {}", path, pos, id);
    }
    const auto score = load<float>(data + pos);
    const auto len = load<int32_t>(data + pos + 4);
    if (len < 0 || static_cast<uint64_t>(len) > size - pos - 8) {
      return Status::Errorf("{}: token {} at byte {} has length {}, but {} bytes are left", path, id, pos + 4, len,
                            size - pos - 8);
    }
    const std::string_view raw(reinterpret_cast<const char*>(data + pos + 8), static_cast<size_t>(len));
    pos += 8 + static_cast<uint64_t>(len);

    std::string spelled = gguf_spelling(raw);
    int32_t type = kTypeNormal;
    if (id == kUnk) {
      type = kTypeUnknown;
    } else if (id == kBos || id == kEos) {
      type = kTypeControl;
    } else if (is_byte_token(spelled)) {
      type = kTypeByte;
    }
    tok.tokens.push_back(std::move(spelled));
    tok.scores.push_back(score);
    tok.types.push_back(type);
  }
  if (tok.tokens.empty()) return Status::Errorf("{}: has no tokens", path);
  return tok;
}

bool looks_like_llama2c(const std::string& path) { return check_llama2c_checkpoint(path).ok(); }

Status check_llama2c_checkpoint(const std::string& path) {
  LL_ASSIGN_OR_RETURN(const std::unique_ptr<MappedFile> file, MappedFile::open(path));
  const Result<Config> header = parse_header(file->data(), file->size(), path);
  return header.ok() ? Status::Ok() : header.status();
}

Result<std::vector<uint8_t>> llama2c_to_gguf(const std::string& checkpoint_path, const std::string& tokenizer_path) {
  LL_ASSIGN_OR_RETURN(const Conversion conv, prepare(checkpoint_path, tokenizer_path));
  return conv.writer.to_bytes();
}

Status convert_llama2c(const std::string& checkpoint_path, const std::string& tokenizer_path,
                       const std::string& out_path) {
  LL_ASSIGN_OR_RETURN(const Conversion conv, prepare(checkpoint_path, tokenizer_path));
  return conv.writer.write(out_path);
}

// The file format and the GGUF spelling are the importer's; the vocabulary adds its ids.
Result<text::Vocab> vocab_from_llama2c(const std::string& path) {
  LL_ASSIGN_OR_RETURN(Llama2cTokenizer tok, read_llama2c_tokenizer(path));
  // llama2.c tokenizers always carry <unk>, <s>, </s> as ids 0, 1, 2.
  if (tok.tokens.size() < 3) {
    return Status::Errorf("{}: only {} tokens; <unk>, <s> and </s> are missing", path, tok.tokens.size());
  }
  text::Vocab v;
  v.model = "llama";
  v.tokens = std::move(tok.tokens);
  v.scores = std::move(tok.scores);
  for (int32_t t : tok.types) v.types.push_back(static_cast<text::TokenType>(t));
  return v;
}

}  // namespace ll::model
