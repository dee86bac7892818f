//! Reservoir sampling (Algorithm R): a uniform sample of `k` items from a
//! stream of unknown length, so a long feed is not biased to its head.

use rand::Rng;

/// A uniform sample of at most `k` of the items offered.
#[derive(Debug)]
pub struct Reservoir<T> {
    k: usize,
    seen: u64,
    items: Vec<T>,
}

impl<T> Reservoir<T> {
    /// An empty reservoir of capacity `k`.
    pub fn new(k: usize) -> Self {
        Reservoir {
            k,
            seen: 0,
            items: Vec::with_capacity(k.min(1024)),
        }
    }

    /// Offers one item; every item offered so far is kept with probability k/seen.
    pub fn offer(&mut self, item: T, rng: &mut impl Rng) {
        self.seen += 1;
        if self.items.len() < self.k {
            self.items.push(item);
        } else if self.k > 0 {
            let j = rng.gen_range(0..self.seen);
            if (j as usize) < self.k {
                self.items[j as usize] = item;
            }
        }
    }

    /// Items offered.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The sample.
    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn every_position_is_equally_likely_to_be_kept() {
        let mut rng = StdRng::seed_from_u64(7);
        let (n, k, rounds) = (100usize, 10usize, 20_000usize);
        let mut counts = vec![0u32; n];
        for _ in 0..rounds {
            let mut r = Reservoir::new(k);
            for i in 0..n {
                r.offer(i, &mut rng);
            }
            for i in r.into_items() {
                counts[i] += 1;
            }
        }
        let expected = (rounds * k / n) as f64; // 2000
                                                // Chi-square with 99 degrees of freedom: 99.9th percentile ≈ 149.
        let chi2: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 149.0, "chi2 = {chi2}");
        let head: u32 = counts[..10].iter().sum();
        let tail: u32 = counts[90..].iter().sum();
        assert!((f64::from(head) / f64::from(tail) - 1.0).abs() < 0.1);
    }

    #[test]
    fn short_streams_are_kept_whole_and_zero_keeps_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut r = Reservoir::new(5);
        for i in 0..3 {
            r.offer(i, &mut rng);
        }
        assert_eq!(r.into_items(), vec![0, 1, 2]);
        let mut r = Reservoir::new(0);
        r.offer(1, &mut rng);
        assert_eq!(r.seen(), 1);
        assert!(r.into_items().is_empty());
    }
}
