//! How fast a narration is read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A reading speed from 0.5 (half the voice's pace) to 1.5, in hundredths
/// so that equal speeds compare equal; 1.0 is the voice's own pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct Speed(u16);

impl Speed {
    pub const NORMAL: Speed = Speed(100);
    /// The slowest reading offered.
    pub const SLOWEST: Speed = Speed(Self::MIN);
    const MIN: u16 = 50;
    const MAX: u16 = 150;

    /// The speed as a factor: 0.7 reads at seven tenths of the voice's pace.
    pub fn factor(self) -> f32 {
        f32::from(self.0) / 100.0
    }

    pub fn is_normal(self) -> bool {
        self == Self::NORMAL
    }
}

impl Default for Speed {
    fn default() -> Self {
        Self::NORMAL
    }
}

impl TryFrom<f32> for Speed {
    type Error = String;
    fn try_from(value: f32) -> Result<Self, String> {
        let hundredths = (value * 100.0).round();
        if !(f32::from(Self::MIN)..=f32::from(Self::MAX)).contains(&hundredths) {
            return Err(format!("a speed is from 0.5 to 1.5 (1.0 is normal), not {value}"));
        }
        Ok(Self(hundredths as u16))
    }
}

impl From<Speed> for f32 {
    fn from(s: Speed) -> f32 {
        s.factor()
    }
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().trim_end_matches(['x', 'X', '×']);
        let value: f32 = s.parse().map_err(|_| format!("a speed is a number from 0.5 to 1.5, not `{s}`"))?;
        if !value.is_finite() {
            return Err(format!("a speed is a number from 0.5 to 1.5, not `{s}`"));
        }
        Self::try_from(value)
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.factor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_are_read_from_text_within_their_range() {
        assert_eq!("0.7".parse::<Speed>().unwrap().factor(), 0.7);
        assert_eq!("1.5x".parse::<Speed>().unwrap().to_string(), "1.5");
        assert!("0.49".parse::<Speed>().is_err());
        assert!("2".parse::<Speed>().is_err());
        assert!("NaN".parse::<Speed>().is_err());
        assert!("fast".parse::<Speed>().is_err());
        assert_eq!(serde_json::to_string(&"0.8".parse::<Speed>().unwrap()).unwrap(), "0.8");
        assert!(serde_json::from_str::<Speed>("3.0").is_err());
    }
}
