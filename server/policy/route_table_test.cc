#include "server/policy/route_table.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Counts every allocation made through the replaceable global operator new,
// so that a test can check that RouteTable::Find() does not allocate.
namespace {
std::atomic<long> g_allocations{0};

void* CountedAlloc(std::size_t size) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
}  // namespace

void* operator new(std::size_t size) {
  if (void* p = CountedAlloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAlloc(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAlloc(size);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace scopekeeper {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kNoMatch = -1;

// BuildRoutes() builds a table from "METHOD /template" specs; route i gets
// route_index i.
absl::StatusOr<RouteTable> BuildRoutes(const std::vector<std::string>& specs) {
  std::vector<RouteTable::RouteSpec> routes;
  for (size_t i = 0; i < specs.size(); ++i) {
    const size_t space = specs[i].find(' ');
    absl::StatusOr<HttpMethod> method =
        ParseHttpMethod(absl::string_view(specs[i]).substr(0, space));
    if (!method.ok()) return method.status();
    routes.push_back(RouteTable::RouteSpec{*method, specs[i].substr(space + 1),
                                           static_cast<int>(i)});
  }
  return RouteTable::Build(std::move(routes));
}

// FindRoute() looks up a "METHOD path" request (the path may be empty or
// contain spaces) and returns the matched route_index.
int FindRoute(const RouteTable& table, const std::string& request) {
  const size_t space = request.find(' ');
  absl::StatusOr<HttpMethod> method =
      ParseHttpMethod(absl::string_view(request).substr(0, space));
  EXPECT_TRUE(method.ok()) << method.status();
  if (!method.ok()) return kNoMatch;
  return table.Find(*method, absl::string_view(request).substr(space + 1))
      .route_index;
}

struct MatchCase {
  std::string request;  // "METHOD path"
  int want;             // route_index, or kNoMatch
};

void ExpectMatches(const RouteTable& table,
                   const std::vector<MatchCase>& cases) {
  for (const MatchCase& c : cases) {
    EXPECT_EQ(FindRoute(table, c.request), c.want)
        << "request \"" << c.request << "\"";
  }
}

// BuildOrDie() builds `specs`, failing the test when that fails.
RouteTable BuildOrDie(const std::vector<std::string>& specs) {
  absl::StatusOr<RouteTable> table = BuildRoutes(specs);
  if (!table.ok()) {
    ADD_FAILURE() << "Build failed: " << table.status();
    return *BuildRoutes({});
  }
  return std::move(table).value();
}

MATCHER_P(IsInvalidArgumentWith, substring, "") {
  if (arg.code() != absl::StatusCode::kInvalidArgument) {
    *result_listener << "code is " << absl::StatusCodeToString(arg.code());
    return false;
  }
  return ::testing::ExplainMatchResult(
      HasSubstr(substring), std::string(arg.message()), result_listener);
}

std::string Repeat(absl::string_view piece, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) absl::StrAppend(&out, piece);
  return out;
}

TEST(RouteTableTest, LiteralBeatsParamInEitherDeclarationOrder) {
  const RouteTable param_first = BuildOrDie({"GET /a/{id}", "GET /a/list"});
  ExpectMatches(param_first, {{"GET /a/list", 1}, {"GET /a/other", 0}});
  const RouteTable literal_first = BuildOrDie({"GET /a/list", "GET /a/{id}"});
  ExpectMatches(literal_first, {{"GET /a/list", 0}, {"GET /a/other", 1}});
}

TEST(RouteTableTest, LiteralWinsAtFirstPositionWhereCandidatesDiffer) {
  // "/a/b/c" fits both; they first differ at segment 2, where "b" is literal.
  for (bool reversed : {false, true}) {
    std::vector<std::string> specs = {"GET /a/{x}/c", "GET /a/b/{y}"};
    if (reversed) std::swap(specs[0], specs[1]);
    const int param_first = reversed ? 1 : 0;
    const int literal_first = reversed ? 0 : 1;
    const RouteTable table = BuildOrDie(specs);
    SCOPED_TRACE(reversed ? "reversed" : "declared order");
    ExpectMatches(table, {{"GET /a/b/c", literal_first},
                          {"GET /a/b/z", literal_first},
                          {"GET /a/z/c", param_first},
                          {"GET /a/z/z", kNoMatch}});
  }
}

TEST(RouteTableTest, BacktracksFromDeadEndLiteral) {
  const RouteTable table = BuildOrDie({"GET /a/{x}/c", "GET /a/b/d"});
  ExpectMatches(table, {{"GET /a/b/c", 0},  // literal "b" leads to a dead end
                        {"GET /a/b/d", 1},
                        {"GET /a/z/c", 0},
                        {"GET /a/b/e", kNoMatch},
                        {"GET /a/b", kNoMatch}});
}

TEST(RouteTableTest, BacktracksSeveralLevels) {
  const RouteTable table = BuildOrDie({"GET /a/b/c/d", "GET /{p}/b/c/e"});
  ExpectMatches(table, {{"GET /a/b/c/d", 0},
                        {"GET /a/b/c/e", 1},  // back up to the root's param
                        {"GET /z/b/c/e", 1},
                        {"GET /a/b/c/f", kNoMatch}});
}

TEST(RouteTableTest, TrailingSlashIsInsignificantOnBothSides) {
  const RouteTable table = BuildOrDie({"GET /with/slash/", "GET /without"});
  ExpectMatches(table, {{"GET /with/slash", 0},
                        {"GET /with/slash/", 0},
                        {"GET /without", 1},
                        {"GET /without/", 1},
                        {"GET /with/slash//", kNoMatch},
                        {"GET /without//", kNoMatch}});
}

TEST(RouteTableTest, QueryStringIsIgnored) {
  const RouteTable table =
      BuildOrDie({"GET /a/b", "GET /a", "GET /files/{name}"});
  ExpectMatches(table, {{"GET /a/b?x=1", 0},
                        {"GET /a/b/?x=1&y=2", 0},
                        {"GET /a/b?", 0},
                        {"GET /a/b?next=/../x//y", 0},
                        {"GET /a?/b", 1},
                        {"GET /files/report?v=2", 2},
                        {"GET /files/?v=2", kNoMatch},
                        {"GET ?/a/b", kNoMatch}});
}

TEST(RouteTableTest, PathIsNotPercentDecoded) {
  const RouteTable table = BuildOrDie({"GET /a/b", "GET /files/{name}"});
  ExpectMatches(table, {{"GET /a%2Fb", kNoMatch},
                        {"GET /%61/b", kNoMatch},
                        {"GET /files/a%2Fb", 1},
                        {"GET /files/%2E%2E", 1}});
}

TEST(RouteTableTest, MalformedRequestPathsNeverMatch) {
  // Catch-all routes that would match each path if it were normalized.
  const RouteTable table =
      BuildOrDie({"GET /", "GET /{a}", "GET /{a}/{b}", "GET /{a}/{b}/{c}"});
  ExpectMatches(table, {{"GET ", kNoMatch},
                        {"GET a", kNoMatch},
                        {"GET a/b", kNoMatch},
                        {"GET xa/b", kNoMatch},
                        {"GET xa", kNoMatch},
                        {"GET //", kNoMatch},
                        {"GET //a", kNoMatch},
                        {"GET /a//b", kNoMatch},
                        {"GET /a//", kNoMatch},
                        {"GET /.", kNoMatch},
                        {"GET /..", kNoMatch},
                        {"GET /./b", kNoMatch},
                        {"GET /a/.", kNoMatch},
                        {"GET /a/..", kNoMatch},
                        {"GET /a/../b", kNoMatch},
                        {"GET /a/./", kNoMatch},
                        // Only ".", ".." and "" are special.
                        {"GET /...", 1},
                        {"GET /.a/b.", 2},
                        {"GET /", 0},
                        {"GET /a", 1},
                        {"GET /a/b/c", 3}});
}

TEST(RouteTableTest, SegmentCountMustEqualTemplates) {
  const RouteTable table = BuildOrDie({"GET /a/b/c", "GET /{x}"});
  ExpectMatches(table, {{"GET /a/b/c", 0},
                        {"GET /a/b", kNoMatch},  // inner node, no route
                        {"GET /a/b/c/d", kNoMatch},
                        {"GET /a", 1},
                        {"GET /z/b/c", kNoMatch}});
}

TEST(RouteTableTest, MethodsAreSeparate) {
  const RouteTable table =
      BuildOrDie({"GET /x", "POST /x", "delete /y/{id}", "Head /x"});
  ExpectMatches(table, {{"GET /x", 0},
                        {"POST /x", 1},
                        {"HEAD /x", 3},
                        {"PUT /x", kNoMatch},
                        {"PATCH /x", kNoMatch},
                        {"DELETE /x", kNoMatch},
                        {"DELETE /y/7", 2},
                        {"GET /y/7", kNoMatch}});
  EXPECT_EQ(
      table.Find(static_cast<HttpMethod>(kNumHttpMethods), "/x").route_index,
      kNoMatch);
}

TEST(RouteTableTest, RootPath) {
  const RouteTable with_root = BuildOrDie({"GET /a", "GET /"});
  ExpectMatches(with_root, {{"GET /", 1},
                            {"GET /?q=1", 1},
                            {"GET /a", 0},
                            {"GET /b", kNoMatch},
                            {"GET ", kNoMatch},
                            {"GET //", kNoMatch}});
  // A parameter needs a non-empty segment, so "/" does not match "/{x}".
  const RouteTable without_root = BuildOrDie({"GET /{x}"});
  ExpectMatches(without_root, {{"GET /", kNoMatch}, {"GET /x", 0}});
}

TEST(RouteTableTest, PathOfMoreThan64SegmentsNeverMatches) {
  const std::string params64 = Repeat("/{p}", 64);
  const RouteTable table = BuildOrDie({"GET " + params64, "GET /{p}"});
  ExpectMatches(table, {{"GET " + Repeat("/s", 64), 0},
                        {"GET " + Repeat("/s", 64) + "/", 0},
                        {"GET " + Repeat("/s", 65), kNoMatch},
                        {"GET " + Repeat("/s", 10000), kNoMatch}});
}

TEST(RouteTableTest, RxScaleRoutes) {
  const RouteTable table = BuildOrDie({
      "GET /pharmacy_skus/",                     // 0
      "PATCH /pharmacy_skus/{uid}",              // 1
      "PATCH /pharmacy_skus/{uid}/stock",        // 2
      "PATCH /pharmacy_skus/{uid}/external_id",  // 3
      "POST /notification-subscriptions/test",   // 4
      "POST /notification-subscriptions/",       // 5
      "GET /patients/{uid}/intent/{intent}",     // 6
      "GET /pharmacy_skus/{uid}",                // 7
  });
  ExpectMatches(table, {
                           {"GET /pharmacy_skus", 0},
                           {"GET /pharmacy_skus/", 0},
                           {"GET /pharmacy_skus/?limit=10", 0},
                           {"GET /pharmacy_skus/sku_1", 7},
                           {"PATCH /pharmacy_skus/sku_1", 1},
                           {"PATCH /pharmacy_skus/stock", 1},
                           {"PATCH /pharmacy_skus/sku_1/stock", 2},
                           {"PATCH /pharmacy_skus/sku_1/stock/", 2},
                           {"PATCH /pharmacy_skus/sku_1/external_id?x=1", 3},
                           {"PATCH /pharmacy_skus/sku_1/price", kNoMatch},
                           {"PATCH /pharmacy_skus", kNoMatch},
                           {"PATCH /pharmacy_skus//stock", kNoMatch},
                           {"PATCH /pharmacy_skus/../stock", kNoMatch},
                           {"GET /pharmacy_skus/sku_1/stock", kNoMatch},
                           {"POST /notification-subscriptions/test", 4},
                           {"POST /notification-subscriptions/test/", 4},
                           {"POST /notification-subscriptions", 5},
                           {"POST /notification-subscriptions/", 5},
                           {"POST /notification-subscriptions/other", kNoMatch},
                           {"GET /notification-subscriptions/test", kNoMatch},
                           {"GET /patients/p1/intent/refill", 6},
                           {"GET /patients/p1/intent", kNoMatch},
                           {"GET /patients/p1/intent/refill/x", kNoMatch},
                           {"GET /patients/p1/other/refill", kNoMatch},
                       });
}

TEST(RouteTableTest, FindDoesNotAllocate) {
  const long before_build = g_allocations.load();
  const RouteTable table = BuildOrDie(
      {"GET /pharmacy_skus/{uid}/stock", "GET /a/{x}/c", "GET /a/b/d"});
  // The counter sees the library's allocations.
  ASSERT_GT(g_allocations.load(), before_build);
  const std::vector<std::string> paths = {
      "/pharmacy_skus/" + std::string(200, 'u') +
          "/stock?q=" + std::string(200, 'q'),
      "/a/b/c",
      "/a/b/d/",
      "/nothing/here",
      "/a/../b",
      Repeat("/s", 100)};
  const long before = g_allocations.load();
  int found = 0;
  for (const std::string& path : paths) {
    found += table.Find(HttpMethod::kGet, path).route_index >= 0;
  }
  const long after = g_allocations.load();
  EXPECT_EQ(found, 3);
  EXPECT_EQ(after - before, 0);
}

TEST(RouteTableTest, MovedTableKeepsRoutes) {
  RouteTable table = BuildOrDie({"GET /a/{x}"});
  RouteTable moved = std::move(table);
  EXPECT_EQ(FindRoute(moved, "GET /a/1"), 0);
  RouteTable assigned = BuildOrDie({"GET /other"});
  assigned = std::move(moved);
  EXPECT_EQ(FindRoute(assigned, "GET /a/1"), 0);
  EXPECT_EQ(FindRoute(assigned, "GET /other"), kNoMatch);
}

TEST(RouteTableTest, EmptyTableMatchesNothing) {
  const RouteTable table = BuildOrDie({});
  ExpectMatches(table, {{"GET /", kNoMatch}, {"POST /a", kNoMatch}});
}

TEST(RouteTableBuildTest, RejectsDuplicatesNamingBothRoutes) {
  struct Case {
    std::vector<std::string> specs;
    std::string first;
    std::string second;
  };
  const std::vector<Case> cases = {
      {{"GET /a/b", "GET /a/b/"}, "GET /a/b", "GET /a/b/"},
      {{"GET /a/{x}", "GET /a/{y}"}, "GET /a/{x}", "GET /a/{y}"},
      {{"PATCH /s/{uid}/stock/", "PATCH /s/{id}/stock"},
       "PATCH /s/{uid}/stock/",
       "PATCH /s/{id}/stock"},
      {{"GET /", "GET /x", "GET /"}, "GET /", "GET /"},
      {{"GET /same", "GET /same"}, "GET /same", "GET /same"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.second);
    const absl::StatusOr<RouteTable> table = BuildRoutes(c.specs);
    EXPECT_THAT(table.status(), IsInvalidArgumentWith(absl::StrCat(
                                    "duplicate route \"", c.second, "\"")));
    EXPECT_THAT(std::string(table.status().message()),
                HasSubstr(absl::StrCat("as \"", c.first, "\"")));
  }
}

TEST(RouteTableBuildTest, AcceptsRoutesThatOnlyLookAlike) {
  const RouteTable table = BuildOrDie({"GET /a/{x}", "POST /a/{y}", "GET /a/x",
                                       "GET /a", "GET /{x}/a", "GET /a/x/y"});
  ExpectMatches(table, {{"GET /a/1", 0},
                        {"POST /a/1", 1},
                        {"GET /a/x", 2},
                        {"GET /a", 3},
                        {"GET /b/a", 4},
                        {"GET /a/x/y", 5}});
}

TEST(RouteTableBuildTest, RejectsMalformedTemplateNamingTheRoute) {
  const absl::StatusOr<RouteTable> table =
      BuildRoutes({"GET /ok", "PATCH /x//y"});
  EXPECT_THAT(table.status(),
              IsInvalidArgumentWith("route \"PATCH /x//y\": empty segment"));
}

TEST(RouteTableBuildTest, RejectsNegativeRouteIndexAndUnknownMethod) {
  EXPECT_THAT(RouteTable::Build({{HttpMethod::kGet, "/a", -1}}).status(),
              IsInvalidArgumentWith("route_index -1"));
  EXPECT_THAT(
      RouteTable::Build({{static_cast<HttpMethod>(kNumHttpMethods), "/a", 0}})
          .status(),
      IsInvalidArgumentWith("invalid HTTP method"));
}

TEST(ValidatePathTemplateTest, AcceptsValidTemplates) {
  const std::vector<std::string> valid = {
      "/",
      "/a",
      "/a/",
      "/pharmacy_skus/{uid}/stock",
      "/notification-subscriptions/",
      "/{_}",
      "/{A_9}/{b}",
      "/{" + std::string(64, 'n') + "}",
      "/a.b/.../..a/%2F/caf\xc3\xa9/~user:x@y=z,!$&'()*+;",
      Repeat("/s", 64),
      Repeat("/s", 64) + "/",
      "/" + std::string(1023, 'a'),
  };
  for (const std::string& t : valid) {
    EXPECT_TRUE(ValidatePathTemplate(t).ok())
        << t.substr(0, 80) << ": " << ValidatePathTemplate(t);
  }
}

TEST(ValidatePathTemplateTest, RejectsMalformedTemplates) {
  struct Case {
    std::string path_template;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "does not start with '/'"},
      {"a/b", "does not start with '/'"},
      {"{x}/a", "does not start with '/'"},
      {"//", "empty segment"},
      {"/a//b", "path template \"/a//b\": empty segment"},
      {"//a", "empty segment"},
      {"/a//", "empty segment"},
      {"/.", "segment \".\" is not allowed"},
      {"/a/./b", "segment \".\" is not allowed"},
      {"/a/..", "segment \"..\" is not allowed"},
      {"/../a/", "segment \"..\" is not allowed"},
      {"/a?b", "forbidden character \"?\""},
      {"/a/?", "forbidden character \"?\""},
      {"/a#frag", "forbidden character \"#\""},
      {"/a b", "forbidden character \" \""},
      {"/a\tb", "forbidden character \"\\t\""},
      {"/a\n", "forbidden character \"\\n\""},
      {"/a\r", "forbidden character \"\\r\""},
      {std::string("/a\0b", 4), "forbidden character \"\\x00\""},
      {"/a\x01", "forbidden character \"\\x01\""},
      {"/a\x7f", "forbidden character \"\\x7f\""},
      {"/a{b", "literal segment \"a{b\" contains '{' or '}'"},
      {"/a}", "literal segment \"a}\""},
      {"/b{a}", "literal segment \"b{a}\""},
      {"/}a{", "literal segment \"}a{\""},
      {"/{a}b", "parameter segment \"{a}b\""},
      {"/{a", "parameter segment \"{a\""},
      {"/{", "parameter segment \"{\""},
      {"/{}", "parameter segment \"{}\""},
      {"/{1a}", "parameter segment \"{1a}\""},
      {"/{a-b}", "parameter segment \"{a-b}\""},
      {"/{a.b}", "parameter segment \"{a.b}\""},
      {"/{{a}}", "parameter segment \"{{a}}\""},
      {"/{a}}", "parameter segment \"{a}}\""},
      {"/{caf\xc3\xa9}", "parameter segment"},
      {"/{" + std::string(65, 'n') + "}", "parameter segment"},
      {Repeat("/s", 65), "more than 64 segments"},
      {Repeat("/s", 65) + "/", "more than 64 segments"},
      {"/" + std::string(1024, 'a'), "longer than 1024 characters"},
  };
  for (const Case& c : cases) {
    const absl::Status status = ValidatePathTemplate(c.path_template);
    EXPECT_THAT(status, IsInvalidArgumentWith(c.message))
        << "template \"" << c.path_template.substr(0, 80) << "\"";
  }
}

TEST(ValidatePathTemplateTest, CapsQuotedTemplate) {
  const absl::Status status =
      ValidatePathTemplate("/" + std::string(5000, 'a'));
  EXPECT_THAT(status, IsInvalidArgumentWith("longer than 1024"));
  EXPECT_LT(status.message().size(), 400u);
}

TEST(PathShapeTest, ErasesParameterNamesAndTrailingSlash) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/", "/"},
      {"/a", "/a"},
      {"/a/", "/a"},
      {"/a/{x}/", "/a/{}"},
      {"/a/{y}", "/a/{}"},
      {"/{uid}/stock/{id}", "/{}/stock/{}"},
      {"/pharmacy_skus/", "/pharmacy_skus"},
  };
  for (const auto& [path_template, shape] : cases) {
    EXPECT_EQ(PathShape(path_template), shape) << path_template;
  }
}

