//! Fold rules as data: how an event changes a family's snapshot, declared once per family
//! ([`TopicFamily::FOLD`](super::TopicFamily::FOLD)) and interpreted everywhere.
//!
//! The server folds with [`Fold::apply`], which works on the family's own Rust types through two
//! small traits: [`FoldTarget`] (the snapshot's list, or the whole snapshot for
//! [`Fold::Latest`]) and [`Fields`] (an event's string fields by their wire names). No JSON is
//! built on the way. The generated TypeScript `fold.ts` interprets the same rule, emitted as
//! data, and the protocol reference prints [`Fold::describe`]; an agreement test in the codegen
//! crate folds sampled event sequences both ways and requires equal snapshots.

use std::fmt;

/// How an event changes a family's snapshot.
///
/// Every interpreter of a rule (this crate's [`Fold::apply`], the generated TypeScript fold,
/// the prose of [`Fold::describe`]) handles every variant, so adding a variant is a compile
/// error in each of them until it is handled: see the catalog's module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// The snapshot is the latest event's payload; before the first event it is `null`. The
    /// family's snapshot type is its event type.
    Latest,
    /// The snapshot is an object holding one list, `list`, with at most one entry per `key`,
    /// kept in `order`. The event replaces the entry with its key or is inserted in order; an
    /// event matching `remove_when` removes the entry instead (and is not inserted).
    Upsert {
        /// The snapshot field holding the entries (its wire name).
        list: &'static str,
        /// The string field of the event that identifies an entry (its wire name).
        key: &'static str,
        /// How the entries are ordered.
        order: Order,
        /// The condition under which the event removes its entry.
        remove_when: Option<FieldIs>,
    },
    /// The snapshot is an object holding one list, `list`, of the latest events, oldest first:
    /// the event is appended, then the oldest entries are dropped so that at most `cap` remain.
    Append {
        /// The snapshot field holding the entries (its wire name).
        list: &'static str,
        /// How many entries the snapshot keeps, at least 1.
        cap: usize,
    },
}

/// How the entries of an [`Fold::Upsert`] list are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Ascending by key, comparing keys by Unicode code point: the order of their UTF-8 bytes,
    /// as Rust compares strings (JavaScript's `<` compares UTF-16 code units, which differs
    /// for characters beyond U+FFFF).
    KeyAscending,
}

/// A condition on one event field: the field (its wire name) holds exactly the string `value`
/// (a string, or a unit enum variant spelled as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldIs {
    /// The field's wire name, e.g. `status`.
    pub field: &'static str,
    /// The value, e.g. `closed`.
    pub value: &'static str,
}

/// Read access to an event's string fields by their wire names, for [`Fold::apply`].
///
/// Implement it on a family's event type for every field a rule may name: string fields and
/// unit enums (as their wire names). The agreement test in the codegen crate checks, on sampled
/// events, that each name the family's rule uses reads the same value as the event's JSON.
pub trait Fields {
    /// The field named `name` as spelled on the wire, when it is present and holds a string
    /// (or a unit enum variant, as its wire name); `None` otherwise.
    fn str_field(&self, name: &str) -> Option<&str>;
}

/// Write access to the part of a snapshot that a rule changes, for [`Fold::apply`].
pub trait FoldTarget<E> {
    /// The list named `name` (its wire name), for [`Fold::Upsert`] and [`Fold::Append`];
    /// `None` when the snapshot has no such list.
    fn list_mut(&mut self, name: &str) -> Option<&mut Vec<E>>;
    /// Makes the snapshot `event`, for [`Fold::Latest`]. Returns `false`, changing nothing,
    /// when this snapshot type cannot be an event.
    fn set_latest(&mut self, event: &E) -> bool;
}

