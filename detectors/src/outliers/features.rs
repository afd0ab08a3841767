//! Per-window features compared across peers: level (median), spread (1.4826 x MAD)
//! and trend (resistant slope between the medians of the first and last thirds,
//! times the window length, so it is the change over the window in metric units).

use std::fmt;

use crate::forecast::trend::median;

/// What about a window is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Level,
    Spread,
    Trend,
}

impl Feature {
    pub const ALL: [Feature; 3] = [Feature::Level, Feature::Spread, Feature::Trend];
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Level => "level",
            Feature::Spread => "spread",
            Feature::Trend => "change over the window",
        })
    }
}

/// `[level, spread, trend]` of the finite values of a window; `None` if it has none.
/// Spread and trend are 0 for windows shorter than 3 values.
pub fn extract(window: &[f64]) -> Option<[f64; 3]> {
    let v: Vec<f64> = window.iter().copied().filter(|x| x.is_finite()).collect();
    let level = median(&v)?;
    if v.len() < 3 {
        return Some([level, 0.0, 0.0]);
    }
    let dev: Vec<f64> = v.iter().map(|x| (x - level).abs()).collect();
    let spread = 1.4826 * median(&dev).unwrap_or(0.0);
    let third = v.len() / 3;
    let first = median(&v[..third]).unwrap_or(level);
    let last = median(&v[v.len() - third..]).unwrap_or(level);
    // Centres of the thirds are (len - third) apart; scale to the whole window.
    let trend = (last - first) * v.len() as f64 / (v.len() - third) as f64;
    Some([level, spread, trend])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_simple_windows() {
        let ramp: Vec<f64> = (0..30).map(f64::from).collect();
        let [level, spread, trend] = extract(&ramp).unwrap();
        assert_eq!(level, 14.5);
        assert!(spread > 5.0);
        assert!((trend - 30.0).abs() < 1.0, "trend {trend}");
        assert_eq!(extract(&[5.0; 10]).unwrap(), [5.0, 0.0, 0.0]);
        assert_eq!(extract(&[f64::NAN, 2.0]).unwrap(), [2.0, 0.0, 0.0]);
        assert_eq!(extract(&[f64::NAN]), None);
        assert_eq!(extract(&[]), None);
    }
}
