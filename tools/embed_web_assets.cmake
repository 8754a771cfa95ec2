# Writes OUTPUT, a C++ file defining ll::server::find_web_asset (server/web_assets.h) over the
# files FILES (a ;-list of paths under DIR), each served at "/" + its path under DIR.
# Run at build time: cmake -DDIR=... -DFILES=... -DOUTPUT=... -P embed_web_assets.cmake
set(types_html "text/html; charset=utf-8")
set(types_js "text/javascript; charset=utf-8")
set(types_css "text/css; charset=utf-8")
set(types_svg "image/svg+xml")
set(arrays "")
set(entries "")
set(index 0)
foreach(file IN LISTS FILES)
  file(RELATIVE_PATH rel "${DIR}" "${file}")
  get_filename_component(ext "${file}" LAST_EXT)
  string(SUBSTRING "${ext}" 1 -1 ext)
  if(NOT DEFINED types_${ext})
    message(FATAL_ERROR "${file}: no content type for .${ext} files")
  endif()
  file(READ "${file}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  string(APPEND arrays "const char k${index}[] = {${bytes} 0};\n")
  string(APPEND entries "    {\"/${rel}\", \"${types_${ext}}\", {k${index}, ${size}}},\n")
  math(EXPR index "${index} + 1")
endforeach()
file(WRITE "${OUTPUT}.tmp" "// Generated from src/server/web by tools/embed_web_assets.cmake; do not edit.
#include \"server/web_assets.h\"

namespace ll::server {
namespace {
${arrays}
const WebAsset kAssets[] = {
${entries}};
}  // namespace

const WebAsset* find_web_asset(std::string_view path) {
  for (const WebAsset& a : kAssets) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace ll::server
")
# Only a changed file is rewritten, so that an unchanged one does not recompile.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
