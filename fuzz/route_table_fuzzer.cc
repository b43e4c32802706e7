// Fuzzes route templates and matching: ValidatePathTemplate, PathShape,
// RouteTable::Build and RouteTable::Find, each checked against a plain
// reference implementation of the contract in server/route_table.h.
//
// Input: '\n'-separated lines. "METHOD TEMPLATE" declares a route (route
// index = line number); "?METHOD PATH" is a request to match. An unknown
// METHOD becomes a value outside the HttpMethod enum, which Build() must
// reject and Find() must never match. Every route of the table is also
// matched with its parameters filled in.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "fuzz/fuzz_check.h"
#include "server/policy/route_table.h"

namespace scopekeeper {
namespace {

constexpr size_t kMaxLines = 128;
constexpr HttpMethod kBadMethod = static_cast<HttpMethod>(kNumHttpMethods);

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
         c == '\r';
}

bool IsNameChar(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return alpha || c == '_' || (!first && c >= '0' && c <= '9');
}

// Splits "/a/b/" into {"a", "b"}: drops one trailing '/', "" is the root (no
// segments) and "/" alone, after that, is one empty segment.
std::vector<std::string> Segments(absl::string_view path) {
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path.empty()) return {};
  return absl::StrSplit(path.substr(1), '/');
}

// A route template as the reference understands it.
struct RefRoute {
  HttpMethod method;
  int index;
  std::vector<std::string> segments;
  std::vector<bool> is_param;
};

// RefParseTemplate() is ValidatePathTemplate() written out plainly: false
// for an invalid template.
bool RefParseTemplate(absl::string_view t, RefRoute* out) {
  if (t.size() > 1024 || t.empty() || t[0] != '/') return false;
  for (char c : t) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '?' || c == '#' || u < 0x20 || u == 0x7f || IsSpace(c)) {
      return false;
    }
  }
  out->segments = Segments(t);
  if (out->segments.size() > 64) return false;
  out->is_param.clear();
  for (const std::string& s : out->segments) {
    if (s.empty() || s == "." || s == "..") return false;
    const bool param = s[0] == '{';
    if (param) {
      if (s.size() < 3 || s.size() > 66 || s.back() != '}') return false;
      for (size_t i = 1; i + 1 < s.size(); ++i) {
        if (!IsNameChar(s[i], i == 1)) return false;
      }
    } else if (s.find_first_of("{}") != std::string::npos) {
      return false;
    }
    out->is_param.push_back(param);
  }
  return true;
}

std::string RefShape(const RefRoute& r) {
  if (r.segments.empty()) return "/";
  std::string shape;
  for (size_t i = 0; i < r.segments.size(); ++i) {
    shape += "/" + (r.is_param[i] ? std::string("{}") : r.segments[i]);
  }
  return shape;
}

// RefFind() is RouteTable::Find() written out plainly: among the routes
// matching the path, the one whose segment kinds (literal before parameter)
// are lexicographically first.
int RefFind(const std::vector<RefRoute>& routes, HttpMethod method,
            absl::string_view path) {
  path = path.substr(0, std::min(path.find('?'), path.size()));
  if (path.empty() || path[0] != '/') return -1;
  const std::vector<std::string> segments = Segments(path);
  if (segments.size() > 64) return -1;
  for (const std::string& s : segments) {
    if (s.empty() || s == "." || s == "..") return -1;
  }
  const RefRoute* best = nullptr;
  for (const RefRoute& r : routes) {
    if (r.method != method || r.segments.size() != segments.size()) continue;
    bool match = true;
    for (size_t i = 0; match && i < segments.size(); ++i) {
      match = r.is_param[i] || r.segments[i] == segments[i];
    }
    if (match && (best == nullptr || r.is_param < best->is_param)) best = &r;
  }
  return best == nullptr ? -1 : best->index;
}

// Fills each parameter of `r` with "v" + `fill`.
std::string Materialize(const RefRoute& r, absl::string_view fill) {
  if (r.segments.empty()) return "/";
  std::string path;
  for (size_t i = 0; i < r.segments.size(); ++i) {
    path += "/";
    path += r.is_param[i] ? absl::StrCat("v", fill) : r.segments[i];
  }
  return path;
}

bool SameRoute(const RefRoute& a, const RefRoute& b) {
  return a.method == b.method && a.is_param == b.is_param && [&] {
    for (size_t i = 0; i < a.segments.size(); ++i) {
      if (!a.is_param[i] && a.segments[i] != b.segments[i]) return false;
    }
    return true;
  }();
}

HttpMethod MethodOrBad(absl::string_view name) {
  const absl::StatusOr<HttpMethod> method = ParseHttpMethod(name);
  if (!method.ok()) return kBadMethod;
  FUZZ_CHECK(HttpMethodName(*method).size() == name.size());
  return *method;
}

void TestOneInput(absl::string_view input) {
  std::vector<RouteTable::RouteSpec> all_specs;
  std::vector<RouteTable::RouteSpec> clean_specs;  // valid, no duplicates
  std::vector<RefRoute> clean_routes;
  std::vector<std::pair<HttpMethod, std::string>> requests;
  bool all_valid = true;

  std::vector<absl::string_view> lines = absl::StrSplit(input, '\n');
  if (lines.size() > kMaxLines) lines.resize(kMaxLines);
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = lines[i];
    const bool request = !line.empty() && line[0] == '?';
    if (request) line.remove_prefix(1);
    const size_t space = std::min(line.find(' '), line.size());
    const HttpMethod method = MethodOrBad(line.substr(0, space));
    const absl::string_view rest =
        line.substr(std::min(space + 1, line.size()));
    if (request) {
      requests.emplace_back(method, std::string(rest));
      continue;
    }
    const int index = static_cast<int>(i);
    all_specs.push_back({method, std::string(rest), index});

    RefRoute ref{method, index, {}, {}};
    const bool valid = RefParseTemplate(rest, &ref);
    FUZZ_CHECK(ValidatePathTemplate(rest).ok() == valid);
    if (!valid || method == kBadMethod) {
      all_valid = false;
      continue;
    }
    FUZZ_CHECK(PathShape(rest) == RefShape(ref));
    const bool duplicate =
        std::any_of(clean_routes.begin(), clean_routes.end(),
                    [&](const RefRoute& r) { return SameRoute(r, ref); });
    if (duplicate) {
      all_valid = false;
      continue;
    }
    clean_specs.push_back({method, std::string(rest), index});
    clean_routes.push_back(std::move(ref));
  }

  // Build() fails exactly for an invalid route or a duplicate.
  FUZZ_CHECK(RouteTable::Build(std::move(all_specs)).ok() == all_valid);
  absl::StatusOr<RouteTable> table = RouteTable::Build(std::move(clean_specs));
  FUZZ_CHECK(table.ok());

  for (const RefRoute& r : clean_routes) {
    const std::string path = Materialize(r, "");
    FUZZ_CHECK(table->Find(r.method, path).route_index >= 0);
    requests.emplace_back(r.method, path);
    requests.emplace_back(r.method, Materialize(r, "/x") + "?q=/a");
  }
  for (const auto& [method, path] : requests) {
    FUZZ_CHECK(table->Find(method, path).route_index ==
               RefFind(clean_routes, method, path));
  }
  // An empty table matches nothing.
  FUZZ_CHECK(RouteTable().Find(HttpMethod::kGet, "/").route_index == -1);
}

}  // namespace
}  // namespace scopekeeper

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scopekeeper::TestOneInput(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
