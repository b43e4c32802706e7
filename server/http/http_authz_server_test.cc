// HttpAuthzServer over real HTTP (loopback, port 0) in front of the decision
// core with a fault-injecting store.
#include "server/http/http_authz_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"
#include "server/testing/held_sync.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class HttpAuthzServerTest : public ::testing::Test {
 protected:
  explicit HttpAuthzServerTest(size_t key_cache_capacity = KeyCache::kUnbounded)
      : env_(key_cache_capacity) {}

  void SetUp() override {
    env_.PutPolicyJson(kTestPolicyJson);
    HttpAuthzOptions options;
    options.threads = 2;
    Start(nullptr, options);
  }

  void Start(const CallerAuthenticator* auth,
             HttpAuthzOptions options = HttpAuthzOptions()) {
    server_.reset();
    options.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<HttpAuthzServer>> server =
        HttpAuthzServer::Start(options, &env_.engine, &env_.state, &settings_,
                               auth);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_keep_alive(true);
  }

  // What nginx's auth_request subrequest sends (deploy/nginx).
  static httplib::Headers Nginx(absl::string_view method, absl::string_view uri,
                                absl::string_view key) {
    httplib::Headers headers = {{"X-Original-Method", std::string(method)},
                                {"X-Original-URI", std::string(uri)},
                                {"X-Forwarded-Host", "api.rxscale.com"}};
    if (!key.empty()) {
      headers.emplace("Authorization", absl::StrCat("Bearer ", key));
    }
    return headers;
  }

  // A raw connection, for what cpp-httplib's client will not send.
  class RawConnection {
   public:
    explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)),
                0);
    }
    ~RawConnection() { close(fd_); }

    void Send(const std::string& bytes) {
      size_t sent = 0;
      while (sent < bytes.size()) {
        const ssize_t n =
            send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += n;
      }
    }

    // Readable() is true when data (or a close) arrives within `timeout`.
    bool Readable(absl::Duration timeout) {
      pollfd p{fd_, POLLIN, 0};
      return poll(&p, 1, absl::ToInt64Milliseconds(timeout)) == 1;
    }

    // ReadResponse() returns one response (head and Content-Length bytes of
    // body), or what arrived before the server closed the connection.
    std::string ReadResponse() {
      while (true) {
        const size_t head_end = buffer_.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          size_t length = 0;
          const size_t cl = buffer_.find("Content-Length: ");
          if (cl != std::string::npos && cl < head_end) {
            length = std::stoul(buffer_.substr(cl + 16));
          }
          if (buffer_.size() >= head_end + 4 + length) {
            std::string response = buffer_.substr(0, head_end + 4 + length);
            buffer_.erase(0, response.size());
            return response;
          }
        }
        char buf[4096];
        const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) return std::exchange(buffer_, "");
        buffer_.append(buf, n);
      }
    }

   private:
    const int fd_;
    std::string buffer_;
  };

  CoreTestEnv env_;
  GatewaySettings settings_;
  std::unique_ptr<HttpAuthzServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpAuthzServerTest, AllowedAnswers200WithIdentityHeaders) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  httplib::Headers headers =
      Nginx("GET", "/v1/pharmacy/orders/?page=2", key.secret());
  headers.emplace("X-Request-Id", "req-42");
  auto res = client_->Get("/authz", headers);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "");
  EXPECT_EQ(res->get_header_value("X-Scopekeeper-Key-Id"), key.key().key_id());
  EXPECT_EQ(res->get_header_value("X-Scopekeeper-Organization-Id"), "org_a");
  EXPECT_EQ(res->get_header_value("X-Scopekeeper-Trace-Id"), "req-42");
  // Absent when empty: the gateway's copy (nginx auth_request_set, Traefik
  // authResponseHeaders) then clears what a client sent.
  EXPECT_FALSE(res->has_header("X-Scopekeeper-App-Id"));
  EXPECT_FALSE(res->has_header("X-Scopekeeper-Redact"));
  EXPECT_EQ(res->get_header_value_count("X-Scopekeeper-Trace-Id"), 1u);

  // Traefik / Caddy headers, and any method of the subrequest itself.
  httplib::Headers traefik = {{"X-Forwarded-Method", "GET"},
                              {"X-Forwarded-Uri", "/v1/pharmacy/orders/o_1"},
                              {"X-Forwarded-Host", "api.rxscale.com"},
                              {"X-API-Key", key.secret()}};
  for (const char* method :
       {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    httplib::Request req;
    req.method = method;
    req.path = "/authz";
    req.headers = traefik;
    auto r = client_->send(req);
    ASSERT_TRUE(r) << method;
    EXPECT_EQ(r->status, 200) << method;
    EXPECT_EQ(r->get_header_value("X-Scopekeeper-Key-Id"), key.key().key_id())
        << method;
  }
}

