#!/usr/bin/python3
"""skctl: a small command-line client for a running Scopekeeper.

Run it with Debian's /usr/bin/python3 (it has grpc and grpc_tools). Stubs are
generated from proto/scopekeeper/v1/scopekeeper.proto on first use
(scripts/sk_proto.py) into ~/.cache/scopekeeper/pystubs.

  skctl.py create-key --org org_demo --api external-pharmacy --scope orders_read
  skctl.py authorize --key rxs_ph_... --api external-pharmacy \\
      GET /v1/external-pharmacy-api-v1/pharmacy_orders/
  skctl.py describe --key rxs_ph_...
  skctl.py revoke --key-id key_...

Admin calls (create-key, revoke) send `authorization: Bearer <token>` read from
--admin-token-file. Exit status: 0 on success (authorize: allowed), 1 when
authorize denies, 2 on usage or RPC errors.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sk_proto  # noqa: E402  (lives next to this script)

EXIT_DENIED = 1
EXIT_ERROR = 2


class CliError(Exception):
    """A problem to report on stderr with exit status EXIT_ERROR."""


def _to_json(message):
    from google.protobuf import json_format
    return json_format.MessageToJson(
        message, preserving_proto_field_name=True, including_default_value_fields=True, indent=2)


def _admin_metadata(args):
    try:
        return sk_proto.admin_metadata(sk_proto.read_admin_token(args.admin_token_file))
    except (OSError, ValueError) as e:
        raise CliError(
            "cannot read the admin token (%s); pass --admin-token-file or set "
            "SCOPEKEEPER_ADMIN_TOKEN_FILE" % e) from None


def cmd_create_key(args, stubs, chan):
    req = stubs.pb2.CreateKeyRequest(
        organization_id=args.org, name=args.name, apis=args.api, environment=args.environment,
        scopes=args.scope, bundles=args.bundle)
    resp = stubs.pb2_grpc.AdminStub(chan).CreateKey(
        req, timeout=args.timeout, metadata=_admin_metadata(args))
    print(json.dumps({
        "key_id": resp.key.key_id,
        "secret": resp.secret,
        "organization_id": resp.key.organization_id,
        "apis": list(resp.key.apis),
        "effective_scopes": list(resp.key.effective_scopes),
        "display_prefix": resp.key.display_prefix,
        "revision": resp.revision,
    }, indent=2))
    return 0


def cmd_authorize(args, stubs, chan):
    req = stubs.pb2.AuthorizeRequest(
        api_key=args.key, organization_id=args.org, trace_id=args.trace_id,
        min_revision=args.min_revision,
        http=stubs.pb2.HttpRequestTarget(api=args.api, method=args.method, path=args.path))
    resp = stubs.pb2_grpc.AuthorizerStub(chan).Authorize(req, timeout=args.timeout)
    print(_to_json(resp))
    return 0 if resp.allowed else EXIT_DENIED


def cmd_describe(args, stubs, chan):
    req = stubs.pb2.DescribeKeyRequest(api_key=args.key, organization_id=args.org)
    print(_to_json(stubs.pb2_grpc.AuthorizerStub(chan).DescribeKey(req, timeout=args.timeout)))
    return 0


def cmd_revoke(args, stubs, chan):
    req = stubs.pb2.RevokeKeyRequest(key_id=args.key_id, reason=args.reason)
    resp = stubs.pb2_grpc.AdminStub(chan).RevokeKey(
        req, timeout=args.timeout, metadata=_admin_metadata(args))
    print(_to_json(resp))
    return 0


def build_parser():
    p = argparse.ArgumentParser(
        prog="skctl.py", description="Command-line client for Scopekeeper.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--addr", default=os.environ.get("SCOPEKEEPER_ADDR", "127.0.0.1:50051"),
                   help="server address (env SCOPEKEEPER_ADDR; default %(default)s)")
    p.add_argument("--admin-token-file",
                   default=os.environ.get("SCOPEKEEPER_ADMIN_TOKEN_FILE")
                   or os.path.join(sk_proto.REPO_ROOT, ".run", "data", "admin_token"),
                   help="admin bearer token, first line (env SCOPEKEEPER_ADMIN_TOKEN_FILE; "
                        "default %(default)s)")
    p.add_argument("--timeout", type=float, default=10.0, help="deadline per call, seconds")
    p.add_argument("--proto", default=sk_proto.DEFAULT_PROTO_FILE, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("create-key", help="create a key and print its secret (shown once) as JSON")
    c.add_argument("--org", required=True, help="organization id")
    c.add_argument("--api", action="append", required=True, help="API name (repeatable); the "
                   "first one's key_prefix prefixes the secret")
    c.add_argument("--scope", action="append", default=[], help="scope to grant (repeatable)")
    c.add_argument("--bundle", action="append", default=[], help="bundle to grant (repeatable)")
    c.add_argument("--name", default="", help="human-readable key name")
    c.add_argument("--environment", default="", help='metadata, e.g. "live" or "test"')
    c.set_defaults(func=cmd_create_key)

    a = sub.add_parser("authorize", help="decide one HTTP request; exit 0 if allowed, 1 if denied")
    a.add_argument("--key", required=True, help="the API key secret, verbatim")
    a.add_argument("--api", required=True, help="API name, e.g. external-pharmacy")
    a.add_argument("--org", default="", help="organization the request names (default: the key's)")
    a.add_argument("--trace-id", default="")
    a.add_argument("--min-revision", type=int, default=0)
    a.add_argument("method", help="GET, POST, PUT, PATCH, DELETE or HEAD")
    a.add_argument("path", help="request path, e.g. /v1/external-pharmacy-api-v1/pharmacy_orders/")
    a.set_defaults(func=cmd_authorize)

    d = sub.add_parser("describe", help="show a key's metadata and effective scopes")
    d.add_argument("--key", required=True, help="the API key secret, verbatim")
    d.add_argument("--org", default="")
    d.set_defaults(func=cmd_describe)

    r = sub.add_parser("revoke", help="revoke a key (idempotent)")
    r.add_argument("--key-id", required=True)
    r.add_argument("--reason", default="")
    r.set_defaults(func=cmd_revoke)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        stubs = sk_proto.load(proto_file=args.proto)
    except (sk_proto.ProtoGenerationError, OSError) as e:
        print("skctl: cannot generate the Python stubs: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    import grpc
    with sk_proto.channel(args.addr) as chan:
        try:
            return args.func(args, stubs, chan)
        except CliError as e:
            print("skctl: %s" % e, file=sys.stderr)
            return EXIT_ERROR
        except grpc.RpcError as e:
            print("skctl: %s failed: %s: %s" % (args.command, e.code().name, e.details()),
                  file=sys.stderr)
            return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
