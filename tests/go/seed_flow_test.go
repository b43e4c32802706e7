// Seed flow from a Go client (protoc-gen-go/-grpc stubs) against the real server.
// Under Bazel: bazel test //tests/go:seed_flow_test   (offline, see run_go_test.sh)
// From the repository root, after bazel build //server:scopekeeper:
//
//	tests/go/run_go_test.sh tests/go/seed_flow_test.go proto/scopekeeper/v1/scopekeeper.proto \
//	  SK_SERVER_BIN=bazel-bin/server/scopekeeper SK_POLICY_FILE=examples/policies/rxscale.json
//
// Starts the server on 127.0.0.1 port 0 with the RxScale example policy, a
// fresh data dir and an admin token file of its own, reads the port from the
// `listening on HOST:PORT` log line, then: CreateKey, an allowed and a denied
// Authorize (HTTP route form), RevokeKey and the next Authorize denied
// KEY_REVOKED, admin calls without or with a wrong token UNAUTHENTICATED, and
// exit status 0 on SIGTERM. Paths come from SK_SERVER_BIN and SK_POLICY_FILE.
package seedflow

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "scopekeeper/v1"
)

const (
	startupDeadline = 30 * time.Second
	rpcDeadline     = 10 * time.Second
	api             = "external-pharmacy"
	prefix          = "/v1/external-pharmacy-api-v1"
	org             = "org_go_e2e"
	adminToken      = "go-e2e-admin-token-0123456789abcdef"
)

