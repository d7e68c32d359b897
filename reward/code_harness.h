// The Python harness the code reward runs in the sandbox (see reward/code_reward.h for the
// protocol: request JSON on stdin, "<nonce> pass|fail <i> ..." lines and "<nonce> done").
//
// The candidate shares this interpreter, so the harness trusts nothing it could change:
// - every builtin the harness calls after the candidate ran (exec, type, dict, ...) is bound
//   before it runs (a candidate can replace builtins.exec with a function that does nothing);
// - the tests are parsed and compiled before it runs (it could patch the ast module);
// - the tests run in their own globals (a copy of the candidate's names) with the builtins and
//   the common modules (math, re, collections, ...) as they were before it ran, so neither the
//   candidate's functions (whose globals are the candidate's namespace) nor a patched
//   builtins.abs or math.isclose changes what a test calls;
// - every comparison in a test (==, !=, <, in, is, ...) compares plain values: each operand is
//   rebuilt from built-in types (a dict subclass such as Counter becomes a dict, through the
//   built-in type's own C methods), because an object of the candidate's class can define
//   __eq__ to agree with anything ("AlwaysEqual"), and a library class's methods can be
//   patched. A value of any other type (a class the candidate defined, a Fraction, a numpy
//   number) fails the test with a TypeError.
// What remains open: a candidate can patch other modules a test imports, or a class of the
// standard library whose methods a test calls (not compares), or walk the interpreter's frames
// to the harness's nonce; the sandbox still contains it.
#pragma once

namespace aha::reward {

inline constexpr const char* kCodeHarness = R"PY(
def _aha_main():
    import ast, builtins, decimal, json, os, sys
    request = json.loads(sys.stdin.read())
    sys.stdin.close()
    nonce = request["nonce"]
    write = os.write
    exec_, dict_, enumerate_, type_, isinstance_ = exec, dict, enumerate, type, isinstance
    tuple_, set_, frozenset_ = tuple, set, frozenset
    BaseException_, TypeError_ = BaseException, TypeError
    clean_builtins = dict(builtins.__dict__)  # what tests call (abs, len, sorted), as it was
    # Modules tests commonly import, as they were: a test's "import math" gets a fresh module
    # object holding the original functions, whatever the candidate set on the shared one.
    pristine, module_type, real_import = {}, type(builtins), builtins.__import__
    for name in ("math", "cmath", "re", "string", "collections", "itertools", "functools", "operator",
                 "heapq", "bisect"):
        pristine[name] = dict(real_import(name).__dict__)

    def clean_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name in pristine:
            module = module_type(name)
            module.__dict__.update(pristine[name])
            return module
        return real_import(name, globals, locals, fromlist, level)

    clean_builtins["__import__"] = clean_import

    def report(text):
        write(1, (nonce + " " + text + "\n").encode())

    # Types implemented in C whose comparison a candidate cannot patch (type: a class compared
    # with ==, as in type(x) == int; a class with its own metaclass is not of type `type`).
    scalars = (type(None), bool, int, float, complex, str, bytes, bytearray, range, type, decimal.Decimal)
    # A subclass of a built-in type is rebuilt by the built-in type's own method, which reads
    # the stored value and ignores anything the subclass overrides.
    full_slice, tuple_getitem = slice(None), tuple.__getitem__
    rebuild = ((dict, dict.copy), (list, list.copy), (tuple, lambda v: tuple_getitem(v, full_slice)),
               (set, set.copy), (frozenset, frozenset.copy), (int, int.__int__), (float, float.__float__),
               (str, str.__str__))
    dict_items = dict.items

    def plain(value, depth=0):
        if depth > 64:
            raise TypeError_("a compared value nests deeper than 64 levels")
        kind = type_(value)
        if kind in scalars:
            return value
        for base, copy in rebuild:
            if kind is base or isinstance_(value, base):
                value = copy(value) if kind is not base else value
                if base is list:
                    return [plain(item, depth + 1) for item in value]
                if base is tuple:
                    return tuple_([plain(item, depth + 1) for item in value])
                if base is set:
                    return set_([plain(item, depth + 1) for item in value])
                if base is frozenset:
                    return frozenset_([plain(item, depth + 1) for item in value])
                if base is dict:
                    return {plain(k, depth + 1): plain(v, depth + 1) for k, v in dict_items(value)}
                return value
        raise TypeError_("a test compared a %s, not a value of built-in types" % kind.__name__)

    checker = "_aha_plain_" + nonce

    class PlainComparisons(ast.NodeTransformer):
        def visit_Compare(self, node):
            self.generic_visit(node)
            wrap = lambda operand: ast.Call(ast.Name(checker, ast.Load()), [operand], [])
            node.left = wrap(node.left)
            node.comparators = [wrap(c) for c in node.comparators]
            return node

    def compile_test(text, name):
        try:
            tree = ast.fix_missing_locations(PlainComparisons().visit(ast.parse(text, name)))
            return compile(tree, name, "exec")
        except BaseException as error:
            return error  # reported as this test's failure

    tests = [compile_test(test, "test_%d.py" % i) for i, test in enumerate(request["tests"])]
    check = compile_test("check(%s)" % request["entry_point"], "check.py") if request["entry_point"] else None

    namespace = {"__name__": "__aha_candidate__", "__builtins__": __builtins__}
    try:
        exec_(compile(request["setup"] + "\n" + request["code"], "candidate.py", "exec"), namespace)
    except BaseException_ as error:
        report("load_error " + type_(error).__name__)
        report("done")
        return
    for index, test in enumerate_(tests):
        try:
            if isinstance_(test, BaseException_):
                raise test
            test_globals = dict_(namespace)
            test_globals["__builtins__"] = clean_builtins
            test_globals[checker] = plain
            exec_(test, test_globals)
            if check is not None:
                if isinstance_(check, BaseException_):
                    raise check
                exec_(check, test_globals)
            report("pass %d" % index)
        except BaseException_ as error:
            report("fail %d %s" % (index, type_(error).__name__))
    report("done")


_aha_main()
)PY";

}  // namespace aha::reward