TEST_F(HttpAuthzServerTest, DenialsCarryStatusAndJsonBody) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  struct Case {
    httplib::Headers headers;
    int status;
    std::string body_prefix;
  };
  const Case cases[] = {
      {Nginx("PATCH", "/v1/pharmacy/orders/o_1/status", key.secret()), 403,
       R"({"code":"forbidden","message":"Insufficient scope. Required: )"
       R"(orders_write","trace_id":")"},
      {Nginx("GET", "/v1/pharmacy/orders/", "rx_ph_unknown"), 401,
       R"({"code":"unauthorized","message":"Invalid or expired API key",)"},
      {Nginx("GET", "/v1/pharmacy/orders/", ""), 401,
       R"({"code":"unauthorized",)"},
      {Nginx("GET", "/v1/pharmacy/nothing", key.secret()), 404,
       R"({"code":"not_found","message":"Not found",)"},
      // Bad input: 400.
      {{{"X-Original-URI", "/v1/pharmacy/orders/"}},
       400,
       R"({"code":"bad_request","message":"Bad request: Missing the original )"
       R"(method)"},
      {{{"X-Original-Method", "GET"}},
       400,
       R"({"code":"bad_request","message":"Bad request: Missing the original )"
       R"(URI)"},
      {Nginx("GET", "/v1/pharmacy/orders/\xff", key.secret()), 400,
       R"({"code":"bad_request","message":"Bad request: http.path)"},
      {Nginx("GET", "/v1/pharmacy/orders/%2E%2E/", key.secret()), 400,
       R"({"code":"bad_request","message":"Bad request: Invalid request )"},
      {Nginx("TRACE", "/v1/pharmacy/orders/", key.secret()), 400,
       R"({"code":"bad_request","message":"Bad request: http.method)"},
  };
  for (const Case& c : cases) {
    auto res = client_->Get("/authz", c.headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, c.status) << c.body_prefix;
    EXPECT_THAT(res->body, StartsWith(c.body_prefix));
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    EXPECT_FALSE(res->has_header("X-Scopekeeper-Key-Id"));
    EXPECT_THAT(res->body,
                HasSubstr(absl::StrCat(
                    "\"trace_id\":\"",
                    res->get_header_value("X-Scopekeeper-Trace-Id"), "\"}")));
  }
}

TEST_F(HttpAuthzServerTest, OversizedOrMalformedRequestsAreRefused) {
  // A head over the 16 KiB limit, a huge URI, garbage: a 4xx or a closed
  // connection, never a 200.
  const std::string big_header = absl::StrCat(
      "GET /authz HTTP/1.1\r\nHost: x\r\nX-Original-Method: GET\r\n",
      "X-Original-URI: /v1/pharmacy/orders/\r\nAuthorization: Bearer ",
      std::string(20000, 'k'), "\r\n\r\n");
  const std::string big_uri = absl::StrCat(
      "GET /authz?", std::string(20000, 'a'), " HTTP/1.1\r\nHost: x\r\n\r\n");
  for (const std::string& bad :
       {big_header, big_uri, std::string("\x01\x02garbage\r\n\r\n")}) {
    RawConnection connection(server_->port());
    connection.Send(bad);
    const std::string response = connection.ReadResponse();
    EXPECT_THAT(response, ::testing::AnyOf(StartsWith("HTTP/1.1 4"),
                                           ::testing::IsEmpty()))
        << response.substr(0, 40);
  }
  // A key over the length limit is an invalid key: 401.
  auto res = client_->Get(
      "/authz", Nginx("GET", "/v1/pharmacy/orders/", std::string(300, 'k')));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  // Still serving.
  res = client_->Get("/authz", Nginx("GET", "/v1/pharmacy/orders/", ""));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
}

