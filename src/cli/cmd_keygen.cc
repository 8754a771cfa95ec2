// `lingualinked keygen`: a CURVE key pair for a head or a worker.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "net/keys.h"

namespace ll::cli {

void add_keygen_command(CLI::App& app) {
  auto output = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("keygen", "Create a key pair; prints the public key to give to the peers");
  cmd->add_option("-o,--output", *output, "key file to write (mode 0600)")->required();
  cmd->callback([output] {
    const net::KeyPair keys = net::generate_keypair();
    Status st = net::save_keypair(*output, keys);
    if (!st.ok()) fail(st.message());
    std::printf("%s\n", keys.public_key.c_str());
  });
}

}  // namespace ll::cli
