"""List the instruction sets in each object of an x86-64 build of src/, and check that every
level's instructions stay in its own functions.

Every instruction of `objdump -d` is classified (x86-64 baseline = SSE2, SSE3/SSSE3/SSE4,
AVX, AVX2, F16C, FMA, AVX-512, BMI1, BMI2, LZCNT, POPCNT) and each object may hold only
what its level may run:
  kernels_scalar, box, threads, the driver, dispatch   baseline
  dispatch's chunk_times_two_*_avx2 (the floor)         + AVX, AVX2
  kernels_avx2                                          + AVX, AVX2, F16C
  kernels_avx512                                        + AVX, AVX2, F16C, AVX-512, BMI1, BMI2
FMA is allowed nowhere (a kept element is exactly x * scale; no contraction), and each
level's table function (fd_kernels_avx2, fd_kernels_avx512) must be baseline, since
dispatch.c calls it before it knows the CPU has the level.
Usage: python tools/check_level_isa.py OBJDUMP OBJECT...   (prints "N passed, N failed")
"""
import os
import re
import subprocess
import sys

BASELINE = "x86-64"
ORDER = [BASELINE, "SSE3/SSSE3/SSE4", "POPCNT", "LZCNT", "BMI1", "BMI2", "AVX", "AVX2", "F16C",
         "FMA", "AVX-512"]

ALLOWED = {
    "kernels_avx2": {BASELINE, "AVX", "AVX2", "F16C"},
    "kernels_avx512": {BASELINE, "AVX", "AVX2", "F16C", "AVX-512", "BMI1", "BMI2"},
}
LEVEL_OF = {"kernels_scalar": "scalar level", "kernels_avx2": "avx2 level",
            "kernels_avx512": "avx512 level"}
ANY_CPU_FUNCTIONS = {"fd_kernels_avx2", "fd_kernels_avx512"}
FLOOR_FUNCTION = re.compile(r"^chunk_times_two_f(32|64)_avx2")

SSE_LATER = set("""haddps haddpd hsubps hsubpd addsubps addsubpd movddup movshdup movsldup lddqu
pshufb palignr pabsb pabsw pabsd phaddw phaddd phaddsw phsubw phsubd phsubsw pmaddubsw pmulhrsw
psignb psignw psignd blendps blendpd blendvps blendvpd pblendw pblendvb pmulld pmuldq pminud
pmaxud pminsd pmaxsd pminuw pmaxuw pminsb pmaxsb pmovzxbw pmovzxbd pmovzxbq pmovzxwd pmovzxwq
pmovzxdq pmovsxbw pmovsxbd pmovsxbq pmovsxwd pmovsxwq pmovsxdq pextrb pextrd pextrq pinsrb
pinsrd pinsrq ptest roundps roundpd roundss roundsd dpps dppd insertps extractps packusdw
pcmpeqq phminposuw mpsadbw movntdqa pcmpgtq crc32b crc32w crc32l crc32q crc32 pcmpestri
pcmpestrm pcmpistri pcmpistrm""".split())
# tzcnt is not among them: its encoding is rep bsf, which CPUs without BMI1 run as bsf (the
# same result for a non-zero input), and GCC emits it so for __builtin_ctz on any target.
BMI1 = {"andn", "bextr", "blsi", "blsmsk", "blsr"}
BMI2 = {"bzhi", "mulx", "pdep", "pext", "rorx", "sarx", "shlx", "shrx"}
F16C = {"vcvtph2ps", "vcvtps2ph"}
AVX512_ONLY = re.compile(
    r"^(k[a-z]+[bwdq]?|vpternlog|vprol|vpror|vpermi2|vpermt2|vpmov[dqw][bwd]|vpmovus|vpmovs[dqw]|"
    r"vpmovm2|vpmov[bwdq]2m|vcvtu|vcvt[a-z0-9]*2u|vcvtqq|vcvtt[a-z0-9]*2u|vcvt[a-z]*qq|vpabsq|"
    r"vp(max|min)[su]q|vpmullq|vpsraq|vpsravq|vrcp14|vrsqrt14|vfixupimm|vrange|vreduce|"
    r"vdbpsadbw|vpermw|vpsllvw|vpsrlvw|vpsravw|vpcmpu?[bwdq]$|vpblendm|vblendm|"
    r"vextract[if](32x4|64x2|32x8|64x4)|vinsert[if](32x4|64x2|32x8|64x4)|"
    r"vbroadcast[if](32x2|32x4|64x2|32x8|64x4)|vshuf[if](32x4|64x2)|valign[dq]|vpconflict|"
    r"vplzcnt|vexp2|vcompress|vpcompress|vexpand|vpexpand|vmovdqu(8|16|32|64)|vmovdqa(32|64)|"
    r"vp(and|andn|or|xor)[dq]$|vgetexp|vgetmant|vscalef|vrndscale|vpbroadcastm|vpmadd52|"
    r"vpopcnt|vpshufbitqmb|vpshld|vpshrd|vptestn?m|vfpclass)")
