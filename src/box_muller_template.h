/* Box-Muller (DESIGN.md §7.2) on one level's vectors, in the float type FD_SFX (f32 or
 * f64), written once for every level and both types.  kernels_body.h includes it with
 *   FD_T     the float type (float / double), FD_SFX its name suffix (f32 / f64),
 *   FD_ESFX  the same suffix (the wrappers' names), FD_WSFX the suffix of the unsigned-word
 *            vectors with as many lanes (u32 / u32h); all four are undefined at the end.
 * A level with one lane is exactly the scalar definition the reference follows. */

#define V FD_V(vec)
#define M FD_V(mask)
#define W FD_W(vec)

/* q = c[0]; q = c[i] + x q for i = 1 .. n-1 (Horner, two roundings per step). */
static inline V FD_NAME(poly)(V x, const FD_T *coef, int n)
{
    V q = FD_V(set1)(coef[0]);
    for (int i = 1; i < n; i++)
        q = FD_V(add)(FD_V(set1)(coef[i]), FD_V(mul)(x, q));
    return q;
}

#define FD_POLY(x, coef) FD_NAME(poly)(x, FD_NAME(coef), (int)(sizeof FD_NAME(coef) / sizeof(FD_T)))

/* The two standard normals of each lane's word pair (w0, w1). */
static inline void FD_NAME(box_muller)(W w0, W w1, V *z0, V *z1)
{
    const V one = FD_V(set1)((FD_T)1);
    /* radius: u = (w0 + 1) 2^-32 in (0, 1]; m = w0 + 1 = f 2^e, f in [1, 2) */
    V m = FD_V(add)(FD_V(from_u32)(w0), one);
    V e, f;
    FD_V(split_exp)(m, &e, &f);
    M big = FD_V(gt)(f, FD_V(set1)(FD_PASTE(FD_SQRT2, FD_SFX)));
    f = FD_V(select)(big, FD_V(mul)(f, FD_V(set1)((FD_T)0.5)), f);
    e = FD_V(select)(big, FD_V(add)(e, one), e);
    V k = FD_V(sub)(e, FD_V(set1)((FD_T)32));
    V s = FD_V(div)(FD_V(sub)(f, one), FD_V(add)(f, one));
    V s2 = FD_V(mul)(s, s);
    V ln_f = FD_V(add)(FD_V(mul)(FD_V(set1)((FD_T)2), s),
                       FD_V(mul)(FD_V(mul)(s, s2), FD_POLY(s2, fd_ln_coef)));
    V ln_u = FD_V(add)(FD_V(mul)(k, FD_V(set1)(FD_PASTE(FD_LN2_HI, FD_SFX))),
                       FD_V(add)(FD_V(mul)(k, FD_V(set1)(FD_PASTE(FD_LN2_LO, FD_SFX))), ln_f));
    V r = FD_V(sqrt)(FD_V(mul)(FD_V(set1)((FD_T)-2), ln_u));

    /* angle 2 pi w1 2^-32 = quadrant * pi/2 + p, |p| <= pi/4 */
    W quadrant = FD_W(shr)(FD_W(add)(w1, FD_W(set1)(0x20000000u)), 30);
    W rest = FD_W(sub)(w1, FD_W(shl)(quadrant, 30)); /* a signed word */
    V p = FD_V(mul)(FD_V(from_i32)(rest), FD_V(set1)(FD_PASTE(FD_TWO_PI_2M32, FD_SFX)));
    V p2 = FD_V(mul)(p, p);
    V sin_p = FD_V(add)(p, FD_V(mul)(FD_V(mul)(p, p2), FD_POLY(p2, fd_sin_coef)));
    V cos_p = FD_V(add)(one, FD_V(mul)(p2, FD_POLY(p2, fd_cos_coef)));
    /* quadrants 2 and 3 turn by pi (negate both), odd ones by pi/2 (c, s) -> (-s, c) */
    M half = FD_V(gt)(FD_V(from_i32)(quadrant), FD_V(set1)((FD_T)1.5));
    M odd = FD_V(gt)(FD_V(from_i32)(FD_W(and)(quadrant, FD_W(set1)(1))), FD_V(set1)((FD_T)0.5));
    V c = FD_V(select)(half, FD_V(neg)(cos_p), cos_p);
    V sn = FD_V(select)(half, FD_V(neg)(sin_p), sin_p);
    *z0 = FD_V(mul)(r, FD_V(select)(odd, FD_V(neg)(sn), c));
    *z1 = FD_V(mul)(r, FD_V(select)(odd, c, sn));
}

/* eps = 1 + sigma z, rounded in the float type. */
static inline V FD_NAME(eps_of)(V sigma, V z)
{
    return FD_V(add)(FD_V(set1)((FD_T)1), FD_V(mul)(sigma, z));
}

#undef FD_POLY
#undef V
#undef M
#undef W
#undef FD_T
#undef FD_SFX
#undef FD_ESFX
#undef FD_WSFX
