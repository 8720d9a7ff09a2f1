"""Check the C core's MSVC source path where no MSVC is at hand.

Clang in MSVC mode (--target=x86_64-pc-windows-msvc, -fms-compatibility, _MSC_VER 1938,
C11 as setup.py asks of MSVC) compiles every src/*.c with FD_MSVC defined, so the code
takes the branches MSVC takes: no target regions, __cpuidex/_xgetbv, Win32 threads, against
Wine's MSVC-style C runtime and Windows headers (after clang's own, as clang-cl
orders MSVC's).  The feature macros (__AVX2__, ...) only
open clang's intrinsic headers as MSVC's immintrin.h is open; -fsyntax-only never emits
code, so nothing here depends on target flags.  Clang accepts things MSVC does not, so
the syntax tree of the project's own code (not the headers' macros) is searched for them:
  - GNU constructs: attributes, __builtin_* calls, inline assembly, statement expressions,
    typeof, _Atomic (MSVC's C11 has no atomics without an experimental flag), __int128;
  - GCC vector extensions on intrinsic types (arithmetic, bitwise or comparison operators,
    subscripts, casts between vector types, brace initialisers), which MSVC rejects
    because its __m128/__m256/__m512 are unions.
Usage: python tools/check_msvc_source.py CLANG WINE_INCLUDE_DIR   (prints "N passed, N failed")
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ("SSE3 SSSE3 SSE4_1 SSE4_2 POPCNT LZCNT AVX AVX2 F16C FMA BMI BMI2 XSAVE "
            "AVX512F AVX512BW AVX512DQ AVX512VL AVX512CD").split()
VECTOR_NODES = {"BinaryOperator", "CompoundAssignOperator", "UnaryOperator", "CStyleCastExpr",
                "InitListExpr", "CompoundLiteralExpr", "ImplicitCastExpr"}
LOCATION = re.compile(r"(?:(?P<file>[^\s<>,]+?\.[ch]):\d+:\d+|line:\d+:\d+|col:\d+)")
NODE = re.compile(r"^[\s|`-]*(?P<kind>[A-Za-z]+) 0x[0-9a-f]+ (?P<rest>.*)$")


def clang_args(clang, wine_include):
    return [clang, "--target=x86_64-pc-windows-msvc", "-fms-compatibility", "-fms-extensions",
            "-fms-compatibility-version=19.38", "-std=c11", "-DFD_MSVC=1", "-fno-color-diagnostics",
            "-I" + os.path.join(ROOT, "src"),
            # after clang's own headers, as clang-cl lays out MSVC's: clang's intrin.h, not
            # Wine's smaller one, declares the MSVC intrinsics (_BitScanForward, __cpuidex)
            "-idirafter", os.path.join(wine_include, "msvcrt"),
            "-idirafter", os.path.join(wine_include, "windows")] + ["-D__%s__" % f for f in FEATURES]


def own_file(path):
    path = os.path.normpath(os.path.join(ROOT, path)) if not os.path.isabs(path) else path
    return path.startswith(os.path.join(ROOT, "src") + os.sep)


def types_of(rest):
    """The node's type, canonical form where clang prints one: 'sugar':'canonical'."""
    quoted = re.findall(r"'([^']*)'", rest)
    if not quoted:
        return ""
    if len(quoted) > 1 and rest.find("'%s':'%s'" % (quoted[0], quoted[1])) >= 0:
        return quoted[1]
    return quoted[0]


def is_vector(type_text):
    t = type_text.strip()
    return "vector_size" in t and not t.endswith("*") and "[" not in t and "(*" not in t


GNU_NODES = {"StmtExpr", "GCCAsmStmt"}
GNU_TYPES = re.compile(r"typeof|_Atomic\(|__int128")


def gnu_constructs(kind, rest):
    if kind in GNU_NODES or (kind.endswith("Attr") and " Implicit" not in rest):
        return True
    if kind == "DeclRefExpr" and "'__builtin_" in rest:
        return True
    return bool(GNU_TYPES.search(" ".join(re.findall(r"'([^']*)'", rest))))


def non_msvc_constructs(ast_text):
    """(file, line text) of every GNU construct or GCC vector extension in the project's
    files: a node is the project's where its range begins in src/."""
    found = []
    current = None
    lines = ast_text.splitlines()
    for i, line in enumerate(lines):
        m = NODE.match(line)
        if not m:
            continue
        kind, rest = m.group("kind"), m.group("rest")
        head = rest.split("'", 1)[0]
        node_file = None
        for j, loc in enumerate(LOCATION.finditer(head)):
            if loc.group("file"):
                current = loc.group("file")
            if j == 0:
                node_file = current
        if node_file is None or not own_file(node_file):
            continue
        if gnu_constructs(kind, rest):
            found.append((node_file, line.strip()[:160]))
            continue
        if kind not in VECTOR_NODES and kind != "ArraySubscriptExpr":
            continue
        vector = is_vector(types_of(rest))
        operator = re.findall(r"'([^']*)'", rest)[-1] if "'" in rest else ""
        bad = False
        if kind == "BinaryOperator":
            bad = vector and operator not in ("=", ",")
        elif kind == "CompoundAssignOperator":
            bad = vector
        elif kind == "UnaryOperator":
            bad = vector and operator != "*"
        elif kind in ("InitListExpr", "CompoundLiteralExpr"):
            bad = vector
        elif kind == "CStyleCastExpr":
            child = NODE.match(lines[i + 1]) if i + 1 < len(lines) else None
            bad = vector or (child is not None and is_vector(types_of(child.group("rest"))))
        elif kind == "ImplicitCastExpr":
            bad = vector and "<BitCast>" in rest
        elif kind == "ArraySubscriptExpr":  # subscripting a vector itself, not an array of them
            child = NODE.match(lines[i + 1]) if i + 1 < len(lines) else None
            bad = child is not None and is_vector(types_of(child.group("rest")))
        if bad:
            found.append((node_file, line.strip()[:160]))
    return found


def main():
    clang, wine_include = sys.argv[1], sys.argv[2]
    base = clang_args(clang, wine_include)
    passed = failed = 0
    for source in sorted(glob.glob(os.path.join(ROOT, "src", "*.c"))):
        name = os.path.relpath(source, ROOT)
        problems = []
        compile_ = subprocess.run(base + ["-fsyntax-only", "-Wall", "-Wno-unused-function",
                                          "-Werror", "-Wvector-conversion", "-Werror=vla", source],
                                  capture_output=True, text=True)
        if compile_.returncode != 0:
            problems += compile_.stderr.strip().splitlines()[:10]
        ast = subprocess.run(base + ["-fsyntax-only", "-Xclang", "-ast-dump", source],
                             capture_output=True, text=True)
        if ast.returncode != 0:
            problems.append("no syntax tree: " + ast.stderr.strip()[:200])
        problems += ["not MSVC C in %s: %s" % (os.path.relpath(f, ROOT) if os.path.isabs(f) else f, t)
                     for f, t in non_msvc_constructs(ast.stdout)][:10]
        paths = "level file, no target region" if re.search(r"kernels_avx", name) else "MSVC path"
        if problems:
            failed += 1
            print("msvc: %s: FAILED" % name)
            for p in problems:
                print("   " + p)
        else:
            passed += 1
            print("msvc: %s: compiles as MSVC C11 (%s), no GNU constructs or vector extensions"
                  % (name, paths))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