AVX2_ONLY = re.compile(r"^(vperm2i128|vinserti128|vextracti128|vpbroadcast[bwdq]|vpermd|vpermq|"
                       r"vpermps|vpermpd|vpsllv[dq]|vpsrlv[dq]|vpsrav[dq]|vpmaskmov|vgather|"
                       r"vpgather|vpblendd|vbroadcasti128)$")
AVX_ON_YMM_FLOAT = re.compile(r"^vp(ermil|erm2f128)")
FMA = re.compile(r"^vf(n?m(add|sub)|maddsub|msubadd)")
PREFIXES = {"rep", "repz", "repe", "repnz", "repne", "lock", "data16", "addr32", "notrack",
            "bnd", "cs", "ds", "es", "ss", "fs", "gs", "rex", "rex.W"}
FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
INSTRUCTION = re.compile(r"^\s+[0-9a-f]+:\s+(.*)$")


def classify(mnemonic, operands):
    m = mnemonic.rstrip(",")
    # AT&T size suffixes on the non-vector ones: popcntl, tzcntq, shlxq ...
    stem = re.sub(r"[bwlq]$", "", m) if not m.startswith("v") else m
    if "%zmm" in operands or re.search(r"%k[0-7]", operands) or "{" in operands or \
            re.search(r"%[xy]mm(1[6-9]|2[0-9]|3[01])\b", operands) or AVX512_ONLY.match(m):
        return "AVX-512"
    if FMA.match(m):
        return "FMA"
    if m in F16C:
        return "F16C"
    if m in BMI2 or stem in BMI2:
        return "BMI2"
    if m in BMI1 or stem in BMI1:
        return "BMI1"
    if m == "lzcnt" or stem == "lzcnt":
        return "LZCNT"
    if m == "popcnt" or stem == "popcnt":
        return "POPCNT"
    if m.startswith("v") and m not in ("verr", "verw"):
        if AVX2_ONLY.match(m):
            return "AVX2"
        if "%ymm" in operands and m.startswith("vp") and not AVX_ON_YMM_FLOAT.match(m):
            return "AVX2"  # 256-bit integer operations
        return "AVX"
    if m in SSE_LATER:
        return "SSE3/SSSE3/SSE4"
    return BASELINE


def functions_of(objdump, obj):
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", obj], capture_output=True,
                         text=True, check=True).stdout
    functions, current = {}, None
    for line in out.splitlines():
        f = FUNCTION.match(line)
        if f:
            current = functions.setdefault(f.group(1), {})
            continue
        i = INSTRUCTION.match(line)
        if not i or current is None:
            continue
        words = i.group(1).split()
        while words and words[0] in PREFIXES:
            words = words[1:]
        if not words or words[0].startswith("(bad)") or words[0] == "...":
            continue
        isa = classify(words[0], " ".join(words[1:]))
        current[isa] = current.get(isa, 0) + 1
    return functions


def main():
    objdump, objects = sys.argv[1], sys.argv[2:]
    passed = failed = 0
    for obj in objects:
        name = os.path.splitext(os.path.basename(obj))[0]
        allowed = ALLOWED.get(name, {BASELINE})
        functions = functions_of(objdump, obj)
        totals, problems = {}, []
        for fn, counts in functions.items():
            may = allowed
            if name == "dispatch" and FLOOR_FUNCTION.match(fn):
                may = {BASELINE, "AVX", "AVX2"}
            if fn in ANY_CPU_FUNCTIONS:
                may = {BASELINE}
            for isa, count in counts.items():
                totals[isa] = totals.get(isa, 0) + count
                if isa not in may:
                    problems.append("%s: %d %s instruction%s" % (fn, count, isa, "s" * (count != 1)))
        listing = ", ".join("%s %d" % (isa, totals[isa]) for isa in ORDER if isa in totals)
        label = LEVEL_OF.get(name, "no level")
        print("isa: %-15s (%s) %d functions: %s" % (name, label, len(functions), listing or "empty"))
        if name == "dispatch":
            floor = sorted(fn for fn in functions if FLOOR_FUNCTION.match(fn))
            print("     AVX/AVX2 only in the floor: %s" % (", ".join(floor) or "none"))
        for fn in sorted(ANY_CPU_FUNCTIONS & set(functions)):
            print("     %s (called on any CPU): %s" % (fn, ", ".join(sorted(functions[fn])) or "empty"))
        if problems:
            failed += 1
            for p in problems:
                print("   FAIL %s %s" % (name, p))
        else:
            passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