TEST(HttpMethodTest, ParsesCaseInsensitively) {
  const std::vector<std::pair<std::string, HttpMethod>> cases = {
      {"GET", HttpMethod::kGet},       {"get", HttpMethod::kGet},
      {"Get", HttpMethod::kGet},       {"POST", HttpMethod::kPost},
      {"post", HttpMethod::kPost},     {"PUT", HttpMethod::kPut},
      {"pUt", HttpMethod::kPut},       {"PATCH", HttpMethod::kPatch},
      {"pAtCh", HttpMethod::kPatch},   {"DELETE", HttpMethod::kDelete},
      {"delete", HttpMethod::kDelete}, {"HEAD", HttpMethod::kHead},
      {"head", HttpMethod::kHead},
  };
  for (const auto& [name, method] : cases) {
    const absl::StatusOr<HttpMethod> parsed = ParseHttpMethod(name);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.status();
    EXPECT_EQ(*parsed, method) << name;
  }
}

TEST(HttpMethodTest, RejectsUnknownMethods) {
  const std::vector<std::string> names = {
      "",     "FOO",     "GETS",    "GE",    " GET",
      "GET ", "OPTIONS", "CONNECT", "TRACE", std::string("GET\0", 4)};
  for (const std::string& name : names) {
    EXPECT_THAT(ParseHttpMethod(name).status(),
                IsInvalidArgumentWith("unknown HTTP method"))
        << name;
  }
  EXPECT_EQ(ParseHttpMethod("FOO").status().message(),
            "unknown HTTP method \"FOO\"");
}

