"""Python stubs for the Scopekeeper API, generated from the .proto at runtime.

Debian's python3-grpc-tools (grpc_tools.protoc) compiles
proto/scopekeeper/v1/scopekeeper.proto into a cache directory keyed by a hash
of the inputs, so a changed .proto regenerates and an unchanged one is reused.
Nothing generated is checked in. Used by the Python tests
(tests/python/authorize_e2e_test.py and others); run with /usr/bin/python3
(it has grpc, grpc_tools and google.protobuf).

    stubs = sk_proto.load()                      # ~/.cache/scopekeeper/pystubs
    stub = stubs.pb2_grpc.AuthorizerStub(sk_proto.channel("127.0.0.1:50051"))
    stub.Authorize(stubs.pb2.AuthorizeRequest(api_key=...), timeout=5)

load(with_reflection=True) also compiles grpc-proto's
grpc/reflection/v1alpha/reflection.proto (the only reflection version the C++
server serves) into the package `sk_reflection_v1alpha`: the real name
`grpc.reflection...` would collide with the installed `grpc` package.
"""

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import types

# Bump when the generation recipe changes, to invalidate old caches.
_RECIPE_VERSION = "1"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Import path of the contract, as the C++ build compiles it (--proto_path=.).
PROTO_IMPORT_PATH = "proto/scopekeeper/v1/scopekeeper.proto"
DEFAULT_PROTO_FILE = os.path.join(REPO_ROOT, PROTO_IMPORT_PATH)
REFLECTION_PROTO_FILE = "/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto"
_REFLECTION_PACKAGE = "sk_reflection_v1alpha"

_SCOPEKEEPER_MODULE = "proto.scopekeeper.v1.scopekeeper_pb2"


class ProtoGenerationError(RuntimeError):
    """grpc_tools.protoc failed or is missing."""


