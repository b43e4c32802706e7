// Seed flow from a Node.js client (@grpc/grpc-js + @grpc/proto-loader) against
// the real scopekeeper binary. Under Bazel: bazel test //tests/node:seed_flow_test
// From a checkout (after scripts/install_deps.sh and bazel build //server:scopekeeper):
//   node --test tests/node/seed_flow.test.mjs
//
// Starts the server on 127.0.0.1 port 0 with the RxScale example policy, a
// fresh data dir and an admin token file of its own, reads the port from the
// `listening on HOST:PORT` log line, then: CreateKey, an allowed and a denied
// Authorize (HTTP route form), RevokeKey and the next Authorize denied
// KEY_REVOKED, admin calls without or with a wrong token UNAUTHENTICATED, and
// exit status 0 on SIGTERM. Stubs are built from the .proto at run time.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// Set by run_node_test.sh under Bazel; repository paths otherwise.
const SERVER_BIN = process.env.SK_SERVER_BIN || join(REPO, 'bazel-bin/server/scopekeeper');
const PROTO_FILE = process.env.SK_PROTO_FILE || join(REPO, 'proto/scopekeeper/v1/scopekeeper.proto');
const POLICY_FILE = process.env.SK_POLICY_FILE || join(REPO, 'examples/policies/rxscale.json');

const STARTUP_DEADLINE_MS = 30_000;
const RPC_DEADLINE_MS = 10_000;
const API = 'external-pharmacy';
const PREFIX = '/v1/external-pharmacy-api-v1';
const ORG = 'org_node_e2e';
const ADMIN_TOKEN = 'node-e2e-admin-token-0123456789abcdef';

let tmp;
let server;       // ChildProcess
let serverLog;    // every output line, for failure messages
let authorizer;   // scopekeeper.v1.Authorizer client
let admin;        // scopekeeper.v1.Admin client

function logTail() {
  return serverLog.slice(-50).join('\n') || '(no output)';
}

