//! The key/value configuration a user gives a plugin (`--config key=value`).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use crate::Error;

/// The plugin's configuration: string keys to string values, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    map: BTreeMap<String, String>,
}

impl Config {
    /// Build a configuration from key/value pairs; a later duplicate key wins.
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        Config {
            map: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// The value of `key`, or [`Error::InvalidConfig`] saying how to set it.
    pub fn require(&self, key: &str) -> Result<&str, Error> {
        self.get(key)
            .ok_or_else(|| Error::InvalidConfig(format!("missing config key `{key}`: set it with --config {key}=...")))
    }

    /// The value of `key` parsed as `T`; `Ok(None)` if unset, an error naming key and value
    /// if it does not parse.
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|e| Error::InvalidConfig(format!("invalid value `{v}` for config key `{key}`: {e}"))),
        }
    }

    /// Fail with [`Error::InvalidConfig`] on the first key not in `allowed`.
    pub fn check_known(&self, allowed: &[&str]) -> Result<(), Error> {
        match self.map.keys().find(|k| !allowed.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => {
                let list = if allowed.is_empty() {
                    "this plugin takes no configuration".to_string()
                } else {
                    let keys: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                    format!("allowed keys: {}", keys.join(", "))
                };
                Err(Error::InvalidConfig(format!("unknown config key `{k}`; {list}")))
            }
        }
    }

    /// All pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of keys set.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if no key is set.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::new([("predicate", "x > 1"), ("n", "12"), ("bad", "x1")])
    }

    #[test]
    fn get_and_require() {
        let c = cfg();
        assert_eq!(c.get("predicate"), Some("x > 1"));
        assert_eq!(c.get("nope"), None);
        assert_eq!(c.require("n"), Ok("12"));
        assert_eq!(
            c.require("key"),
            Err(Error::InvalidConfig(
                "missing config key `key`: set it with --config key=...".into()
            ))
        );
    }

    #[test]
    fn parse_names_key_and_value() {
        let c = cfg();
        assert_eq!(c.parse::<u32>("n"), Ok(Some(12)));
        assert_eq!(c.parse::<u32>("unset"), Ok(None));
        let e = c.parse::<u32>("bad").unwrap_err();
        assert!(e.message().contains("`x1`") && e.message().contains("`bad`"), "{e}");
    }

    #[test]
    fn check_known_lists_allowed() {
        let c = cfg();
        assert!(c.check_known(&["predicate", "n", "bad"]).is_ok());
        let e = c.check_known(&["predicate", "n"]).unwrap_err();
        assert_eq!(
            e,
            Error::InvalidConfig("unknown config key `bad`; allowed keys: `predicate`, `n`".into())
        );
    }

    #[test]
    fn iter_is_sorted() {
        let c = cfg();
        let keys: Vec<&str> = c.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["bad", "n", "predicate"]);
    }
}