var listening = regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+)`)

// server is the scopekeeper binary as a child process.
type server struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  []string      // every output line, for failure messages
	port chan int      // the port from the listening line
	done chan struct{} // closed when the output reached EOF
}

func (s *server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) == 0 {
		return "(no output)"
	}
	from := len(s.log) - 50
	if from < 0 {
		from = 0
	}
	return strings.Join(s.log[from:], "\n")
}

func (s *server) drain(r io.Reader) {
	defer close(s.done)
	sent := false
	scanner := bufio.NewScanner(r)
	for scanner.Scan() {
		line := scanner.Text()
		s.mu.Lock()
		s.log = append(s.log, line)
		s.mu.Unlock()
		if m := listening.FindStringSubmatch(line); m != nil && !sent {
			port, _ := strconv.Atoi(m[1])
			s.port <- port
			sent = true
		}
	}
}

// startServer starts the binary and returns it with the port it listens on.
// The server is stopped (SIGTERM, exit status 0 required) in t.Cleanup.
func startServer(t *testing.T) (*server, int) {
	t.Helper()
	bin := os.Getenv("SK_SERVER_BIN")
	policy := os.Getenv("SK_POLICY_FILE")
	if bin == "" || policy == "" {
		t.Fatal("SK_SERVER_BIN and SK_POLICY_FILE must be set (run_go_test.sh sets them)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v; run: bazel build //server:scopekeeper", err)
	}
	tmp := t.TempDir()
	tokenFile := filepath.Join(tmp, "admin_token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{port: make(chan int, 1), done: make(chan struct{})}
	s.cmd = exec.Command(bin, "--listen=127.0.0.1:0", "--data_dir="+filepath.Join(tmp, "data"),
		"--admin_token_file="+tokenFile, "--policy_file="+policy)
	// One pipe for stdout and stderr, so no line is missed or left blocking.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	// If this test process dies first, the kernel SIGTERMs the server.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go s.drain(r)
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { exited <- s.cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("after SIGTERM the server exited with %v, want 0; output:\n%s", err, s.logTail())
			}
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-exited
			t.Errorf("server did not exit within 20 s of SIGTERM; output:\n%s", s.logTail())
		}
		r.Close()
	})

	select {
	case port := <-s.port:
		return s, port
	case <-s.done:
		t.Fatalf("server closed its output (exited?) before listening; output:\n%s", s.logTail())
	case <-time.After(startupDeadline):
		t.Fatalf("no 'listening on 127.0.0.1:PORT' line within %v; output:\n%s", startupDeadline, s.logTail())
	}
	return nil, 0
}

func adminContext(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func TestSeedFlow(t *testing.T) {
	srv, port := startServer(t)
	conn, err := grpc.Dial(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithTimeout(rpcDeadline))
	if err != nil {
		t.Fatalf("dial: %v; output:\n%s", err, srv.logTail())
	}
	defer conn.Close()
	authorizer := pb.NewAuthorizerClient(conn)
	admin := pb.NewAdminClient(conn)

	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), rpcDeadline)
	}
	createKey := func(t *testing.T, name string, scopes ...string) *pb.CreateKeyResponse {
		t.Helper()
		ctx, cancel := call()
		defer cancel()
		resp, err := admin.CreateKey(adminContext(ctx, adminToken), &pb.CreateKeyRequest{
			OrganizationId: org, Name: name, Apis: []string{api}, Scopes: scopes})
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		if resp.GetKey().GetKeyId() == "" || !strings.HasPrefix(resp.GetSecret(), "rxs_ph_") ||
			resp.GetRevision() == 0 {
			t.Fatalf("CreateKey: want a key_id, an rxs_ph_ secret and a revision, got key_id %q "+
				"secret prefix %q revision %d", resp.GetKey().GetKeyId(),
				resp.GetSecret()[:min(len(resp.GetSecret()), 7)], resp.GetRevision())
		}
		return resp
	}
	authorize := func(t *testing.T, secret, method, path string) *pb.AuthorizeResponse {
		t.Helper()
		ctx, cancel := call()
		defer cancel()
		resp, err := authorizer.Authorize(ctx, &pb.AuthorizeRequest{
			ApiKey: secret,
			Target: &pb.AuthorizeRequest_Http{Http: &pb.HttpRequestTarget{Api: api, Method: method, Path: path}},
		})
		if err != nil {
			t.Fatalf("Authorize %s %s: %v", method, path, err)
		}
		return resp
	}

	t.Run("KeyWithScopeIsAllowed", func(t *testing.T) {
		key := createKey(t, "go allowed", "orders_read")
		resp := authorize(t, key.GetSecret(), "GET", prefix+"/pharmacy_orders/?page=2")
		if !resp.GetAllowed() || resp.GetReason() != pb.Reason_ALLOWED || resp.GetHttpStatus() != 200 {
			t.Errorf("want allowed ALLOWED 200, got %v", resp)
		}
		if got, want := resp.GetMatchedRoute(), "GET /pharmacy_orders/"; got != want {
			t.Errorf("matched_route %q, want %q", got, want)
		}
		if resp.GetKeyId() != key.GetKey().GetKeyId() || resp.GetOrganizationId() != org {
			t.Errorf("key_id %q organization_id %q, want %q %q", resp.GetKeyId(),
				resp.GetOrganizationId(), key.GetKey().GetKeyId(), org)
		}
		if len(resp.GetMissingScopes()) != 0 {
			t.Errorf("missing_scopes %v, want none", resp.GetMissingScopes())
		}
		if resp.GetRevision() < key.GetRevision() {
			t.Errorf("decision at revision %d, key created at %d", resp.GetRevision(), key.GetRevision())
		}
		if resp.GetTraceId() == "" {
			t.Error("no trace_id generated for a request without one")
		}
	})

	t.Run("KeyWithoutScopeIsDeniedNamingIt", func(t *testing.T) {
		key := createKey(t, "go denied", "orders_read")
		resp := authorize(t, key.GetSecret(), "PATCH", prefix+"/pharmacy_orders/ord_1/status")
		if resp.GetAllowed() || resp.GetReason() != pb.Reason_INSUFFICIENT_SCOPE || resp.GetHttpStatus() != 403 {
			t.Errorf("want denied INSUFFICIENT_SCOPE 403, got %v", resp)
		}
		if got, want := resp.GetMessage(), "Insufficient scope. Required: orders_write"; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
		if got, want := resp.GetMissingScopes(), []string{"orders_write"}; !reflect.DeepEqual(got, want) {
			t.Errorf("missing_scopes %v, want %v", got, want)
		}
		if got, want := resp.GetMatchedRoute(), "PATCH /pharmacy_orders/{uid}/status"; got != want {
			t.Errorf("matched_route %q, want %q", got, want)
		}
	})

	t.Run("RevokedKeyIsDeniedOnTheNextCall", func(t *testing.T) {
		key := createKey(t, "go revoked", "orders_read")
		path := prefix + "/pharmacy_orders/"
		if resp := authorize(t, key.GetSecret(), "GET", path); !resp.GetAllowed() {
			t.Fatalf("before RevokeKey: want allowed, got %v", resp)
		}
		ctx, cancel := call()
		defer cancel()
		revoked, err := admin.RevokeKey(adminContext(ctx, adminToken),
			&pb.RevokeKeyRequest{KeyId: key.GetKey().GetKeyId(), Reason: "go e2e"})
		if err != nil {
			t.Fatalf("RevokeKey: %v", err)
		}
		if revoked.GetStatus() != pb.KeyStatus_REVOKED || revoked.GetRevokeReason() != "go e2e" {
			t.Errorf("RevokeKey returned status %v reason %q", revoked.GetStatus(), revoked.GetRevokeReason())
		}
		if revoked.GetRevision() <= key.GetRevision() {
			t.Errorf("revoke at revision %d, create at %d", revoked.GetRevision(), key.GetRevision())
		}
		resp := authorize(t, key.GetSecret(), "GET", path)
		if resp.GetAllowed() || resp.GetReason() != pb.Reason_KEY_REVOKED || resp.GetHttpStatus() != 401 {
			t.Errorf("want denied KEY_REVOKED 401, got %v", resp)
		}
		if got, want := resp.GetMessage(), "Invalid or expired API key"; got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	})

	t.Run("AdminCallsWithoutTheTokenAreUnauthenticated", func(t *testing.T) {
		request := &pb.CreateKeyRequest{OrganizationId: org, Name: "go intruder", Apis: []string{api},
			Scopes: []string{"orders_read"}}
		for what, with := range map[string]func(context.Context) context.Context{
			"no token":      func(ctx context.Context) context.Context { return ctx },
			"a wrong token": func(ctx context.Context) context.Context { return adminContext(ctx, "not-the-admin-token") },
		} {
			ctx, cancel := call()
			_, err := admin.CreateKey(with(ctx), request)
			cancel()
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("CreateKey with %s: %v, want Unauthenticated", what, err)
			}
		}
		ctx, cancel := call()
		defer cancel()
		listed, err := admin.ListKeys(adminContext(ctx, adminToken),
			&pb.ListKeysRequest{OrganizationId: org, IncludeRevoked: true})
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		for _, k := range listed.GetKeys() {
			if k.GetName() == "go intruder" {
				t.Errorf("a rejected CreateKey created key %s", k.GetKeyId())
			}
		}
	})
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
