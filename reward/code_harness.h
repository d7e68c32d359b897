// The Python harness the code reward runs in the sandbox (see reward/code_reward.h for the
// protocol: request JSON on stdin, "<nonce> pass|fail <i> ..." lines and "<nonce> done").
#pragma once

namespace aha::reward {

inline constexpr const char* kCodeHarness = R"PY(
def _aha_main():
    import json, os, sys
    request = json.loads(sys.stdin.read())
    sys.stdin.close()
    nonce = request["nonce"]
    write = os.write

    def report(text):
        write(1, (nonce + " " + text + "\n").encode())

    namespace = {"__name__": "__aha_candidate__", "__builtins__": __builtins__}
    try:
        exec(compile(request["setup"] + "\n" + request["code"], "candidate.py", "exec"), namespace)
    except BaseException as error:
        report("load_error " + type(error).__name__)
        report("done")
        return
    for index, test in enumerate(request["tests"]):
        try:
            exec(compile(test, "test_%d.py" % index, "exec"), namespace)
            if request["entry_point"]:
                exec(compile("check(%s)" % request["entry_point"], "check.py", "exec"), namespace)
            report("pass %d" % index)
        except BaseException as error:
            report("fail %d %s" % (index, type(error).__name__))
    report("done")


_aha_main()
)PY";

}  // namespace aha::reward
