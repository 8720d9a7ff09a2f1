"""Write the golden cases that tools/cross_check_driver.c replays on another architecture.

Every expected output comes from `fastdrop.reference` (plain NumPy), computed here on the
host; the C parameters (threshold, scale, alpha constants, sigma) are derived from the
contract in DESIGN.md, not from fastdrop's own front end.  The file is little-endian
whatever the host, so a big-endian target proves the bit layout does not depend on byte
order.  Usage: python tools/cross_check_golden.py OUT_FILE
"""
import math
import struct
import sys

import numpy as np

from fastdrop import reference

MAGIC = b"FDXC0001"
KINDS = {"philox": 1, "forward": 2, "sample": 3, "apply": 4, "forward_op": 5, "gauss": 6,
         "bcast": 7, "f32_to_f16": 8, "f16_to_f32": 9, "box_muller": 10}
DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2, None: 3}
LENGTHS = (0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000003)
U64 = 1 << 64
SELU_NEG_SATURATION = 1.7580993408473766  # DESIGN.md, alpha dropout


def offsets_for(n):
    near_end = U64 - n if n > 0 else U64 - 1
    return (0, 1, 2, 3, 5, 7, near_end, U64 - n - 9 if n + 9 <= U64 else 0)


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(MAGIC)
        self.count = 0

    def record(self, kind, dtype=None, n=0, offset=0, seed=0, stream=0, threshold=0,
               params=(0.0, 0.0, 0.0, 0.0), affine=0, geometry=(0, 0, 0, (), ()), arrays=()):
        nbits, run, period, dims, strides = (geometry[0], geometry[1], geometry[2],
                                             geometry[3], geometry[4])
        self.f.write(struct.pack("<II6Q4dI", KINDS[kind], DTYPES[dtype], n, offset, seed, stream,
                                 threshold, nbits, *params, affine))
        self.f.write(struct.pack("<QQI", run, period, len(dims)))
        for d, s in zip(dims, strides):
            self.f.write(struct.pack("<QQ", d, s))
        self.f.write(struct.pack("<I", len(arrays)))
        for a in arrays:
            a = np.ascontiguousarray(a)
            little = a.astype(a.dtype.newbyteorder("<"), copy=False)
            self.f.write(struct.pack("<IQ", a.dtype.itemsize, a.size))
            self.f.write(little.tobytes())
        self.count += 1

    def close(self):
        self.f.close()


def data(n, dtype, salt):
    rng = np.random.default_rng(1000 + salt)
    x = rng.standard_normal(n).astype(dtype)
    if n > 3:  # the dropped value is +0.0 whatever x holds
        x[0], x[1], x[2] = np.nan, np.inf, -0.0
    return x


def threshold_of(keep_prob):
    return math.floor(keep_prob * 2.0 ** 32)


