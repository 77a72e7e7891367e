//! The allow file (`breaking.toml`): deliberate breaks, each with a reason.

use super::rules::{Direction, Rule};
use super::{BreakingError, Change};

/// One `[[allow]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allow {
    /// The rule it accepts.
    pub rule: Rule,
    /// `<subject>` or `<subject>#<pointer>`: the change's subject, or its location or one
    /// above it.
    pub at: String,
    /// Only changes in this direction, or either.
    pub direction: Option<Direction>,
    /// Why the break is deliberate.
    pub reason: String,
}

impl Allow {
    fn matches(&self, change: &Change) -> bool {
        let at = change.at();
        self.rule == change.rule
            && self.direction.is_none_or(|d| d == change.direction)
            && (self.at == change.subject
                || self.at == at
                || at
                    .strip_prefix(self.at.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    fn describe(&self) -> String {
        let direction = self
            .direction
            .map_or(String::new(), |d| format!(" ({})", d.name()));
        format!(
            "  rule {} at {:?}{direction}: {}",
            self.rule.id(),
            self.at,
            self.reason
        )
    }
}

/// A parsed allow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowFile {
    /// Where it was read from, for messages.
    pub path: String,
    /// Its entries, in file order.
    pub entries: Vec<Allow>,
}

impl AllowFile {
    /// Parses `text`, read from `path`. Every entry needs a known `rule`, a non-empty `at` and
    /// `reason`, and a `direction` that is `client-to-server` or `server-to-client` if given.
    pub fn parse(path: &str, text: &str) -> Result<AllowFile, BreakingError> {
        let bad = |problem: String| BreakingError::Allow {
            path: path.to_owned(),
            problem,
        };
        let table: toml::Table = text.parse().map_err(|err| {
            bad(format!("not TOML (expected `[[allow]]` tables with rule, at, reason and an optional direction): {err}"))
        })?;
        if let Some(key) = table.keys().find(|k| *k != "allow") {
            return Err(bad(format!(
                "unknown key {key:?}; expected only `[[allow]]` tables"
            )));
        }
        let items = match table.get("allow") {
            None => &[][..],
            Some(toml::Value::Array(items)) => items.as_slice(),
            Some(_) => {
                return Err(bad(
                    "`allow` must be an array of tables (`[[allow]]`)".to_owned()
                ));
            }
        };
        let mut entries = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let which = format!("[[allow]] entry {}", index + 1);
            let entry = item
                .as_table()
                .ok_or_else(|| bad(format!("{which}: expected a table with rule, at, reason")))?;
            if let Some(key) = entry
                .keys()
                .find(|k| !["rule", "at", "direction", "reason"].contains(&k.as_str()))
            {
                return Err(bad(format!(
                    "{which}: unknown key {key:?}; expected rule, at, reason, direction"
                )));
            }
            let text = |key: &str| -> Result<Option<String>, BreakingError> {
                match entry.get(key) {
                    None => Ok(None),
                    Some(toml::Value::String(s)) if s.trim().is_empty() => {
                        Err(bad(format!("{which}: `{key}` is empty")))
                    }
                    Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(bad(format!(
                        "{which}: `{key}` must be a string, not {other}"
                    ))),
                }
            };
            let needed = |key: &str| {
                text(key)?.ok_or_else(|| {
                    bad(format!(
                        "{which}: `{key}` is missing (every entry needs rule, at and reason)"
                    ))
                })
            };
            let (rule, at, reason) = (needed("rule")?, needed("at")?, needed("reason")?);
            let rule = Rule::from_id(&rule).ok_or_else(|| {
                let known: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
                bad(format!(
                    "{which}: unknown rule {rule:?}; expected one of {}",
                    known.join(", ")
                ))
            })?;
            let direction = match text("direction")? {
                None => None,
                Some(name) => Some(Direction::from_name(&name).ok_or_else(|| {
                    bad(format!("{which}: direction {name:?}; expected \"client-to-server\" or \"server-to-client\""))
                })?),
            };
            entries.push(Allow {
                rule,
                at,
                direction,
                reason,
            });
        }
        Ok(AllowFile {
            path: path.to_owned(),
            entries,
        })
    }

    /// Marks each change an entry matches as allowed (the first matching entry's reason);
    /// fails if some entry matches no change.
    pub fn apply(&self, changes: &mut [Change]) -> Result<(), BreakingError> {
        let mut used = vec![false; self.entries.len()];
        for change in changes.iter_mut() {
            // Every matching entry counts as used; the first one gives the reason.
            for (entry, used) in self.entries.iter().zip(used.iter_mut()) {
                if entry.matches(change) {
                    *used = true;
                    change.allowed.get_or_insert_with(|| entry.reason.clone());
                }
            }
        }
        let stale: Vec<String> = self
            .entries
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .map(|(entry, _)| entry.describe())
            .collect();
        if stale.is_empty() {
            Ok(())
        } else {
            Err(BreakingError::StaleAllows {
                path: self.path.clone(),
                entries: stale,
            })
        }
    }
}