TEST_F(HttpAuthzServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const std::string request = absl::StrCat(
      "GET /authz HTTP/1.1\r\nHost: sk\r\nX-Original-Method: GET\r\n"
      "X-Original-URI: /v1/pharmacy/orders/\r\nAuthorization: Bearer ",
      key.secret(), "\r\n\r\n");
  RawConnection connection(server_->port());
  for (int i = 0; i < 20; ++i) {
    connection.Send(request);
    const std::string response = connection.ReadResponse();
    EXPECT_THAT(response, StartsWith("HTTP/1.1 200 OK")) << i;
    EXPECT_THAT(response, ::testing::Not(HasSubstr("Connection: close"))) << i;
  }
}

TEST_F(HttpAuthzServerTest, ConnectionsAreBoundedAndIdleOnesClosed) {
  HttpAuthzOptions options;
  options.threads = 1;  // the limit is split across threads
  options.max_connections = 2;
  Start(nullptr, options);
  const std::string request =
      "GET /authz HTTP/1.1\r\nHost: sk\r\nX-Original-Method: GET\r\n"
      "X-Original-URI: /v1/pharmacy/orders/\r\n\r\n";
  auto first = std::make_unique<RawConnection>(server_->port());
  RawConnection second(server_->port());
  first->Send(request);
  EXPECT_THAT(first->ReadResponse(), StartsWith("HTTP/1.1 401"));
  second.Send(request);
  EXPECT_THAT(second.ReadResponse(), StartsWith("HTTP/1.1 401"));
  // Over the limit: not accepted while both stay open...
  RawConnection third(server_->port());
  third.Send(request);
  EXPECT_FALSE(third.Readable(absl::Milliseconds(300)));
  // ...and served once one closes.
  first.reset();
  EXPECT_THAT(third.ReadResponse(), StartsWith("HTTP/1.1 401"));
}

TEST_F(HttpAuthzServerTest, IdleConnectionsAreClosed) {
  HttpAuthzOptions options;
  options.idle_timeout = absl::Seconds(1);
  Start(nullptr, options);
  RawConnection idle(server_->port());
  EXPECT_EQ(idle.ReadResponse(), "");  // returns when the server closes it
}

