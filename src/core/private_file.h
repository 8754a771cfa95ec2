#pragma once
// Files only their owner may read: the configuration a device remembers (its key, the keys it
// trusts, its paired devices).
#include <string>

#include "core/status.h"

namespace ll {

// Creates `path` and its missing parents with mode 0700; an existing directory is left as it is.
Status make_private_dir(const std::string& path);
// Writes `text` to a temporary file of mode 0600 beside `path` and renames it over `path`, so a
// crash never leaves a half-written file and the content is never readable by others.
Status write_private_file(const std::string& path, const std::string& text);

}  // namespace ll
