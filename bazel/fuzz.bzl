"""cc_fuzz_test: a libFuzzer target that is also a corpus-replay test.

Default build (gcc): the fuzzer is linked with //fuzz:replay_main and runs
once over every file of its seed corpus, a regression test in `bazel test`.
With --config=fuzz (clang, --define=fuzzing_engine=libfuzzer) it is linked
with libFuzzer's own main instead; run it by hand or with scripts/fuzz.sh.
Either way the test's arguments are the corpus files, which both mains run
once each and then exit.
"""

def cc_fuzz_test(name, srcs, deps = [], corpus = None, **kwargs):
    """Declares cc_test `name` from `srcs` (which define LLVMFuzzerTestOneInput).

    Args:
      name: the target; its seed corpus is corpus/<name>/ unless `corpus`.
      srcs: sources defining LLVMFuzzerTestOneInput.
      deps: libraries under test.
      corpus: a label or glob list of seed files.
      **kwargs: passed to cc_test (size, tags, ...).
    """
    corpus_files = corpus if corpus != None else native.glob(["corpus/%s/**" % name])
    native.filegroup(
        name = name + "_corpus",
        srcs = corpus_files,
    )
    native.cc_test(
        name = name,
        srcs = srcs,
        args = ["$(locations :%s_corpus)" % name],
        data = [":%s_corpus" % name],
        linkopts = select({
            "//fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = deps + select({
            "//fuzz:libfuzzer": [],
            "//conditions:default": ["//fuzz:replay_main"],
        }),
        tags = kwargs.pop("tags", []) + ["fuzz"],
        **kwargs
    )
