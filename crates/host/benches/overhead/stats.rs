//! Paired, interleaved sampling and the few statistics the report needs.

use std::time::Instant;

use crate::fail::Result;

/// The value at quantile `q` (0 to 1) of `v`, interpolated between the two
/// nearest samples; NaN for no samples.
pub(crate) fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = q * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The median of `v`.
pub(crate) fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// The samples of two measured things, taken in pairs: `ours[i]` and
/// `base[i]` ran back to back.
#[derive(Debug, Clone, Default)]
pub(crate) struct Paired {
    pub(crate) ours: Vec<f64>,
    pub(crate) base: Vec<f64>,
}

impl Paired {
    /// Adds the pairs of `other` (another round of the same measurement).
    pub(crate) fn extend(&mut self, other: Paired) {
        self.ours.extend(other.ours);
        self.base.extend(other.base);
    }

    /// The median of the per-pair ratios ours / base.
    pub(crate) fn pair_ratio(&self) -> f64 {
        let ratios: Vec<f64> = self.ours.iter().zip(&self.base).map(|(a, b)| a / b).collect();
        median(&ratios)
    }
}

/// Runs `warm` unmeasured pairs, then `n` measured pairs, alternating which
/// of the two goes first, so that a drift of the machine (or a cache one of
/// them warms for the other) hits both alike. Each closure returns its own
/// measurement, so it can leave its setup out.
pub(crate) fn paired(
    warm: usize,
    n: usize,
    mut ours: impl FnMut() -> Result<f64>,
    mut base: impl FnMut() -> Result<f64>,
) -> Result<Paired> {
    for _ in 0..warm {
        ours()?;
        base()?;
    }
    let mut p = Paired { ours: Vec::with_capacity(n), base: Vec::with_capacity(n) };
    for i in 0..n {
        if i % 2 == 0 {
            p.ours.push(ours()?);
            p.base.push(base()?);
        } else {
            p.base.push(base()?);
            p.ours.push(ours()?);
        }
    }
    Ok(p)
}

/// The wall time of `f` in seconds.
pub(crate) fn timed(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}
