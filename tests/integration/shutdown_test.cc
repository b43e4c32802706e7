// Shutdown of the real server: it waits for calls in flight, never for
// connections without a call. An adversarial run found that one TCP
// connection that sent nothing (or only the HTTP/2 preface), or a kept-alive
// /metrics connection, made SIGTERM take the whole grace period.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

// A TCP connection to 127.0.0.1:`port` that the test drives by hand.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address),
                         sizeof(address)) == 0;
  }
  ~RawConnection() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(absl::string_view bytes) {
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
  }
  // ClosedByPeer() reads until the peer closes (true) or sends bytes that
  // are not a close (reads them and goes on).
  bool ClosedByPeer() {
    char buffer[4096];
    while (true) {
      const ssize_t n = read(fd_, buffer, sizeof(buffer));
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::unique_ptr<ScopekeeperServer> StartServer(absl::string_view name) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  options.policy_file = "examples/policies/rxscale.json";
  auto server = ScopekeeperServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

TEST(ShutdownTest, ConnectionsWithoutACallDoNotHoldShutdown) {
  std::unique_ptr<ScopekeeperServer> server = StartServer("idle");
  ASSERT_NE(server, nullptr);
  RawConnection silent(server->port());
  RawConnection preface(server->port());
  ASSERT_TRUE(silent.connected() && preface.connected());
  preface.Send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  RawConnection scrape(server->metrics_port());
  ASSERT_TRUE(scrape.connected());
  // A kept-alive scrape, then a request that never finishes.
  scrape.Send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HT");
  // With a grace of an hour: returning at all (before the test's timeout)
  // shows it waited for none of them.
  server->Shutdown(absl::Hours(1));
  EXPECT_TRUE(scrape.ClosedByPeer());
  EXPECT_TRUE(silent.ClosedByPeer());
}

TEST(ShutdownTest, SlowMetricsClientsDoNotDelayAScrape) {
  // 40 clients trickling request heads used to occupy every cpp-httplib
  // worker, and scrapes timed out behind them.
  std::unique_ptr<ScopekeeperServer> server = StartServer("slow_scrapers");
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<RawConnection>(server->metrics_port()));
    ASSERT_TRUE(slow.back()->connected());
    slow.back()->Send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  httplib::Client scraper("127.0.0.1", server->metrics_port());
  scraper.set_read_timeout(2, 0);
  auto scraped = scraper.Get("/metrics");
  ASSERT_TRUE(scraped);
  EXPECT_EQ(scraped->status, 200);
  EXPECT_THAT(scraped->body, ::testing::HasSubstr("scopekeeper_revision"));
  server->Shutdown(absl::Hours(1));
}

}  // namespace
}  // namespace scopekeeper
