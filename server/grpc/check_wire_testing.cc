#include "server/grpc/check_wire_testing.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/grpc/check_wire.h"

namespace scopekeeper {
namespace {

// "" when both hold the same value for `name` (or neither holds one).
template <typename Map, typename Entries>
std::string EntryDiff(absl::string_view what, const std::string& name,
                      const Map& map, const Entries& entries) {
  auto in_map = map.find(name);
  const std::string* in_view = LastValue(entries, name);
  if ((in_map == map.end()) != (in_view == nullptr)) {
    return absl::StrCat(what, " '", name, "': present in ",
                        in_view == nullptr ? "CheckRequest" : "the view",
                        " only");
  }
  if (in_view != nullptr && *in_view != in_map->second) {
    return absl::StrCat(what, " '", name, "': '", *in_view, "' in the view, '",
                        in_map->second, "' in CheckRequest");
  }
  return "";
}

std::string FieldDiff(absl::string_view field, const std::string& view,
                      const std::string& full) {
  if (view == full) return "";
  return absl::StrCat(field, ": '", view, "' in the view, '", full,
                      "' in CheckRequest");
}

}  // namespace

const std::vector<std::string>& ReadNames() {
  static const auto* const names =
      new std::vector<std::string>{"authorization",
                                   "x-api-key",
                                   "x-organization-id",
                                   "x-request-id",
                                   ":path",
                                   "user-agent",
                                   "",
                                   "api"};
  return *names;
}

std::string ReadingDiff(const envoy::service::auth::v3::CheckRequest& full,
                        const envoy_view::CheckRequestView& view) {
  const auto& http = full.attributes().request().http();
  const auto& view_http = view.attributes().request().http();
  for (std::string diff :
       {FieldDiff("method", view_http.method(), http.method()),
        FieldDiff("path", view_http.path(), http.path()),
        FieldDiff("host", view_http.host(), http.host())}) {
    if (!diff.empty()) return diff;
  }
  if (view_http.headers().empty() != http.headers().empty()) {
    return "headers: empty in one only";
  }
  for (const std::string& name : ReadNames()) {
    std::string diff =
        EntryDiff("header", name, http.headers(), view_http.headers());
    if (diff.empty()) {
      diff = EntryDiff("context extension", name,
                       full.attributes().context_extensions(),
                       view.attributes().context_extensions());
    }
    if (!diff.empty()) return diff;
  }
  const auto& list = http.header_map().headers();
  const auto& view_list = view_http.header_map().headers();
  if (list.size() != view_list.size()) {
    return absl::StrCat("header_map: ", view_list.size(), " entries in the ",
                        "view, ", list.size(), " in CheckRequest");
  }
  for (int i = 0; i < list.size(); ++i) {
    const std::string at = absl::StrCat("header_map[", i, "].");
    for (std::string diff :
         {FieldDiff(at + "key", view_list[i].key(), list[i].key()),
          FieldDiff(at + "value", view_list[i].value(), list[i].value()),
          FieldDiff(at + "raw_value", view_list[i].raw_value(),
                    list[i].raw_value())}) {
      if (!diff.empty()) return diff;
    }
  }
  return "";
}

}  // namespace scopekeeper