TEST_F(HttpAuthzServerTest, CallerTokenIsRequiredWhenConfigured) {
  const CallerAuthenticator auth("authorizer", "s3cret-token");
  Start(&auth);
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  httplib::Headers headers = Nginx("GET", "/v1/pharmacy/orders/", key.secret());
  auto res = client_->Get("/authz", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  headers.emplace(kAuthorizerTokenHeader, "wrong");
  res = client_->Get("/authz", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  headers.erase(kAuthorizerTokenHeader);
  headers.emplace(kAuthorizerTokenHeader, "s3cret-token");
  res = client_->Get("/authz", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpAuthzServerTest, StoreUnavailableIs503) {
  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, true);
  auto res = client_->Get(
      "/authz", Nginx("GET", "/v1/pharmacy/orders/", "rx_ph_not_cached"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(res->body, StartsWith(R"({"code":"unavailable",)"));
}

TEST_F(HttpAuthzServerTest, BadListenAddressesAreErrors) {
  HttpAuthzOptions options;
  options.listen = "nonsense";
  EXPECT_EQ(HttpAuthzServer::Start(options, &env_.engine, &env_.state,
                                   &settings_, nullptr)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  options.listen = "gateway.internal:8080";  // an address, not a name
  EXPECT_EQ(HttpAuthzServer::Start(options, &env_.engine, &env_.state,
                                   &settings_, nullptr)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  options.listen = absl::StrCat("127.0.0.1:", server_->port());  // in use
  EXPECT_EQ(HttpAuthzServer::Start(options, &env_.engine, &env_.state,
                                   &settings_, nullptr)
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
// Requests for a key whose change is in the store but not yet applied: they
// wait for the revision without holding the epoll thread that read them.
class HttpAuthzWaitTest : public HttpAuthzServerTest {
 protected:
  HttpAuthzWaitTest() : HttpAuthzServerTest(/*key_cache_capacity=*/2) {}

  static std::string RawRequest(absl::string_view secret) {
    return absl::StrCat(
        "GET /authz HTTP/1.1\r\nHost: scopekeeper\r\n"
        "X-Original-Method: GET\r\nX-Original-URI: /v1/pharmacy/orders/o_1\r\n"
        "X-Forwarded-Host: api.rxscale.com\r\nAuthorization: Bearer ",
        secret, "\r\n\r\n");
  }

  // Starts a one-thread server, and a grant of orders_read to a key that
  // has only stock_write, written and held before its sync: requests with
  // that key must wait for it.
  void HoldAGrant(absl::Duration decision_timeout) {
    HttpAuthzOptions options;
    options.threads = 1;  // one epoll loop: a request blocking it blocks all
    options.decision_timeout = decision_timeout;
    Start(nullptr, options);
    key_ = env_.CreateKey({"pharmacy"}, {"stock_write"});
    other_ = env_.CreateKey({"pharmacy"}, {"orders_read"});
    env_.PushOut(key_.secret());
    held_ = std::make_unique<HeldSync>(&env_.store);
    held_->Arm();
    writer_ = std::thread(
        [this] { env_.Grant(key_.key().key_id(), {"orders_read"}); });
    held_->AwaitHeld();
  }

  void ReleaseTheGrant() {
    held_->Release();
    writer_.join();
  }

  void AwaitParked(size_t n) {
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (env_.state.parked_waits() != n && absl::Now() < give_up) {
      std::this_thread::yield();
    }
    ASSERT_EQ(env_.state.parked_waits(), n);
  }

  v1::CreateKeyResponse key_;
  v1::CreateKeyResponse other_;
  std::unique_ptr<HeldSync> held_;
  std::thread writer_;
};

TEST_F(HttpAuthzWaitTest,
       WaitingRequestsHoldNoThreadAndAreAnsweredWhenApplied) {
  HoldAGrant(absl::Seconds(60));  // waits end by the grant, not the timeout
  constexpr int kWaiting = 16;
  std::vector<std::unique_ptr<RawConnection>> waiting;
  for (int i = 0; i < kWaiting; ++i) {
    waiting.push_back(std::make_unique<RawConnection>(server_->port()));
    waiting.back()->Send(RawRequest(key_.secret()));
  }
  // All of them wait at once, on the serving state: a request waiting on the
  // one epoll thread would leave the others unread.
  AwaitParked(kWaiting);
  for (auto& connection : waiting) {
    EXPECT_FALSE(connection->Readable(absl::ZeroDuration()));
  }
  // The loop serves other requests meanwhile.
  auto res = client_->Get(
      "/authz", Nginx("GET", "/v1/pharmacy/orders/o_2", other_.secret()));
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  // A gateway that gives up closes its connection; the rest are answered
  // with the grant once it is applied.
  waiting.pop_back();
  ReleaseTheGrant();
  for (auto& connection : waiting) {
    const std::string response = connection->ReadResponse();
    EXPECT_THAT(response, StartsWith("HTTP/1.1 200"));
    EXPECT_THAT(response, HasSubstr(absl::StrCat("x-scopekeeper-key-id: ",
                                                 key_.key().key_id())));
    // Keep-alive goes on after a parked request.
    connection->Send(RawRequest(key_.secret()));
    EXPECT_THAT(connection->ReadResponse(), StartsWith("HTTP/1.1 200"));
  }
  EXPECT_EQ(env_.state.parked_waits(), 0u);
}

TEST_F(HttpAuthzWaitTest, AWaitPastTheDecisionTimeoutIs503) {
  HoldAGrant(absl::Milliseconds(200));
  RawConnection connection(server_->port());
  connection.Send(RawRequest(key_.secret()));
  const std::string response = connection.ReadResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(response, HasSubstr(R"({"code":"unavailable",)"));
  EXPECT_EQ(env_.state.parked_waits(), 0u);  // the wait was dropped
  ReleaseTheGrant();
  connection.Send(RawRequest(key_.secret()));
  EXPECT_THAT(connection.ReadResponse(), StartsWith("HTTP/1.1 200"));
}

TEST_F(HttpAuthzWaitTest, StoppingAnswersParkedRequestsAndNeverAllows) {
  HoldAGrant(absl::Seconds(60));
  RawConnection connection(server_->port());
  connection.Send(RawRequest(key_.secret()));
  AwaitParked(1);
  server_.reset();  // returns: the parked connection was resumed first
  EXPECT_EQ(env_.state.parked_waits(), 0u);
  // 503, or the connection closed before it was sent; never an allow.
  const std::string response = connection.ReadResponse();
  if (!response.empty()) EXPECT_THAT(response, StartsWith("HTTP/1.1 503"));
  ReleaseTheGrant();
}

}  // namespace scopekeeper