// Resolves with the port from the server's `listening on 127.0.0.1:PORT`
// line; rejects if the server exits first or says nothing in time.
function waitForPort(child) {
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(
        () => reject(new Error(`no 'listening on 127.0.0.1:PORT' line within ` +
                               `${STARTUP_DEADLINE_MS} ms; output:\n${logTail()}`)),
        STARTUP_DEADLINE_MS);
    const onLine = (line) => {
      serverLog.push(line);
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    // The server logs to stderr; stdout is read too so nothing is missed.
    createInterface({ input: child.stderr }).on('line', onLine);
    createInterface({ input: child.stdout }).on('line', onLine);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? code}) before listening; output:\n${logTail()}`));
    });
  });
}

function adminMetadata(token) {
  const md = new grpc.Metadata();
  md.add('authorization', `Bearer ${token}`);
  return md;
}

// Calls client[method](request) and returns a Promise of the response.
function call(client, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolveCall, reject) => {
    client[method](request, metadata, { deadline: Date.now() + RPC_DEADLINE_MS },
                   (err, response) => (err ? reject(err) : resolveCall(response)));
  });
}

function createKey(name, scopes) {
  return call(admin, 'CreateKey',
              { organization_id: ORG, name, apis: [API], scopes },
              adminMetadata(ADMIN_TOKEN));
}

function authorize(secret, method, path) {
  return call(authorizer, 'Authorize',
              { api_key: secret, http: { api: API, method, path } });
}

before(async () => {
  assert.ok(existsSync(SERVER_BIN),
            `${SERVER_BIN} is missing; run: bazel build //server:scopekeeper`);
  tmp = process.env.TEST_TMPDIR || mkdtempSync(join(tmpdir(), 'scopekeeper-node-'));
  const tokenFile = join(tmp, 'admin_token');
  writeFileSync(tokenFile, ADMIN_TOKEN + '\n', { mode: 0o600 });

  serverLog = [];
  // setpriv (util-linux) execs the server with PR_SET_PDEATHSIG, so it gets
  // SIGTERM if this process dies before after() stops it.
  server = spawn('/usr/bin/setpriv', [
    '--pdeathsig', 'TERM', '--', SERVER_BIN,
    '--listen=127.0.0.1:0',
    `--data_dir=${join(tmp, 'data')}`,
    `--admin_token_file=${tokenFile}`,
    `--policy_file=${POLICY_FILE}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await waitForPort(server);

  const definition = protoLoader.loadSync(PROTO_FILE, {
    keepCase: true,    // field names as in the .proto (missing_scopes)
    longs: String,     // uint64 revision
    enums: String,     // 'ALLOWED', 'KEY_REVOKED'
    defaults: true,    // unset fields read as their defaults, as in proto3
    oneofs: true,
    includeDirs: ['/usr/include'],  // google/protobuf/*.proto (libprotobuf-dev)
  });
  const v1 = grpc.loadPackageDefinition(definition).scopekeeper.v1;
  const address = `127.0.0.1:${port}`;
  const options = { 'grpc.enable_http_proxy': 0 };
  authorizer = new v1.Authorizer(address, grpc.credentials.createInsecure(), options);
  admin = new v1.Admin(address, grpc.credentials.createInsecure(), options);
});

after(async () => {
  authorizer?.close();
  admin?.close();
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    const [code, signal] = await exited;
    assert.equal(code, 0, `after SIGTERM the server exited with ${signal ?? code}, ` +
                          `want 0; output:\n${logTail()}`);
  }
  if (!process.env.TEST_TMPDIR && tmp) rmSync(tmp, { recursive: true, force: true });
});

test('a key with the route\'s scope is allowed', async () => {
  const created = await createKey('node allowed', ['orders_read']);
  assert.ok(created.key.key_id, 'CreateKey returned no key_id');
  assert.match(created.secret, /^rxs_ph_/, 'secret has the external-pharmacy key_prefix');
  assert.ok(BigInt(created.revision) > 0n, `revision ${created.revision}`);

  const resp = await authorize(created.secret, 'GET', `${PREFIX}/pharmacy_orders/?page=2`);
  assert.equal(resp.allowed, true, JSON.stringify(resp));
  assert.equal(resp.reason, 'ALLOWED');
  assert.equal(resp.http_status, 200);
  assert.equal(resp.matched_route, 'GET /pharmacy_orders/');
  assert.equal(resp.key_id, created.key.key_id);
  assert.equal(resp.organization_id, ORG);
  assert.deepEqual(resp.missing_scopes, []);
  assert.ok(BigInt(resp.revision) >= BigInt(created.revision),
            `decision at revision ${resp.revision}, key created at ${created.revision}`);
  assert.ok(resp.trace_id, 'a trace_id is generated when the request has none');
});

test('a key without the route\'s scope is denied, naming the missing scope', async () => {
  const created = await createKey('node denied', ['orders_read']);
  const resp = await authorize(created.secret, 'PATCH', `${PREFIX}/pharmacy_orders/ord_1/status`);
  assert.equal(resp.allowed, false, JSON.stringify(resp));
  assert.equal(resp.reason, 'INSUFFICIENT_SCOPE');
  assert.equal(resp.http_status, 403);
  assert.equal(resp.message, 'Insufficient scope. Required: orders_write');
  assert.deepEqual(resp.missing_scopes, ['orders_write']);
  assert.equal(resp.matched_route, 'PATCH /pharmacy_orders/{uid}/status');
  assert.equal(resp.key_id, created.key.key_id);
});

test('a revoked key is denied on the very next Authorize', async () => {
  const created = await createKey('node revoked', ['orders_read']);
  const path = `${PREFIX}/pharmacy_orders/`;
  assert.equal((await authorize(created.secret, 'GET', path)).allowed, true);

  const revoked = await call(admin, 'RevokeKey',
                             { key_id: created.key.key_id, reason: 'node e2e' },
                             adminMetadata(ADMIN_TOKEN));
  assert.equal(revoked.status, 'REVOKED');
  assert.equal(revoked.revoke_reason, 'node e2e');
  assert.ok(BigInt(revoked.revision) > BigInt(created.revision),
            `revoke at revision ${revoked.revision}, create at ${created.revision}`);

  const resp = await authorize(created.secret, 'GET', path);
  assert.equal(resp.allowed, false, JSON.stringify(resp));
  assert.equal(resp.reason, 'KEY_REVOKED');
  assert.equal(resp.http_status, 401);
  assert.equal(resp.message, 'Invalid or expired API key');
});

test('admin calls without the admin token are UNAUTHENTICATED', async () => {
  const request = { organization_id: ORG, name: 'node intruder', apis: [API],
                    scopes: ['orders_read'] };
  for (const [what, metadata] of [['no token', new grpc.Metadata()],
                                  ['a wrong token', adminMetadata('not-the-admin-token')]]) {
    await assert.rejects(call(admin, 'CreateKey', request, metadata),
                         (err) => {
                           assert.equal(err.code, grpc.status.UNAUTHENTICATED,
                                        `CreateKey with ${what}: ${err.code} ${err.details}`);
                           return true;
                         });
  }
  // Nothing was created by the rejected calls.
  const listed = await call(admin, 'ListKeys', { organization_id: ORG, include_revoked: true },
                            adminMetadata(ADMIN_TOKEN));
  assert.ok(!listed.keys.some((k) => k.name === 'node intruder'),
            listed.keys.map((k) => k.name).join(', '));
});
