#pragma once
// The web page's files (src/server/web), embedded in the binary at build time
// (tools/embed_web_assets.cmake): served from memory, nothing read from disk or the network.
#include <string_view>

namespace ll::server {

struct WebAsset {
  std::string_view path;  // "/index.html"
  std::string_view content_type;
  std::string_view body;
};

// nullptr when there is no such file.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace ll::server