def main(path):
    w = Writer(path)
    # Philox known answers, from the reference's Philox.
    for ctr, key in [((0, 0, 0, 0), (0, 0)), ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2),
                     ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)),
                     ((7, 0xFFFFFFFF, 3, 9), (123456789, 987654321))]:
        out = np.array([int(v) for v in reference.philox4x32_10(ctr, key)], dtype=np.uint32)
        w.record("philox", arrays=[np.array(ctr, np.uint32), np.array(key, np.uint32), out])
    keep_probs = (0.5, 0.9, 0.1, 1.0, 0.0, 1e-9, 1.0 - 1e-9)
    salt = 0
    for n in LENGTHS:
        big = n > 100000
        for k, offset in enumerate(offsets_for(n)[: 2 if big else None]):
            salt += 1
            kp = keep_probs[salt % len(keep_probs)] if not big else 0.5
            seed, stream = (0x9E3779B97F4A7C15 * salt) % U64, salt * 1000003
            t = threshold_of(kp)
            for dtype in (np.float32, np.float64):
                if big and dtype is np.float64 and k > 0:
                    continue
                x = data(n, dtype, salt)
                y, mask = reference.dropout(x, keep_prob=kp, seed=seed, stream=stream,
                                            offset=offset, return_mask=True)
                w.record("forward", np.dtype(dtype), n, offset, seed, stream, t,
                         (mask.scale, 0, 0, 0), arrays=[x, y, mask.bits])
                y2 = reference.apply_mask(x, mask)
                w.record("apply", np.dtype(dtype), n, params=(mask.scale, 0, 0, 0),
                         arrays=[x, mask.bits, y2])
            bits = reference.sample_mask((n,), keep_prob=kp, seed=seed, stream=stream,
                                         offset=offset).bits
            w.record("sample", None, n, offset, seed, stream, t, arrays=[bits])
            if big:
                continue
            for dtype in (np.float32, np.float64, np.float16):
                x = data(n, dtype, salt)
                akp = min(max(kp, 0.05), 0.95)
                y, mask = reference.alpha_dropout(x, keep_prob=akp, seed=seed, stream=stream,
                                                  offset=offset, return_mask=True)
                p = 1.0 - akp
                a = 1.0 / math.sqrt((SELU_NEG_SATURATION ** 2 * p + 1.0) * akp)
                aa = SELU_NEG_SATURATION * a
                w.record("forward_op", np.dtype(dtype), n, offset, seed, stream,
                         threshold_of(akp), (a, aa * p, aa * p - aa, 0), 1,
                         arrays=[x, y, mask.bits])
                gkp = min(max(kp, 0.05), 1.0)
                g = reference.gaussian_dropout(x, keep_prob=gkp, seed=seed, stream=stream,
                                               offset=offset)
                sigma = math.sqrt((1.0 - gkp) / gkp)
                w.record("gauss", np.dtype(dtype), n, offset, seed, stream,
                         params=(0, 0, 0, sigma), arrays=[x, g])
    # The mask stream's two shortcuts (DESIGN.md §2.1): thresholds whose low 24 bits are 0
    # need fewer than 8 planes; the others resolve ties of the top byte by the low bits.
    skipping = ties = 0
    for kp in (0.5, 0.25, 0.75, 0.125, 3 / 16, 5 / 32, 9 / 64, 129 / 256, 0.5 + 2**-32, 0.2):
        t = threshold_of(kp)
        for n, offset in ((1, 0), (127, 1), (129, 127), (1000, 64), (4099, 2**40 + 3),
                          (100003, 5), (300, U64 - 300)):
            salt += 1
            seed, stream = (0x9E3779B97F4A7C15 * salt) % U64, salt
            x = data(n, np.float32, salt)
            y, mask = reference.dropout(x, keep_prob=kp, seed=seed, stream=stream,
                                        offset=offset, return_mask=True)
            w.record("forward", np.dtype(np.float32), n, offset, seed, stream, t,
                     (mask.scale, 0, 0, 0), arrays=[x, y, mask.bits])
            w.record("sample", None, n, offset, seed, stream, t, arrays=[mask.bits])
            if t & 0xFFFFFF:
                ties += int(np.count_nonzero(
                    reference.top_bytes(seed, stream, offset, n) == t >> 24))
            else:
                skipping += 1
    print(f"cross_check: mask stream: {skipping} cases skip planes, {ties} tied elements "
          f"decided by their low bits")
    # Broadcast masks over a noise shape (DESIGN.md §7.1), in the kernels' merged geometry.
    for shape, noise in [((5, 17), (1, 17)), ((9, 13), (9, 1)), ((3, 7, 11), (3, 1, 11)),
                         ((1, 1), (1, 1)), ((4, 65), (1, 65))]:
        salt += 1
        mask = reference.sample_mask(noise, keep_prob=0.6, seed=salt, stream=3)
        if noise[0] == 1 and len(shape) == 2:
            geometry = (mask.size, shape[0], shape[1], (), ())
        elif len(shape) == 2:
            geometry = (mask.size, shape[1], 1, (shape[0],), (1,))
        else:
            geometry = (mask.size, shape[1], shape[2], (shape[0],), (shape[2],))
        for dtype in (np.float32, np.float64, np.float16):
            x = data(int(np.prod(shape)), dtype, salt).reshape(shape)
            y = reference.apply_mask(x, mask)
            w.record("bcast", np.dtype(dtype), x.size, params=(mask.scale, 0, 0, 0),
                     geometry=geometry, arrays=[x.reshape(-1), mask.bits, y.reshape(-1)])
    # float16 conversions: every binary16 pattern, and awkward float32 values.
    h = np.arange(1 << 16, dtype=np.uint16)
    w.record("f16_to_f32", None, h.size, arrays=[h, h.view(np.float16).astype(np.float32)])
    rng = np.random.default_rng(7)
    f = np.concatenate([rng.standard_normal(4096).astype(np.float32) * 1e3,
                        np.array([6.5504e4, 6.5520e4, 6.0e-8, 2.98e-8, np.inf, -np.inf, np.nan,
                                  -0.0, 1e-40], np.float32)])
    with np.errstate(over="ignore"):  # values past the float16 range round to inf, as intended
        h16 = f.astype(np.float16).view(np.uint16)
    w.record("f32_to_f16", None, f.size, arrays=[f, h16])
    # Every binary16 pattern through each level's own float16 loads and stores: NaN payloads,
    # subnormals, and the rounding and overflow of the product.
    hx = h.view(np.float16)
    for salt, kp in ((11, 1.0), (12, 0.7)):
        y, mask = reference.dropout(hx, keep_prob=kp, seed=salt, stream=5, return_mask=True)
        w.record("forward_op", np.dtype(np.float16), h.size, 0, salt, 5, threshold_of(kp),
                 (mask.scale, 0, 0, 0), 0, arrays=[hx, y, mask.bits])
    # Box-Muller pairs (DESIGN.md §7.2).
    words = rng.integers(0, 1 << 32, size=(2, 4096), dtype=np.uint64)
    words[:, :4] = [[0, 0xFFFFFFFF, 0x80000000, 1], [0, 0xFFFFFFFF, 0x40000000, 0xC0000000]]
    for dtype in (np.float64, np.float32):
        z0, z1 = reference.box_muller(words[0], words[1], dtype)
        z = np.stack([z0, z1], axis=1).reshape(-1)
        w.record("box_muller", np.dtype(dtype), words.shape[1],
                 arrays=[words[0].astype(np.uint32), words[1].astype(np.uint32), z])
    w.close()
    print(f"cross_check: {w.count} golden cases written to {path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
