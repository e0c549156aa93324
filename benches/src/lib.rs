//! criterion benchmarks live in `benches/benches/`; this crate hosts them
//! and the little they share.

/// A small deterministic generator (xorshift64) with a fixed seed: enough
/// randomness for choosing keys and nodes, and runs stay comparable.
pub struct Rng(u64);

impl Default for Rng {
    fn default() -> Rng {
        Rng(0x9E37_79B9_7F4A_7C15)
    }
}

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// In `0..n` with density about 1/rank (Zipf-like, s = 1): `n^u - 1`
    /// for a uniform `u`, so a few low ranks get most draws.
    pub fn zipfish(&mut self, n: usize) -> usize {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(unit) as usize).saturating_sub(1).min(n - 1)
    }
}
