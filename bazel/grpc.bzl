"""protoc + grpc_cpp_plugin codegen for Debian's system protobuf/gRPC.

protoc, the plugin and the system protos are used by absolute path and are not
tracked by Bazel: after upgrading them, run `bazel clean --expunge`.
"""

_PATHS = ["--proto_path=.", "--proto_path=/usr/include", "--proto_path=/usr/share/grpc-proto"]

def _outs(protos, grpc):
    hdrs, srcs = [], []
    for p in protos:
        base = p[:-len(".proto")]
        hdrs += [base + ".pb.h"] + ([base + ".grpc.pb.h"] if grpc else [])
        srcs += [base + ".pb.cc"] + ([base + ".grpc.pb.cc"] if grpc else [])
    return hdrs, srcs

def _protoc(out, grpc, files, messages = True):
    plugin = ["--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin", "--grpc_out=" + out] if grpc else []
    cpp = ["--cpp_out=" + out] if messages else []
    return " ".join(["/usr/bin/protoc"] + _PATHS + cpp + plugin + files)

def cc_grpc_library(name, srcs, deps = [], grpc = True, visibility = None, **kwargs):
    """C++ messages (and gRPC stubs unless grpc = False) for workspace protos.

    Args:
      name: target name; `<name>_protos` is a filegroup of the .proto sources.
      srcs: .proto files in this package.
      deps: full labels of other cc_grpc_library targets whose protos are imported.
      grpc: also generate service stubs.
      visibility: visibility of the generated targets.
      **kwargs: passed to the cc_library.
    """
    protos = srcs + [d + "_protos" for d in deps]
    native.filegroup(name = name + "_protos", srcs = protos, visibility = visibility)
    hdrs, cc_srcs = _outs(srcs, grpc)
    native.genrule(
        name = name + "_codegen",
        srcs = protos,
        outs = hdrs + cc_srcs,
        cmd = _protoc("$(GENDIR)", grpc, ["$(location %s)" % s for s in srcs]),
    )
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        visibility = visibility,
        deps = deps + ["@system//:protobuf"] + (["@system//:grpc++"] if grpc else []),
        **kwargs
    )

def cc_grpc_service_library(name, srcs, proto, visibility = None, **kwargs):
    """gRPC service stubs only, for protos whose messages are `proto`.

    Keeps messages and services in separate targets, so code that needs only
    the messages (the decision core, the storage layer) never links gRPC.

    Args:
      name: target name.
      srcs: .proto files in this package, the same as `proto`'s srcs.
      proto: label of the cc_grpc_library(grpc = False) with their messages.
      visibility: visibility of the generated target.
      **kwargs: passed to the cc_library.
    """
    hdrs = [p[:-len(".proto")] + ".grpc.pb.h" for p in srcs]
    cc_srcs = [p[:-len(".proto")] + ".grpc.pb.cc" for p in srcs]
    native.genrule(
        name = name + "_codegen",
        srcs = srcs + [proto + "_protos"],
        outs = hdrs + cc_srcs,
        cmd = _protoc("$(GENDIR)", True, ["$(location %s)" % s for s in srcs], messages = False),
    )
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        visibility = visibility,
        deps = [proto, "@system//:grpc++"],
        **kwargs
    )

def cc_grpc_system_library(name, protos, grpc = True, visibility = None, **kwargs):
    """C++ code for protos shipped by Debian (e.g. grpc/health/v1/health.proto)."""
    native.filegroup(name = name + "_protos", srcs = [], visibility = visibility)
    hdrs, cc_srcs = _outs(protos, grpc)
    native.genrule(name = name + "_codegen", outs = hdrs + cc_srcs, cmd = _protoc("$(RULEDIR)", grpc, protos))
    native.cc_library(
        name = name,
        srcs = cc_srcs,
        hdrs = hdrs,
        includes = ["."],
        visibility = visibility,
        deps = ["@system//:protobuf"] + (["@system//:grpc++"] if grpc else []),
        **kwargs
    )
