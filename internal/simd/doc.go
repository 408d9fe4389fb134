// Package simd holds the vector kernels of wpcdb's exact scorer: the Gram
// matrix of two point sets, the elementwise exp and 1/sqrt that turn a Gram
// matrix into kernel values, a dot product, half-precision conversions for
// stored points, and the cosine of random features (CosAdd, CosAddAcc).
//
// # Paths
//
// Each kernel exists as assembly for amd64 (an AVX-512 path and an
// AVX2+FMA+F16C path) and as a pure-Go twin (the "generic" path), whose loop
// is quoted in the exported function's doc comment and which the tests use
// as the reference. The package picks one path at init, the best the CPU
// supports; [Path] names it. Building with the noasm tag leaves only the
// generic path.
//
// The environment variable WPCDB_SIMD=avx512|avx2|generic, read once at
// init, asks for a path (to compare paths on one machine, or to rule the
// assembly out while debugging). A path the CPU or the build lacks is never
// selected: asking for it gives the best available path instead.
//
// # Concurrency
//
// Every function is safe for concurrent use; none keeps state between calls
// beyond a pool of scratch buffers.
//
// # Accuracy
//
// Paths differ in summation order and rounding, not in meaning: Gram and Dot
// agree with an exact sum to about 1e-6 of the sum of |products|, Exp and
// Rsqrt to a few ulp, CosAdd to 2e-7 absolute (see each function). The
// conversions are bit-exact.
package simd
