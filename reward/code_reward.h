// The `code` reward: runs the completion's code against the example's tests in the sandbox
// (sandbox/sandbox.h), python3 by default.
//
// Code: the last fenced block (```python ... ``` or ``` ... ```) of the answer region (the
// <answer> content if there is one, else what follows </think>, else the whole completion);
// with no fenced block, the region itself. HumanEval (an entry point and one test defining
// check(candidate)): the example's prompt is put before code that does not define the entry
// point itself (a completion of the function body), and the test passes when
// check(<entry_point>) returns. MBPP (a list of assert statements, test_setup = the imports):
// each assert is one test.
//
// Scoring: an example whose task is not "code" scores 0 ("not a code task"), so that one
// reward list can serve a mixed batch; a code example without tests is an error. "mode"
// "all" (default) gives 1 when every test passed, else 0; "fraction" gives passed / tests.
// Components: "passed" and "tests".
//
// Anti-forgery: a harness (not the candidate) decides what passed. It reads the code, tests
// and a fresh random nonce from stdin, which it then closes (the candidate cannot read the
// tests from a file or the nonce from its input), runs the candidate in its own namespace,
// runs each test, and writes "<nonce> pass <i>" through a saved os.write only after test i
// returned. A candidate that exits early (sys.exit(0), os._exit) passes nothing; one that
// prints pass lines does not know the nonce. The harness binds what it calls before the
// candidate runs, tests run with the original builtins and common modules and compare only
// values rebuilt from built-in types (reward/code_harness.h), so patching builtins.exec, abs or
// math.isclose, or returning an object whose __eq__ agrees with anything, fails. Limits: code
// in the same interpreter can patch less common modules a test imports, or walk the harness's
// frames (sys._getframe, a traceback's f_back) to read the nonce; the sandbox still contains
// whatever it does.
//
// Options: mode ("all" | "fraction"), memory_mb (1024), namespaces (true), seccomp (true),
// interpreter (a list, default the sandbox's python3). The wall and CPU limits of one run are
// the reward's timeout_seconds. A sandbox failure (not the program's fault) is an error, not a
// 0 score.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "core/json.h"
#include "reward/reward.h"

namespace aha::reward {

std::unique_ptr<Reward> make_code_reward(const json::ObjectReader& options, double timeout_seconds);

// The code a completion proposes, per the rules above; empty when there is none.
std::string extract_code(std::string_view completion);

}  // namespace aha::reward
