//! Reading variables: parsing with errors that name the variable, and a
//! record of every name read.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

/// A setting that could not be used, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingsError {
    pub name: String,
    pub problem: String,
}

impl SettingsError {
    pub fn new(name: &str, problem: impl Into<String>) -> Self {
        Self { name: name.to_owned(), problem: problem.into() }
    }
}

/// A value that must never reach a log: `Debug` shows it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A source of variables by name.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Where settings come from: the process environment, or any lookup (tests
/// pass a map). Empty values count as unset.
pub struct Env<'a> {
    lookup: Lookup<'a>,
    read: RefCell<BTreeSet<String>>,
}

impl<'a> Env<'a> {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self { lookup: Box::new(lookup), read: RefCell::default() }
    }

    /// The process environment.
    pub fn process() -> Env<'static> {
        Env::new(|name| std::env::var(name).ok())
    }

    /// A variable's value, trimmed; `None` when unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        self.read.borrow_mut().insert(name.to_owned());
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// A variable parsed, or `default` when unset.
    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| SettingsError::new(name, format!("`{v}` is not valid ({e})"))),
        }
    }

    /// A whole number of seconds.
    pub fn seconds(&self, name: &str, default: u64) -> Result<Duration, SettingsError> {
        self.parse(name, default).map(Duration::from_secs)
    }

    /// A whole number of milliseconds.
    pub fn millis(&self, name: &str, default: u64) -> Result<Duration, SettingsError> {
        self.parse(name, default).map(Duration::from_millis)
    }

    /// One of several named options (case-insensitive), or `default`.
    pub fn choose<T: Copy>(&self, name: &str, default: T, options: &[(&str, T)]) -> Result<T, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => {
                let v = v.to_ascii_lowercase();
                options.iter().find(|(n, _)| *n == v).map(|(_, t)| *t).ok_or_else(|| {
                    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                    SettingsError::new(name, format!("`{v}` is not one of {}", names.join(", ")))
                })
            }
        }
    }

    /// An `http://` or `https://` address without a trailing slash.
    pub fn url(&self, name: &str) -> Result<Option<String>, SettingsError> {
        match self.get(name) {
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                Err(SettingsError::new(name, "must start with http:// or https://"))
            }
            other => Ok(other.map(|u| u.trim_end_matches('/').to_owned())),
        }
    }

    /// Every name asked for so far.
    pub fn names_read(&self) -> BTreeSet<String> {
        self.read.borrow().clone()
    }
}

/// The known name closest to `name` by edit distance.
pub fn closest<'k>(name: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known.into_iter().min_by_key(|k| edit_distance(name, k))
}

/// Levenshtein distance between two names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_name_is_the_fewest_edits_away() {
        let known = ["STORYTIME_READ_WORKERS", "STORYTIME_RETRY_BASE_MS", "STORYTIME_DATA_DIR"];
        assert_eq!(closest("STORYTIME_REDA_WORKERS", known), Some("STORYTIME_READ_WORKERS"));
        assert_eq!(closest("STORYTIME_RETRY_BASE", known), Some("STORYTIME_RETRY_BASE_MS"));
        assert_eq!(closest("STORYTIME_DATADIR", known), Some("STORYTIME_DATA_DIR"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn every_name_read_is_remembered_and_blank_values_are_unset() {
        let env = Env::new(|name| (name == "A").then(|| "  ".to_owned()));
        assert_eq!(env.get("A"), None);
        assert_eq!(env.parse("B", 3).unwrap(), 3);
        assert_eq!(env.names_read().into_iter().collect::<Vec<_>>(), ["A", "B"]);
    }
}
