//! Order-independent sums. Floating-point addition is not associative, so
//! summing the same terms in another order can differ in the last bit. Each
//! term is rounded once to a fixed-point integer (2^-40 resolution), and
//! integer addition is exact, so any arrival order gives the same bits.

const ONE: f64 = (1u64 << 40) as f64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FixedSum(i128);

impl FixedSum {
    pub fn add(&mut self, term: f64) {
        let scaled = (term * ONE).round();
        // Through i64 when it fits (the same value, without the slow
        // float-to-i128 conversion); `as` saturates beyond i128's range.
        self.0 += if scaled.abs() < 9.0e18 { i128::from(scaled as i64) } else { scaled as i128 };
    }

    pub fn value(self) -> f64 {
        self.0 as f64 / ONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_do_not_depend_on_order() {
        let terms = [0.1, 1e-9, 123.456, -0.3, 7.0 / 3.0, 1e-13];
        let mut a = FixedSum::default();
        terms.iter().for_each(|t| a.add(*t));
        let mut b = FixedSum::default();
        terms.iter().rev().for_each(|t| b.add(*t));
        assert_eq!(a, b);
        assert!((a.value() - terms.iter().sum::<f64>()).abs() < 1e-9);
    }
}
