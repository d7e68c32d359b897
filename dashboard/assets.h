// The dashboard's page and Chart.js, compiled into the binary from dashboard/page/ and Debian's
// libjs-chart.js (dashboard/CMakeLists.txt, cmake/EmbedText.cmake).
#pragma once
#include <string_view>

namespace aha::dashboard::assets {

extern const std::string_view index_html;
extern const std::string_view app_js;
extern const std::string_view style_css;
extern const std::string_view chart_js;

}  // namespace aha::dashboard::assets
