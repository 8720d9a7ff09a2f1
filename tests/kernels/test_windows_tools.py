"""The checks `tools/cross_check windows` runs can fail: the instruction classifier of
tools/check_level_isa.py, the rule that a level's instructions stay in its own object
(on objects compiled here with the host's cc), and the search of tools/check_msvc_source.py
for what MSVC rejects (on syntax-tree lines in clang's format)."""
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


def load(name):
    path = TOOLS / f"{name}.py"
    if not path.exists():
        pytest.skip("the tools are not present (an installed wheel ships no tools/)")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def isa():
    return load("check_level_isa")


@pytest.fixture(scope="module")
def msvc():
    return load("check_msvc_source")


@pytest.mark.parametrize("instruction, expected", [
    ("addps %xmm1,%xmm0", "x86-64"),
    ("pxor %xmm1,%xmm0", "x86-64"),
    ("pextrw $0x1,%xmm0,%eax", "x86-64"),
    ("imul %rdx,%rax", "x86-64"),
    ("pshufb %xmm1,%xmm0", "SSE3/SSSE3/SSE4"),
    ("pmulld %xmm1,%xmm0", "SSE3/SSSE3/SSE4"),
    ("popcnt %rax,%rdx", "POPCNT"),
    ("tzcnt %rax,%rdx", "x86-64"),   # rep bsf: bsf on CPUs without BMI1
    ("blsr %rax,%rdx", "BMI1"),
    ("andn %rax,%rcx,%rdx", "BMI1"),
    ("pdep %rcx,%rdx,%rax", "BMI2"),
    ("shlx %rcx,%rdx,%rax", "BMI2"),
    ("vpxor %xmm1,%xmm1,%xmm1", "AVX"),
    ("vaddps %ymm2,%ymm1,%ymm0", "AVX"),
    ("vzeroupper", "AVX"),
    ("vpermilps $0xb1,%ymm1,%ymm0", "AVX"),
    ("vpaddd %ymm2,%ymm1,%ymm0", "AVX2"),
    ("vpbroadcastd %xmm0,%xmm1", "AVX2"),
    ("vperm2i128 $0x20,%ymm1,%ymm2,%ymm0", "AVX2"),
    ("vcvtps2ph $0x0,%ymm0,%xmm0", "F16C"),
    ("vfmadd231ps %ymm2,%ymm1,%ymm0", "FMA"),
    ("vfnmsub132sd %xmm2,%xmm1,%xmm0", "FMA"),
    ("vpaddd %zmm2,%zmm1,%zmm0", "AVX-512"),
    ("vpternlogd $0x96,%ymm2,%ymm1,%ymm0", "AVX-512"),
    ("vmovdqu64 (%rax),%ymm0", "AVX-512"),
    ("kmovw %k1,%eax", "AVX-512"),
    ("vaddps %ymm17,%ymm1,%ymm0", "AVX-512"),
    ("vmovups %ymm0,(%rax){%k1}", "AVX-512"),
    ("vcvtudq2ps %ymm0,%ymm1", "AVX-512"),
])
def test_instructions_are_classified(isa, instruction, expected):
    mnemonic, _, operands = instruction.partition(" ")
    assert isa.classify(mnemonic, operands) == expected


def compile_object(tmp_path, name, code, flags):
    cc, objdump = shutil.which("cc") or shutil.which("gcc"), shutil.which("objdump")
    if cc is None or objdump is None:
        pytest.skip("needs cc and objdump (binutils), which building the extension needs too")
    source = tmp_path / f"{name}.c"
    source.write_text(code)
    obj = tmp_path / f"{name}.o"
    subprocess.run([cc, "-O2", "-c", *flags, str(source), "-o", str(obj)], check=True)
    return objdump, obj


WIDE_LOOP = """
void scale(float *restrict y, const float *restrict x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = x[i] * 2.0f;
}
const void *fd_kernels_avx2(void) { return 0; }
"""


