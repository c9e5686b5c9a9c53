//! Two-sample statistics for `login-timing`: quantiles, the Mann-Whitney U
//! test (does one sample tend to be larger?) and the Kolmogorov-Smirnov
//! test (do the distributions differ at all?), with normal and Kolmogorov
//! approximations of their p-values, which are good for the sample sizes
//! used here (hundreds or more).

use std::f64::consts::SQRT_2;

/// Quantile `q` (0 to 1) of sorted data, by nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Where a sample lies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summary(samples: &[f64]) -> Option<Summary> {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    Some(Summary {
        n: s.len(),
        min: *s.first()?,
        p10: quantile(&s, 0.10),
        p50: quantile(&s, 0.50),
        p90: quantile(&s, 0.90),
        p99: quantile(&s, 0.99),
        max: *s.last()?,
    })
}

/// The Mann-Whitney U test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankTest {
    /// U of `a`: pairs (x from a, y from b) with x > y, ties counting half.
    pub u: f64,
    /// Standardised U (tie-corrected); positive when `a` tends to be larger.
    pub z: f64,
    /// Two-sided p-value (normal approximation).
    pub p: f64,
    /// U ÷ (n_a × n_b): the chance that a value of `a` exceeds one of `b`
    /// (0.5 when neither tends to be larger).
    pub a_exceeds_b: f64,
}

pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&y| (y, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut rank_sum_a = 0.0;
    // Σ (t³ − t) over groups of t tied values, for the variance.
    let mut ties = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_sum_a += mid_rank * all[i..=j].iter().filter(|v| v.1).count() as f64;
        i = j + 1;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let n = na + nb;
    let u = rank_sum_a - na * (na + 1.0) / 2.0;
    let variance = if n > 1.0 {
        na * nb / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))
    } else {
        0.0
    };
    let z = if variance > 0.0 {
        (u - na * nb / 2.0) / variance.sqrt()
    } else {
        0.0
    };
    Some(RankTest {
        u,
        z,
        p: erfc(z.abs() / SQRT_2).clamp(0.0, 1.0),
        a_exceeds_b: u / (na * nb),
    })
}

/// The two-sample Kolmogorov-Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DistributionTest {
    /// Largest gap between the two empirical distribution functions.
    pub d: f64,
    /// Its p-value (asymptotic Kolmogorov distribution).
    pub p: f64,
}

pub fn kolmogorov_smirnov(a: &[f64], b: &[f64]) -> Option<DistributionTest> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value in both samples, so
        // that ties move both functions at once.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    let effective = (na * nb / (na + nb)).sqrt();
    let lambda = (effective + 0.12 + 0.11 / effective) * d;
    Some(DistributionTest {
        d,
        p: kolmogorov_tail(lambda),
    })
}

/// P(K > λ) for the Kolmogorov distribution: 2 Σ (−1)^(k−1) e^(−2k²λ²).
fn kolmogorov_tail(lambda: f64) -> f64 {
    // Below 0.2 the series converges slowly and the value is 1 to within
    // 1e-9 anyway.
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = (-2.0 * (k * k) as f64 * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-16 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// The complementary error function, to a relative error below 1.2e-7
/// (a Chebyshev fit of erfc(z) ≈ t·exp(−z² + P(t)), t = 1 / (1 + z/2)),
/// so that small p-values keep their leading digits.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn erfc_matches_known_values() {
        assert!(close(erfc(0.0), 1.0, 1e-6));
        assert!(close(erfc(1.0), 0.157_299_207, 1e-6));
        assert!(close(erfc(3.0), 2.209_049_7e-5, 1e-5));
        assert!(close(erfc(-1.0), 1.842_700_79, 1e-6));
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&s, 0.5), 50.0);
        assert_eq!(quantile(&s, 0.99), 99.0);
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 100.0);
        let sum = summary(&[3.0, 1.0, 2.0]).expect("non-empty");
        assert_eq!((sum.n, sum.min, sum.p50, sum.max), (3, 1.0, 2.0, 3.0));
        assert!(summary(&[]).is_none());
    }

    #[test]
    fn mann_whitney_by_hand() {
        // Every value of a exceeds every value of b: U = 3 × 3.
        let t = mann_whitney(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]).expect("samples");
        assert_eq!(t.u, 9.0);
        assert_eq!(t.a_exceeds_b, 1.0);
        assert!(t.z > 0.0);
        // Ties count half: a = {1, 2}, b = {2, 3}: pairs with x > y: none;
        // one tie (2, 2): U = 0.5.
        let t = mann_whitney(&[1.0, 2.0], &[2.0, 3.0]).expect("samples");
        assert_eq!(t.u, 0.5);
        // The same sample twice: no tendency at all.
        let s: Vec<f64> = (0..200).map(|i| f64::from(i % 17)).collect();
        let t = mann_whitney(&s, &s).expect("samples");
        assert!(t.z.abs() < 1e-9 && t.p > 0.99, "{t:?}");
        assert!(mann_whitney(&[], &[1.0]).is_none());
    }

    #[test]
    fn a_shift_is_found_and_noise_is_not() {
        let base: Vec<f64> = (0..1000).map(|i| f64::from((i * 7919) % 1000)).collect();
        let shifted: Vec<f64> = base.iter().map(|x| x + 150.0).collect();
        let same: Vec<f64> = base.iter().rev().copied().collect();
        let t = mann_whitney(&base, &shifted).expect("samples");
        assert!(t.p < 1e-6 && t.z < 0.0, "{t:?}");
        let k = kolmogorov_smirnov(&base, &shifted).expect("samples");
        assert!((k.d - 0.15).abs() < 1e-9 && k.p < 1e-6, "{k:?}");
        let k = kolmogorov_smirnov(&base, &same).expect("samples");
        assert_eq!(k.d, 0.0);
        assert_eq!(k.p, 1.0);
        let disjoint = kolmogorov_smirnov(&[1.0, 2.0], &[3.0, 4.0]).expect("samples");
        assert_eq!(disjoint.d, 1.0);
    }
}
