#pragma once
// Content hashes of shards: SHA-256 as 64 lowercase hex digits. Computed with libsodium, the
// cryptography library ZeroMQ's CURVE already links, so no second crypto stack is needed.
#include <string>
#include <string_view>

#include "core/status.h"

namespace ll::cluster {

Result<std::string> sha256_file(const std::string& path);
// 64 lowercase hex digits: safe to use as a file name.
bool is_content_hash(std::string_view s);

}  // namespace ll::cluster
