// RouteTable: one API's routes compiled into a segment trie per HTTP method.
//
// Templates ("/pharmacy_skus/{uid}/stock") are '/'-separated segments, each a
// literal or a `{name}` parameter matching exactly one non-empty segment. A
// trailing slash is insignificant on both sides. Matching is segment by
// segment; where candidate routes first differ, a literal beats a parameter
// (so "/a/list" wins over "/a/{id}" for "/a/list"). Requests never match when
// their path (after dropping "?query" and the API's path prefix) is empty,
// does not start with '/', or has an empty ("//"), "." or ".." segment.
#ifndef SCOPEKEEPER_SERVER_POLICY_ROUTE_TABLE_H_
#define SCOPEKEEPER_SERVER_POLICY_ROUTE_TABLE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

// HTTP methods routes can name. Parsed case-insensitively.
enum class HttpMethod { kGet, kPost, kPut, kPatch, kDelete, kHead };
inline constexpr int kNumHttpMethods = 6;

// ParseHttpMethod() accepts GET, POST, PUT, PATCH, DELETE, HEAD in any case;
// anything else is INVALID_ARGUMENT.
absl::StatusOr<HttpMethod> ParseHttpMethod(absl::string_view method);
// HttpMethodName() returns the upper-case name.
absl::string_view HttpMethodName(HttpMethod method);

// ValidatePathTemplate() checks a template: starts with '/', no empty, "."
// or ".." segments (a single trailing '/' is allowed), no '?', '#' or
// whitespace, literals without '{' or '}', parameters `{name}` with name
// matching [A-Za-z_][A-Za-z0-9_]{0,63}. Returns INVALID_ARGUMENT saying what
// is wrong.
absl::Status ValidatePathTemplate(absl::string_view path_template);

// PathShape() returns the template with parameter names erased and the
// trailing slash dropped ("/a/{x}/" -> "/a/{}"): two routes of one method with
// the same shape are duplicates. REQUIRES: ValidatePathTemplate() is OK.
std::string PathShape(absl::string_view path_template);

// Immutable after Build(); Match() is thread-safe and allocation-free.
class RouteTable {
 public:
  struct RouteSpec {
    HttpMethod method;
    std::string path_template;  // as declared (returned in matched_route)
    int route_index;            // caller's id for the route (e.g. its index)
  };
  struct Match {
    int route_index = -1;  // -1 when nothing matched
  };

  // Build() compiles the routes. INVALID_ARGUMENT (naming the template) for
  // a malformed template or two routes with the same method and shape.
  static absl::StatusOr<RouteTable> Build(std::vector<RouteSpec> routes);

  // An empty table: Find() never matches.
  RouteTable();
  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;
  ~RouteTable();

  // Find() matches a concrete path (query string allowed; it is ignored) for
  // `method`. The caller has already stripped the API's path prefix.
  Match Find(HttpMethod method, absl::string_view path) const;

 private:
  struct Node;
  std::unique_ptr<Node> roots_[kNumHttpMethods];
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_POLICY_ROUTE_TABLE_H_