/// Why a rule cannot be applied to a family's types: a mistake in the catalog, which the
/// catalog's tests and the codegen agreement test report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldMismatch {
    /// The snapshot has no list of that name.
    #[error("the rule names the snapshot list {0:?}, which the snapshot type does not have")]
    NoList(&'static str),
    /// The event lacks the key field, or it is not a string.
    #[error("the rule keys entries by {0:?}, which the event does not have as a string field")]
    NoKey(&'static str),
    /// A `Latest` rule on a snapshot type that is not the event type.
    #[error("a Latest rule needs the snapshot type to be the event type")]
    NotLatest,
    /// An `Append` rule that keeps no entries.
    #[error("an Append rule must keep at least 1 entry, not 0")]
    ZeroCap,
}

impl Fold {
    /// Whether the rule is well formed: names are not empty and an `Append` keeps at least one
    /// entry. The catalog checks it for every family at compile time.
    pub const fn is_well_formed(self) -> bool {
        match self {
            Fold::Latest => true,
            Fold::Upsert {
                list,
                key,
                order: Order::KeyAscending,
                remove_when,
            } => {
                !list.is_empty()
                    && !key.is_empty()
                    && match remove_when {
                        Some(FieldIs { field, .. }) => !field.is_empty(),
                        None => true,
                    }
            }
            Fold::Append { list, cap } => !list.is_empty() && cap >= 1,
        }
    }

    /// Folds `event` into `snapshot` by this rule.
    ///
    /// Keys are compared as Rust compares `str`s, which is by Unicode code point
    /// ([`Order::KeyAscending`]). Costs one binary search plus the list insertion or removal
    /// for an `Upsert`, a clone of the event, and nothing else: no JSON is built.
    #[inline]
    pub fn apply<S, E>(self, snapshot: &mut S, event: &E) -> Result<(), FoldMismatch>
    where
        S: FoldTarget<E>,
        E: Fields + Clone,
    {
        match self {
            Fold::Latest => {
                if snapshot.set_latest(event) {
                    Ok(())
                } else {
                    Err(FoldMismatch::NotLatest)
                }
            }
            Fold::Upsert {
                list,
                key,
                order: Order::KeyAscending,
                remove_when,
            } => {
                let event_key = event.str_field(key).ok_or(FoldMismatch::NoKey(key))?;
                let remove = remove_when
                    .is_some_and(|FieldIs { field, value }| event.str_field(field) == Some(value));
                let entries = snapshot.list_mut(list).ok_or(FoldMismatch::NoList(list))?;
                let found = entries.binary_search_by(|entry| {
                    entry.str_field(key).unwrap_or_default().cmp(event_key)
                });
                match (found, remove) {
                    (Ok(at), true) => {
                        entries.remove(at);
                    }
                    (Err(_), true) => {}
                    (Ok(at), false) => entries[at].clone_from(event),
                    (Err(at), false) => entries.insert(at, event.clone()),
                }
                Ok(())
            }
            Fold::Append { list, cap } => {
                if cap == 0 {
                    return Err(FoldMismatch::ZeroCap);
                }
                let entries = snapshot.list_mut(list).ok_or(FoldMismatch::NoList(list))?;
                if entries.len() >= cap {
                    let excess = entries.len() + 1 - cap;
                    entries.drain(..excess);
                }
                entries.push(event.clone());
                Ok(())
            }
        }
    }

    /// The rule in one or two sentences, for the protocol reference and the generated docs.
    pub fn describe(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Fold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fold::Latest => f.write_str(
                "The snapshot is the latest event's payload (`null` before the first event).",
            ),
            Fold::Upsert {
                key,
                order,
                remove_when,
                ..
            } => {
                let order = match order {
                    Order::KeyAscending => {
                        format!("ordered by `{key}`, compared by Unicode code point")
                    }
                };
                write!(
                    f,
                    "The event replaces the entry with the same `{key}` (or is inserted, keeping \
                     the list {order})"
                )?;
                match remove_when {
                    Some(FieldIs { field, value }) => write!(
                        f,
                        "; an event with {field} `{value}` removes the entry instead."
                    ),
                    None => f.write_str("."),
                }
            }
            Fold::Append { cap, .. } => write!(
                f,
                "The event is appended; when the snapshot holds more than {cap} entries, the \
                 oldest are dropped."
            ),
        }
    }
}