TEST(HttpMethodTest, CapsEchoedUnknownMethod) {
  std::string method;
  while (method.size() < 1000) method += "X-";
  const absl::Status status = ParseHttpMethod(method).status();
  EXPECT_THAT(status, IsInvalidArgumentWith(absl::StrCat(
                          "\"", method.substr(0, 64), "\"...")));
  EXPECT_THAT(std::string(status.message()),
              Not(HasSubstr(method.substr(0, 65))));
}

TEST(HttpMethodTest, NeverEchoesAKeyPutInTheMethod) {
  // A gateway bug that sends the key as the method must not get any part of
  // its random characters back in the error (they were cut at 32, leaving
  // 25 of them).
  const std::string random = "SWRB317qT2xYzA9bC8dE7fG6hJ5kL4mN";
  const absl::Status status =
      ParseHttpMethod(absl::StrCat("rxs_ph_", random)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  for (size_t i = 0; i + 8 <= random.size(); ++i) {
    EXPECT_THAT(std::string(status.message()),
                Not(HasSubstr(random.substr(i, 8))));
  }
}

TEST(HttpMethodTest, NamesRoundTrip) {
  const std::vector<std::pair<HttpMethod, std::string>> cases = {
      {HttpMethod::kGet, "GET"},       {HttpMethod::kPost, "POST"},
      {HttpMethod::kPut, "PUT"},       {HttpMethod::kPatch, "PATCH"},
      {HttpMethod::kDelete, "DELETE"}, {HttpMethod::kHead, "HEAD"},
  };
  ASSERT_EQ(cases.size(), static_cast<size_t>(kNumHttpMethods));
  for (const auto& [method, name] : cases) {
    EXPECT_EQ(HttpMethodName(method), name);
    const absl::StatusOr<HttpMethod> parsed = ParseHttpMethod(name);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, method);
  }
}

}  // namespace
}  // namespace scopekeeper