def default_cache_dir():
    """Returns $XDG_CACHE_HOME/scopekeeper/pystubs (~/.cache/... by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache")
    return os.path.join(base, "scopekeeper", "pystubs")


def _well_known_include_dir():
    """Directory holding google/protobuf/*.proto for grpc_tools.protoc."""
    candidates = []
    try:
        import importlib.resources as resources
        candidates.append(str(resources.files("grpc_tools") / "_proto"))
    except (ImportError, AttributeError, TypeError):
        pass
    candidates.append("/usr/include")
    for d in candidates:
        if os.path.isfile(os.path.join(d, "google", "protobuf", "timestamp.proto")):
            return d
    raise ProtoGenerationError(
        "google/protobuf/timestamp.proto not found in %s; install python3-grpc-tools "
        "or libprotobuf-dev (scripts/install_deps.sh)" % ", ".join(candidates))


def _proto_path_args(proto_file):
    """--proto_path flags that give proto_file its canonical import path."""
    proto_file = os.path.abspath(proto_file)
    suffix = os.sep + PROTO_IMPORT_PATH.replace("/", os.sep)
    if proto_file.endswith(suffix):
        return ["--proto_path=" + proto_file[: -len(suffix)]]
    # Elsewhere (a copy, a runfiles tree laid out differently): map it onto
    # the canonical path so the generated module names stay the same.
    if os.path.basename(proto_file) != os.path.basename(PROTO_IMPORT_PATH):
        raise ProtoGenerationError("expected a file named scopekeeper.proto, got " + proto_file)
    return ["--proto_path=%s=%s" % (os.path.dirname(PROTO_IMPORT_PATH), os.path.dirname(proto_file))]


def _run_protoc(args):
    try:
        from grpc_tools import protoc
    except ImportError as e:
        raise ProtoGenerationError(
            "grpc_tools is missing (%s); use /usr/bin/python3 with python3-grpc-tools "
            "installed (scripts/install_deps.sh)" % e) from e
    argv = ["grpc_tools.protoc"] + args + ["--proto_path=" + _well_known_include_dir()]
    rc = protoc.main(argv)
    if rc != 0:
        raise ProtoGenerationError("protoc failed (exit %d): %s" % (rc, " ".join(argv)))


def _input_digest(proto_file, with_reflection):
    h = hashlib.sha256()
    h.update(("recipe %s reflection %d\n" % (_RECIPE_VERSION, with_reflection)).encode())
    paths = [proto_file] + ([REFLECTION_PROTO_FILE] if with_reflection else [])
    for p in paths:
        with open(p, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def _generate(dest, proto_file, with_reflection):
    """Compiles into a fresh directory next to dest, then renames it into place."""
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".gen-", dir=parent)
    try:
        out = ["--python_out=" + tmp, "--grpc_python_out=" + tmp]
        _run_protoc(_proto_path_args(proto_file) + out + [PROTO_IMPORT_PATH])
        packages = [os.path.dirname(PROTO_IMPORT_PATH)]
        if with_reflection:
            if not os.path.isfile(REFLECTION_PROTO_FILE):
                raise ProtoGenerationError(REFLECTION_PROTO_FILE + " not found; install grpc-proto")
            _run_protoc(["--proto_path=%s=%s" % (_REFLECTION_PACKAGE, os.path.dirname(REFLECTION_PROTO_FILE))]
                        + out + [_REFLECTION_PACKAGE + "/reflection.proto"])
            packages.append(_REFLECTION_PACKAGE)
        # Regular packages (not namespace ones), so the repo's own proto/
        # directory on sys.path cannot shadow the generated modules.
        for pkg in packages:
            parts = pkg.split("/")
            for i in range(1, len(parts) + 1):
                open(os.path.join(tmp, *parts[:i], "__init__.py"), "a").close()
        try:
            os.rename(tmp, dest)
        except OSError:
            if not os.path.isdir(dest):  # not merely lost a race to another process
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(cache_dir=None, proto_file=None, with_reflection=False):
    """Generates (if needed) and imports the stubs.

    Returns a namespace with pb2 and pb2_grpc (scopekeeper.v1), plus
    reflection_pb2 and reflection_pb2_grpc when with_reflection, and dir (the
    directory put on sys.path). Raises ProtoGenerationError when protoc fails.
    """
    cache_dir = cache_dir or default_cache_dir()
    proto_file = os.path.abspath(proto_file or DEFAULT_PROTO_FILE)
    dest = os.path.join(os.path.abspath(cache_dir), _input_digest(proto_file, with_reflection))
    if not os.path.isdir(dest):
        _generate(dest, proto_file, with_reflection)
    loaded = sys.modules.get(_SCOPEKEEPER_MODULE)
    if loaded is not None and not os.path.abspath(loaded.__file__).startswith(dest + os.sep):
        raise ProtoGenerationError("scopekeeper stubs already imported from " + loaded.__file__)
    if dest not in sys.path:
        sys.path.insert(0, dest)
    ns = types.SimpleNamespace(dir=dest)
    ns.pb2 = importlib.import_module(_SCOPEKEEPER_MODULE)
    ns.pb2_grpc = importlib.import_module(_SCOPEKEEPER_MODULE + "_grpc")
    if with_reflection:
        ns.reflection_pb2 = importlib.import_module(_REFLECTION_PACKAGE + ".reflection_pb2")
        ns.reflection_pb2_grpc = importlib.import_module(_REFLECTION_PACKAGE + ".reflection_pb2_grpc")
    return ns


def channel(addr):
    """An insecure channel to addr ("host:port") that ignores http(s)_proxy."""
    import grpc
    return grpc.insecure_channel(addr, options=[("grpc.enable_http_proxy", 0)])


def admin_metadata(token):
    """Call metadata carrying the admin bearer token."""
    return (("authorization", "Bearer " + token),)


def read_admin_token(path):
    """The first line of path, stripped (the server's token file format)."""
    with open(path, encoding="utf-8") as f:
        token = f.readline().strip()
    if not token:
        raise ValueError("admin token file %s is empty" % path)
    return token
