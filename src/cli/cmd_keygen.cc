// `lingualinked keygen`: a CURVE key pair for a head or a worker, or the public half of one
// (like `ssh-keygen -y`).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "net/keys.h"

namespace ll::cli {
namespace {

// The key alone on stdout (for scripts), and on stderr how to pass it on: Z85 keys contain
// shell characters ($ & < > * ? ...) but never a single quote.
void print_public_key(const std::string& key, const std::string& path) {
  std::printf("%s\n", key.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "public key of %s, quoted for a shell: '%s'\n", path.c_str(), key.c_str());
}

}  // namespace

void add_keygen_command(CLI::App& app) {
  struct Args {
    std::string output;
    std::string show;
    bool force = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("keygen", "Create a key pair; prints the public key to give to the peers");
  CLI::Option* output = cmd->add_option("-o,--output", a->output, "key file to write (mode 0600)");
  CLI::Option* show = cmd->add_option("-y,--public", a->show, "print the public key of this existing key file");
  cmd->add_flag("-f,--force", a->force, "overwrite an existing key file (its old key stops working)");
  output->excludes(show);
  cmd->callback([a] {
    if (!a->show.empty()) {
      const net::KeyPair keys = or_exit(net::load_keypair(a->show));
      print_public_key(keys.public_key, a->show);
      return;
    }
    if (a->output.empty()) fail("give -o FILE to write a new key pair, or --public FILE to print the public key of one");
    std::error_code ec;
    if (!a->force && std::filesystem::exists(std::filesystem::symlink_status(a->output, ec))) {
      fail(a->output + " already exists; print its public key with --public " + a->output +
           ", or replace it with --force (peers that allow its key must then be given the new one)");
    }
    const net::KeyPair keys = net::generate_keypair();
    Status st = net::save_keypair(a->output, keys);
    if (!st.ok()) fail(st.message());
    print_public_key(keys.public_key, a->output);
  });
}

}  // namespace ll::cli
