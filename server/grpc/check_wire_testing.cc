#include "server/grpc/check_wire_testing.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/grpc/check_wire.h"

namespace scopekeeper {
namespace {

// "" when both hold the same value for `name` (or neither holds one).
template <typename Map>
std::string EntryDiff(absl::string_view what, const std::string& name,
                      const Map& map,
                      absl::Span<const CheckReading::Entry> entries) {
  auto in_map = map.find(name);
  const absl::string_view* read = LastValue(entries, name);
  if ((in_map == map.end()) != (read == nullptr)) {
    return absl::StrCat(what, " '", name, "': present in ",
                        read == nullptr ? "CheckRequest" : "the reading",
                        " only");
  }
  if (read != nullptr && *read != in_map->second) {
    return absl::StrCat(what, " '", name, "': '", *read, "' in the reading, '",
                        in_map->second, "' in CheckRequest");
  }
  return "";
}

std::string FieldDiff(absl::string_view field, absl::string_view read,
                      absl::string_view full) {
  if (read == full) return "";
  return absl::StrCat(field, ": '", read, "' in the reading, '", full,
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
                        const CheckReading& reading) {
  const auto& http = full.attributes().request().http();
  for (std::string diff : {FieldDiff("method", reading.method, http.method()),
                           FieldDiff("path", reading.path, http.path()),
                           FieldDiff("host", reading.host, http.host())}) {
    if (!diff.empty()) return diff;
  }
  if (reading.headers.empty() != http.headers().empty()) {
    return "headers: empty in one only";
  }
  for (const std::string& name : ReadNames()) {
    std::string diff =
        EntryDiff("header", name, http.headers(), reading.headers);
    if (diff.empty()) {
      diff = EntryDiff("context extension", name,
                       full.attributes().context_extensions(),
                       reading.context_extensions);
    }
    if (!diff.empty()) return diff;
  }
  const auto& list = http.header_map().headers();
  if (static_cast<size_t>(list.size()) != reading.header_map.size()) {
    return absl::StrCat("header_map: ", reading.header_map.size(),
                        " entries in the reading, ", list.size(),
                        " in CheckRequest");
  }
  for (int i = 0; i < list.size(); ++i) {
    const std::string at = absl::StrCat("header_map[", i, "].");
    const CheckReading::HeaderValue& read = reading.header_map[i];
    for (std::string diff :
         {FieldDiff(at + "key", read.key, list[i].key()),
          FieldDiff(at + "value", read.value, list[i].value()),
          FieldDiff(at + "raw_value", read.raw_value, list[i].raw_value())}) {
      if (!diff.empty()) return diff;
    }
  }
  return "";
}

}  // namespace scopekeeper
