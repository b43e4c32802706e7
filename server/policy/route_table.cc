#include "server/policy/route_table.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/mutants.h"
#include "base/redact.h"

namespace scopekeeper {
namespace {

// Limits on templates and request paths. A request path with more segments
// than any template can have never matches, and the bound keeps the
// depth-first search (one stack frame per segment) shallow.
constexpr size_t kMaxTemplateLength = 1024;
constexpr size_t kMaxSegments = 64;
constexpr size_t kMaxParamNameLength = 64;
// Longest value quoted back in an error message.

constexpr std::array<HttpMethod, kNumHttpMethods> kAllMethods = {
    HttpMethod::kGet,   HttpMethod::kPost,   HttpMethod::kPut,
    HttpMethod::kPatch, HttpMethod::kDelete, HttpMethod::kHead};

// MethodIndex() returns the slot of `method` in RouteTable::roots_, or -1 for
// a value outside the enum.
int MethodIndex(HttpMethod method) {
  const int index = static_cast<int>(method);
  return index >= 0 && index < kNumHttpMethods ? index : -1;
}

bool IsForbiddenTemplateChar(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return c == '?' || c == '#' || u < 0x20 || u == 0x7f ||
         absl::ascii_isspace(u);
}

bool IsValidParamName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxParamNameLength) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

bool IsParamSegment(absl::string_view segment) {
  return !segment.empty() && segment.front() == '{';
}

// SegmentPart() returns `path` (which starts with '/') without one trailing
// '/' and as "" for the root, so that it is a sequence of "/segment" items:
// "/a/b/" -> "/a/b", "/" -> "", "//" -> "/" (one empty segment).
absl::string_view SegmentPart(absl::string_view path) {
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return path;
}

// PopSegment() removes the leading "/segment" from `*rest` (non-empty,
// starting with '/') and returns the segment, possibly empty.
absl::string_view PopSegment(absl::string_view* rest) {
  rest->remove_prefix(1);  // the '/'
  const size_t end = std::min(rest->find('/'), rest->size());
  const absl::string_view segment = rest->substr(0, end);
  rest->remove_prefix(end);
  return segment;
}

// TemplateProblem() returns what is wrong with `path_template`, or "" when it
// is valid.
std::string TemplateProblem(absl::string_view path_template) {
  if (path_template.size() > kMaxTemplateLength) {
    return absl::StrFormat("longer than %d characters", kMaxTemplateLength);
  }
  if (path_template.empty() || path_template.front() != '/') {
    return "does not start with '/'";
  }
  for (char c : path_template) {
    if (IsForbiddenTemplateChar(c)) {
      return absl::StrCat("contains forbidden character ",
                          Quote(absl::string_view(&c, 1)),
                          " ('?', '#', whitespace and control characters are "
                          "not allowed)");
    }
  }
  absl::string_view rest = SegmentPart(path_template);
  size_t segments = 0;
  while (!rest.empty()) {
    const absl::string_view segment = PopSegment(&rest);
    if (++segments > kMaxSegments) {
      return absl::StrFormat("more than %d segments", kMaxSegments);
    }
    if (segment.empty()) return "empty segment";
    if (segment == "." || segment == "..") {
      return absl::StrCat("segment ", Quote(segment), " is not allowed");
    }
    if (IsParamSegment(segment)) {
      if (segment.size() < 2 || segment.back() != '}' ||
          !IsValidParamName(segment.substr(1, segment.size() - 2))) {
        return absl::StrCat(
            "parameter segment ", Quote(segment),
            " is not {name} with name matching [A-Za-z_][A-Za-z0-9_]{0,63}");
      }
    } else if (segment.find_first_of("{}") != absl::string_view::npos) {
      return absl::StrCat("literal segment ", Quote(segment),
                          " contains '{' or '}'");
    }
  }
  return "";
}

std::string RouteName(HttpMethod method, absl::string_view path_template) {
  return Quote(absl::StrCat(HttpMethodName(method), " ", path_template));
}

}  // namespace

struct RouteTable::Node {
  absl::flat_hash_map<std::string, std::unique_ptr<Node>> literals;
  std::unique_ptr<Node> param;
  int route_index = -1;