/// Implements [`FoldTarget`] for a snapshot that is one list of entries, named as on the wire.
macro_rules! list_snapshot {
    ($snapshot:ty, $entry:ty, $name:literal => $field:ident) => {
        impl $crate::catalog::FoldTarget<$entry> for $snapshot {
            fn list_mut(&mut self, name: &str) -> Option<&mut Vec<$entry>> {
                (name == $name).then_some(&mut self.$field)
            }

            fn set_latest(&mut self, _event: &$entry) -> bool {
                false
            }
        }
    };
}
pub(crate) use list_snapshot;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Item {
        id: String,
        gone: bool,
    }

    impl Fields for Item {
        fn str_field(&self, name: &str) -> Option<&str> {
            match name {
                "id" => Some(&self.id),
                "state" => Some(if self.gone { "gone" } else { "here" }),
                _ => None,
            }
        }
    }

    #[derive(Debug, Default)]
    struct Items {
        items: Vec<Item>,
    }
    list_snapshot!(Items, Item, "items" => items);

    fn item(id: &str, gone: bool) -> Item {
        Item {
            id: id.into(),
            gone,
        }
    }

    fn ids(items: &Items) -> Vec<&str> {
        items.items.iter().map(|i| i.id.as_str()).collect()
    }

    const UPSERT: Fold = Fold::Upsert {
        list: "items",
        key: "id",
        order: Order::KeyAscending,
        remove_when: Some(FieldIs {
            field: "state",
            value: "gone",
        }),
    };

    #[test]
    fn upsert_orders_by_code_point_and_removes() {
        let mut items = Items::default();
        // U+FF5E sorts before U+1F600 by code point but after it by UTF-16 code unit.
        for (id, gone) in [
            ("b", false),
            ("\u{1F600}", false),
            ("\u{FF5E}", false),
            ("a", false),
            ("b", true),
            ("zz", true),
        ] {
            UPSERT.apply(&mut items, &item(id, gone)).unwrap();
        }
        assert_eq!(ids(&items), ["a", "\u{FF5E}", "\u{1F600}"]);
    }

    #[test]
    fn append_keeps_the_latest_cap_entries() {
        let rule = Fold::Append {
            list: "items",
            cap: 2,
        };
        let mut items = Items::default();
        for id in ["1", "2", "3"] {
            rule.apply(&mut items, &item(id, false)).unwrap();
        }
        assert_eq!(ids(&items), ["2", "3"]);
    }

    #[test]
    fn mismatched_rules_are_reported_and_change_nothing() {
        let mut items = Items::default();
        let wrong_list = Fold::Append {
            list: "things",
            cap: 2,
        };
        assert_eq!(
            wrong_list.apply(&mut items, &item("1", false)),
            Err(FoldMismatch::NoList("things"))
        );
        let wrong_key = Fold::Upsert {
            list: "items",
            key: "name",
            order: Order::KeyAscending,
            remove_when: None,
        };
        assert_eq!(
            wrong_key.apply(&mut items, &item("1", false)),
            Err(FoldMismatch::NoKey("name"))
        );
        assert_eq!(
            Fold::Latest.apply(&mut items, &item("1", false)),
            Err(FoldMismatch::NotLatest)
        );
        let zero = Fold::Append {
            list: "items",
            cap: 0,
        };
        assert!(!zero.is_well_formed());
        assert_eq!(
            zero.apply(&mut items, &item("1", false)),
            Err(FoldMismatch::ZeroCap)
        );
        assert!(items.items.is_empty(), "{items:?}");
    }

    #[test]
    fn descriptions_name_the_key_the_condition_and_the_cap() {
        assert_eq!(
            UPSERT.describe(),
            "The event replaces the entry with the same `id` (or is inserted, keeping the list \
             ordered by `id`, compared by Unicode code point); an event with state `gone` \
             removes the entry instead."
        );
        let cap = Fold::Append {
            list: "items",
            cap: 7,
        }
        .describe();
        assert!(cap.contains("more than 7 entries"), "{cap}");
    }
}
