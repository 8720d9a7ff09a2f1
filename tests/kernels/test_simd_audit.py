"""The C code compiled for the AVX2 and scalar levels avoids instructions that are slow on
some CPUs those levels run on: PDEP/PEXT (microcoded on AMD Zen 1, Zen+ and Zen 2),
gathers, and vpmaskmov masked stores (slow on AMD).  The check reads the level's source
and every local header it includes, with comments removed."""
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

FORBIDDEN = {
    "PDEP/PEXT": re.compile(r"_pdep_|_pext_|__builtin_ia32_pdep|__builtin_ia32_pext|\bpdep[lq]?\b|\bpext[lq]?\b",
                            re.IGNORECASE),
    "gather": re.compile(r"gather", re.IGNORECASE),
    "vpmaskmov store": re.compile(r"maskstore|maskmov", re.IGNORECASE),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)


def without_comments(text):
    return COMMENT.sub(" ", text)


def compiled_text(name):
    """The code of `name` and of every local header it includes, transitively."""
    seen, order, todo = set(), [], [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        code = without_comments((SRC / current).read_text())
        order.append(current)
        todo.extend(h for h in INCLUDE.findall(code) if (SRC / h).exists())
    return order, {f: without_comments((SRC / f).read_text()) for f in order}


def traps(code):
    return sorted(label for label, pattern in FORBIDDEN.items() if pattern.search(code))


@pytest.fixture(scope="module")
def sources():
    if not (SRC / "kernels_avx2.c").exists():
        pytest.skip("the C sources are not present (an installed wheel ships no src/)")
    return SRC


@pytest.mark.parametrize("level_file", ["kernels_avx2.c", "kernels_scalar.c"])
def test_level_has_no_slow_instructions(sources, level_file):
    files, code = compiled_text(level_file)
    assert "kernels_body.h" in files  # the shared loops are part of what is checked
    found = {f: traps(text) for f, text in code.items() if traps(text)}
    assert found == {}


@pytest.mark.parametrize("snippet, label", [
    ("uint32_t k = _pdep_u32(m, 0x11111111u);", "PDEP/PEXT"),
    ("x = _pext_u64(a, b);", "PDEP/PEXT"),
    ('__asm__("pdep %1, %2, %0" : "=r"(r) : "r"(a), "r"(b));', "PDEP/PEXT"),
    ("v = _mm256_i32gather_epi32(base, idx, 4);", "gather"),
    ("_mm256_maskstore_ps(p, m, v);", "vpmaskmov store"),
])
def test_scanner_finds_each_trap(snippet, label):
    assert traps(without_comments(snippet)) == [label]


def test_scanner_ignores_comments():
    assert traps(without_comments("/* no _pdep_u32 here */ int x; // nor pext\n")) == []