  // Find() returns the route_index of the first complete match of
  // `segments` below this node, trying the literal child before the param
  // child and backtracking; -1 when none. Recursion depth is
  // segments.size() (at most kMaxSegments). Allocation-free.
  int Find(const absl::string_view* segments, size_t count) const {
    if (count == 0) return route_index;
    if (SK_MUTANT(kParamBeatsLiteral) && param != nullptr) {
      const int found = param->Find(segments + 1, count - 1);
      if (found >= 0) return found;
    }
    const auto it = literals.find(segments[0]);
    if (it != literals.end()) {
      const int found = it->second->Find(segments + 1, count - 1);
      if (found >= 0) return found;
    }
    if (param != nullptr) return param->Find(segments + 1, count - 1);
    return -1;
  }
};

absl::StatusOr<HttpMethod> ParseHttpMethod(absl::string_view method) {
  for (HttpMethod candidate : kAllMethods) {
    if (absl::EqualsIgnoreCase(method, HttpMethodName(candidate))) {
      return candidate;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown HTTP method ", Quote(method)));
}

absl::string_view HttpMethodName(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return "GET";
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kPut:
      return "PUT";
    case HttpMethod::kPatch:
      return "PATCH";
    case HttpMethod::kDelete:
      return "DELETE";
    case HttpMethod::kHead:
      return "HEAD";
  }
  return "UNKNOWN";
}

absl::Status ValidatePathTemplate(absl::string_view path_template) {
  const std::string problem = TemplateProblem(path_template);
  if (problem.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("path template ", Quote(path_template), ": ", problem));
}

std::string PathShape(absl::string_view path_template) {
  absl::string_view rest = SegmentPart(path_template);
  if (rest.empty()) return "/";
  std::string shape;
  shape.reserve(rest.size());
  while (!rest.empty()) {
    const absl::string_view segment = PopSegment(&rest);
    absl::StrAppend(&shape, "/", IsParamSegment(segment) ? "{}" : segment);
  }
  return shape;
}

RouteTable::RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;
RouteTable::~RouteTable() = default;

absl::StatusOr<RouteTable> RouteTable::Build(std::vector<RouteSpec> routes) {
  RouteTable table;
  // The template that claimed each route-ending node, to name both routes
  // of a duplicate.
  absl::flat_hash_map<const Node*, const std::string*> claimed_by;
  for (const RouteSpec& route : routes) {
    const int method_index = MethodIndex(route.method);
    if (method_index < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "route %s: invalid HTTP method value %d", Quote(route.path_template),
          static_cast<int>(route.method)));
    }
    const std::string problem = TemplateProblem(route.path_template);
    if (!problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("route ", RouteName(route.method, route.path_template),
                       ": ", problem));
    }
    if (route.route_index < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "route %s: route_index %d is negative",
          RouteName(route.method, route.path_template), route.route_index));
    }

    std::unique_ptr<Node>& root = table.roots_[method_index];
    if (root == nullptr) root = std::make_unique<Node>();
    Node* node = root.get();
    absl::string_view rest = SegmentPart(route.path_template);
    while (!rest.empty()) {
      const absl::string_view segment = PopSegment(&rest);
      std::unique_ptr<Node>& child = IsParamSegment(segment)
                                         ? node->param
                                         : node->literals[std::string(segment)];
      if (child == nullptr) child = std::make_unique<Node>();
      node = child.get();
    }
    // Same method and same shape end at the same node.
    if (node->route_index >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "duplicate route ", RouteName(route.method, route.path_template),
          ": same method and path shape ",
          Quote(PathShape(route.path_template)), " as ",
          RouteName(route.method, *claimed_by.at(node)),
          " (a trailing '/' and parameter names do not distinguish routes)"));
    }
    node->route_index = route.route_index;
    claimed_by[node] = &route.path_template;
  }
  return table;
}

RouteTable::Match RouteTable::Find(HttpMethod method,
                                   absl::string_view path) const {
  Match match;
  const int method_index = MethodIndex(method);
  if (method_index < 0 || roots_[method_index] == nullptr) return match;

  const size_t query = path.find('?');
  if (query != absl::string_view::npos && !SK_MUTANT(kQueryNotDropped)) {
    path = path.substr(0, query);
  }
  if (path.empty() || path.front() != '/') return match;
  std::array<absl::string_view, kMaxSegments> segments;
  size_t count = 0;
  absl::string_view rest =
      SK_MUTANT(kTrailingSlashSignificant) ? path : SegmentPart(path);
  while (!rest.empty()) {
    const absl::string_view segment = PopSegment(&rest);
    if (segment.empty() || segment == "." || segment == "..") return match;
    if (count == kMaxSegments) return match;
    segments[count++] = segment;
  }
  match.route_index = roots_[method_index]->Find(segments.data(), count);
  return match;
}

}  // namespace scopekeeper