@pytest.mark.parametrize("name, flags, passes", [
    ("kernels_scalar", [], True),
    ("kernels_scalar", ["-mavx2"], False),             # AVX2 outside its level
    ("kernels_avx2", ["-mavx2"], False),               # the table function, too, is AVX2
    ("kernels_avx2", ["-mavx512f", "-mavx512vl"], False),
    ("threads", ["-mavx"], False),
])
def test_a_level_s_instructions_stay_in_its_object(isa, tmp_path, capsys, monkeypatch, name,
                                                   flags, passes):
    import platform
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86-64 instructions")
    code = WIDE_LOOP
    if name == "kernels_avx2" and not passes:
        # keep the loop in the level object but make only the table function wide
        code = WIDE_LOOP.replace("const void *fd_kernels_avx2(void) { return 0; }",
                                 "float fd_kernels_avx2(float *y) { return y[0] * 2.0f; }")
    objdump, obj = compile_object(tmp_path, name, code, ["-ftree-vectorize", *flags])
    monkeypatch.setattr("sys.argv", ["check_level_isa.py", objdump, str(obj)])
    status = isa.main()
    out = capsys.readouterr().out
    assert out.rstrip().endswith("1 passed, 0 failed" if passes else "0 passed, 1 failed"), out
    assert status == (0 if passes else 1)


def ast_lines(own, header):
    """Syntax-tree lines as clang prints them: a function of the project, one of a header."""
    return "\n".join([
        f"|-FunctionDecl 0x1 <{header}:10:1, line:12:1> line:10:1 _mm256_add_epi32 '__m256i (__m256i, __m256i)'",
        "| `-BinaryOperator 0x2 <col:3, col:9> '__m256i':'__attribute__((__vector_size__(4 * sizeof(long long)))) long long' '+'",
        f"|-FunctionDecl 0x3 <{own}:5:1, line:9:1> line:5:1 u32_add 'u32_vec (u32_vec, u32_vec)'",
        "| `-CompoundStmt 0x4 <line:5:40, line:9:1>",
        "|   |-BinaryOperator 0x5 <line:6:5, col:20> 'u32_vec':'__attribute__((__vector_size__(4 * sizeof(long long)))) long long' '='",
        "|   | `-UnaryOperator 0x6 <col:5, col:6> 'u32_vec':'__attribute__((__vector_size__(4 * sizeof(long long)))) long long' lvalue prefix '*' cannot overflow",
        "|   `-ArraySubscriptExpr 0x7 <line:7:5, col:12> 'u32_vec':'__attribute__((__vector_size__(4 * sizeof(long long)))) long long' lvalue",
        "|     |-ImplicitCastExpr 0x8 <col:5> 'u32_vec *' <ArrayToPointerDecay>",
    ])


@pytest.mark.parametrize("extra, found", [
    ("", False),
    ("|   `-BinaryOperator 0x9 <line:8:12, col:16> 'u32_vec':'__attribute__((__vector_size__(4 * sizeof(long long)))) long long' '+'", True),
    ("|   `-CompoundAssignOperator 0x9 <line:8:5, col:10> 'f32_vec':'__attribute__((__vector_size__(8 * sizeof(float)))) float' '+=' ComputeLHSTy='f32_vec'", True),
    ("|   `-CStyleCastExpr 0x9 <line:8:12, col:30> '__m256':'__attribute__((__vector_size__(8 * sizeof(float)))) float' <BitCast>", True),
    ("|   `-ArraySubscriptExpr 0x9 <line:8:12, col:16> 'long long' lvalue\n"
     "|     |-DeclRefExpr 0xa <col:12> 'u32_vec':'__attribute__((__vector_size__(4 * sizeof(long long)))) long long' lvalue Var 0xb 'v' 'u32_vec'", True),
    ("|   `-StmtExpr 0x9 <line:8:12, col:30> 'int'", True),
    ("|   `-DeclRefExpr 0x9 <line:8:12> '<builtin fn type>' Function 0xc '__builtin_popcount' 'int (unsigned int)'", True),
    ("|   `-VarDecl 0x9 <line:8:5, col:20> col:20 n '_Atomic(int)' static", True),
    ("| `-TargetAttr 0x9 <line:8:20, col:40> \"avx2\"", True),
])
def test_what_msvc_rejects_is_found_in_the_project_s_code_only(msvc, extra, found):
    own = str(ROOT / "src" / "kernels_avx2.c")
    header = "/usr/lib/clang/include/avx2intrin.h"
    text = ast_lines(own, header) + ("\n" + extra if extra else "")
    hits = msvc.non_msvc_constructs(text)
    assert bool(hits) == found, hits
    assert all(msvc.own_file(f) for f, _ in hits)
