"""mutants_test: a test whose binary is built with -DSCOPEKEEPER_MUTANTS.

The decision path has a few deliberately wrong variants ("mutants", see
base/mutants.h) behind `#ifdef SCOPEKEEPER_MUTANTS`, so that a test can prove
the differential test catches each of them. Production builds never define
the macro. A mutants_test builds its `binary` (a cc_binary, and with it every
library it links) in a configuration that adds the define, through a
configuration transition: no library needs a second, mutant target, and a
new dependency cannot bring a non-mutant copy of the core into the binary.
The binary gets its own output directory (bazel-out/k8-fastbuild-ST-...).
"""

def _mutants_transition_impl(settings, attr):
    return {"//command_line_option:copt": settings["//command_line_option:copt"] + ["-DSCOPEKEEPER_MUTANTS"]}

_mutants_transition = transition(
    implementation = _mutants_transition_impl,
    inputs = ["//command_line_option:copt"],
    outputs = ["//command_line_option:copt"],
)

def _mutants_test_impl(ctx):
    binary = ctx.attr.binary[0][DefaultInfo]
    executable = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = executable,
        target_file = binary.files_to_run.executable,
        is_executable = True,
    )
    return [DefaultInfo(
        executable = executable,
        runfiles = ctx.runfiles(files = [executable]).merge(binary.default_runfiles),
    )]

mutants_test = rule(
    implementation = _mutants_test_impl,
    test = True,
    attrs = {
        "binary": attr.label(
            cfg = _mutants_transition,
            executable = True,
            mandatory = True,
            doc = "A testonly cc_binary (e.g. a gtest main); built with -DSCOPEKEEPER_MUTANTS.",
        ),
        "_allowlist_function_transition": attr.label(
            default = "@bazel_tools//tools/allowlists/function_transition_allowlist",
        ),
    },
)
