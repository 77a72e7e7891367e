//! The typed topic catalog: each topic family, its snapshot and event payload types, and how an
//! event folds into the snapshot.
//!
//! To add a family: write a module with its payload types and a type implementing
//! [`TopicFamily`], then add one line to the `catalog!` invocation below. The generated
//! TypeScript, JSON Schema and protocol reference pick it up on the next `cargo xtask codegen`.
//!
//! # Fold rules
//!
//! A family declares how an event changes its snapshot as data, [`TopicFamily::FOLD`], a
//! [`Fold`]: [`Fold::Latest`], [`Fold::Upsert`] (by a key field, in an [`Order`], optionally
//! removing on a [`FieldIs`] condition) or [`Fold::Append`] (with a cap). From that one value
//! come the server's fold ([`Fold::apply`], through [`TopicSnapshot::fold`]), the prose in the
//! protocol reference and the TypeScript docs ([`Fold::describe`], [`Family::fold_rule`]) and
//! the generated TypeScript fold (`generated/typescript/fold.ts`, whose `FOLDS` constant is the
//! rules as data and whose `foldEvent` interprets them). The payload types give the rule access
//! to what it names: the event type implements [`Fields`] (its string fields by wire name), the
//! snapshot type implements [`FoldTarget`] (its list by wire name, or the whole snapshot for
//! `Latest`; `list_snapshot!` writes it for a one-list snapshot).
//!
//! A family whose fold fits an existing kind only declares `FOLD` and implements the two
//! traits. A family that needs a new kind of fold adds a variant to [`Fold`] and handles it in
//! every interpreter, each of which matches on [`Fold`] exhaustively, so the compiler lists
//! them: [`Fold::is_well_formed`], [`Fold::apply`] (extending [`Fields`] or [`FoldTarget`] if
//! the variant needs other access), the prose in `Display for Fold`, and in the codegen crate
//! `fold_ts.rs` (the rule's data in `FOLDS`, its TypeScript type, and a case in the
//! interpreter). The fold agreement test (`codegen/tests/fold_agreement.rs`) then folds
//! sampled event sequences of every family with both the Rust and the TypeScript fold and
//! requires identical snapshots; give the new family's events a strategy in
//! `codegen::corpus::strategies::event_of` so the samples exercise it.

mod custom;
mod drives;
mod fold;
mod sessions;
mod terminals;

use std::fmt::Debug;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use ts_rs::TS;

use crate::topic::Topic;

pub use custom::Custom;
pub use drives::{DrivePressure, DrivesPressure, DrivesPressureSnapshot};
pub(crate) use fold::list_snapshot;
pub use fold::{FieldIs, Fields, Fold, FoldMismatch, FoldTarget, Order};
pub use sessions::{
    ACTIVITY_SNAPSHOT_LIMIT, ActivityEntry, ActivityKind, SessionState, SessionStatus,
    SessionsActivity, SessionsActivitySnapshot, SessionsState, SessionsStateSnapshot,
};
pub use terminals::{TerminalState, TerminalStatus, TerminalsState, TerminalsStateSnapshot};

/// Which topics a family owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyShape {
    /// Exactly the topic `NAME`, with no key.
    Exact,
    /// `NAME:<key>`: one topic per key, e.g. one per session.
    Keyed {
        /// What the key identifies, for documentation, e.g. `sessionId`.
        key: &'static str,
    },
    /// `NAME.<segment>(.<segment>)*`, with or without a key: a whole subtree.
    Prefix,
}

/// A topic family: a set of topics that share payload types.
pub trait TopicFamily: 'static {
    /// The family's name: the exact topic, the path before the key, or the prefix.
    const NAME: &'static str;
    /// Which topics the family owns.
    const SHAPE: FamilyShape;
    /// What the family carries, for the protocol reference.
    const DESCRIPTION: &'static str;
    /// How an event changes the snapshot, as data: the one source of the server's fold, the
    /// generated TypeScript fold and the fold rule in the protocol reference.
    const FOLD: Fold;
    /// The state a `snapshot` carries.
    type Snapshot: Serialize
        + DeserializeOwned
        + JsonSchema
        + TS
        + Default
        + Clone
        + Debug
        + PartialEq
        + FoldTarget<Self::Event>;
    /// The change an `event` carries and a `publish` sends.
    type Event: Serialize + DeserializeOwned + JsonSchema + TS + Clone + Debug + PartialEq + Fields;
    /// Applies `event` to `snapshot` by [`TopicFamily::FOLD`], as every server must so that a
    /// new subscriber's snapshot equals the state an old subscriber built from the same events.
    ///
    /// Not meant to be overridden: the rule is the contract every client folds by.
    fn fold(snapshot: &mut Self::Snapshot, event: &Self::Event) {
        let applied = Self::FOLD.apply(snapshot, event);
        debug_assert!(applied.is_ok(), "family {}: {applied:?}", Self::NAME);
    }
}

/// Receives every family of the catalog with its static type, e.g. to generate code for it.
pub trait FamilyVisitor {
    /// Called once per family, in catalog order.
    fn visit<F: TopicFamily>(&mut self, family: Family);
}

/// Why a topic has no family, or a payload does not fit its family.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No family owns the topic.
    #[error("topic {topic:?} belongs to no family of the catalog; {hint}")]
    UnknownTopic {
        /// The topic as given.
        topic: String,
        /// What was expected instead.
        hint: String,
    },
    /// The payload does not match the family's type.
    #[error("payload for topic {topic:?} is not a valid {family} {kind}: {reason}")]
    InvalidPayload {
        /// A JSON pointer into the payload, when the place is known (`""` otherwise).
        pointer: String,
        /// The topic as given.
        topic: String,
        /// The family name.
        family: &'static str,
        /// `event` or `snapshot`.
        kind: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

impl FamilyShape {
    /// A regular expression matching exactly the topics of a family named `name`.
    pub fn topic_regex(self, name: &str) -> String {
        let escaped = name.replace('.', r"\.");
        match self {
            FamilyShape::Exact => format!("^{escaped}$"),
            FamilyShape::Keyed { .. } => format!("^{escaped}:[A-Za-z0-9_.~-]+$"),
            FamilyShape::Prefix => format!(r"^{escaped}(\.[a-z0-9_-]+)+(:[A-Za-z0-9_.~-]+)?$"),
        }
    }

    /// A TypeScript type matching the topics of a family named `name`, as closely as a template
    /// literal type can: a key or segment must start with a character the grammar allows there
    /// (`TopicKeyChar`, `TopicSegmentChar` in the generated `topics.ts`), so an empty key or an
    /// uppercase segment is refused; the rest of the grammar is checked by `CheckedTopic`.
    pub fn typescript_pattern(self, name: &str) -> String {
        match self {
            FamilyShape::Exact => format!("\"{name}\""),
            FamilyShape::Keyed { .. } => format!("`{name}:${{TopicKeyChar}}${{string}}`"),
            FamilyShape::Prefix => format!("`{name}.${{TopicSegmentChar}}${{string}}`"),
        }
    }

    /// How the topics look, for people, e.g. `sessions.activity:<sessionId>`.
    pub fn display(self, name: &str) -> String {
        match self {
            FamilyShape::Exact => name.to_owned(),
            FamilyShape::Keyed { key } => format!("{name}:<{key}>"),
            FamilyShape::Prefix => format!("{name}.<name>[:<key>]"),
        }
    }

    fn matches(self, name: &str, topic: &Topic) -> bool {
        match self {
            FamilyShape::Exact => topic.as_str() == name,
            FamilyShape::Keyed { .. } => topic.path() == name && topic.key().is_some(),
            FamilyShape::Prefix => topic
                .path()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('.')),
        }
    }
}

macro_rules! catalog {
    ($($variant:ident => $family:ty,)+) => {
        /// A family of the catalog, named by its Rust type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Family {
            $(#[doc = concat!("See [`", stringify!($family), "`].")] $variant,)+
        }

        impl Family {
            /// Every family, in catalog order.
            pub const ALL: &'static [Family] = &[$(Family::$variant),+];

            /// The family's name.
            pub const fn name(self) -> &'static str {
                match self { $(Family::$variant => <$family as TopicFamily>::NAME,)+ }
            }

            /// Which topics the family owns.
            pub const fn shape(self) -> FamilyShape {
                match self { $(Family::$variant => <$family as TopicFamily>::SHAPE,)+ }
            }

            /// What the family carries.
            pub const fn description(self) -> &'static str {
                match self { $(Family::$variant => <$family as TopicFamily>::DESCRIPTION,)+ }
            }

            /// How events fold into the snapshot, as data.
            pub const fn fold(self) -> Fold {
                match self { $(Family::$variant => <$family as TopicFamily>::FOLD,)+ }
            }

            /// How events fold into the snapshot, in words: [`Fold::describe`] of
            /// [`Family::fold`].
            pub fn fold_rule(self) -> &'static str {
                static RULES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
                    Family::ALL.iter().map(|f| f.fold().describe()).collect()
                });
                let at = Family::ALL.iter().position(|f| *f == self).unwrap_or_default();
                RULES.get(at).map_or("", String::as_str)
            }
        }

        $(const _: () = assert!(
            <$family as TopicFamily>::FOLD.is_well_formed(),
            concat!("the fold rule of ", stringify!($family), " is not well formed"),
        );)+

        /// Calls `visitor` once per family with the family's static type.
        pub fn visit_families<V: FamilyVisitor>(visitor: &mut V) {
            $(visitor.visit::<$family>(Family::$variant);)+
        }

        /// An event payload, decoded into its family's type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TopicEvent {
            $(#[doc = concat!("An event of [`", stringify!($family), "`].")]
              $variant(<$family as TopicFamily>::Event),)+
        }

        /// A snapshot payload, decoded into its family's type.
        #[derive(Debug, Clone, PartialEq)]
        pub enum TopicSnapshot {
            $(#[doc = concat!("A snapshot of [`", stringify!($family), "`].")]
              $variant(<$family as TopicFamily>::Snapshot),)+
        }

        impl TopicEvent {
            /// Decodes `payload` as an event of `topic`'s family.
            pub fn decode(topic: &Topic, payload: &Value) -> Result<TopicEvent, CatalogError> {
                let family = Family::of(topic)?;
                if let Err(err) = crate::json::check_numbers(payload) {
                    return Err(CatalogError::InvalidPayload {
                        pointer: err.pointer.clone(),
                        topic: topic.to_string(),
                        family: family.name(),
                        kind: "event",
                        reason: err.to_string(),
                    });
                }
                let invalid = |err: serde_json::Error| CatalogError::InvalidPayload {
                    pointer: String::new(),
                    topic: topic.to_string(),
                    family: family.name(),
                    kind: "event",
                    reason: err.to_string(),
                };
                Ok(match family {
                    $(Family::$variant => TopicEvent::$variant(
                        <<$family as TopicFamily>::Event>::deserialize(payload).map_err(invalid)?,
                    ),)+
                })
            }

            /// The family the event belongs to.
            pub fn family(&self) -> Family {
                match self { $(TopicEvent::$variant(_) => Family::$variant,)+ }
            }

            /// The payload as JSON.
            pub fn to_value(&self) -> Value {
                // Serializing catalog types to a Value cannot fail: they have string keys only.
                match self { $(TopicEvent::$variant(e) => serde_json::to_value(e).unwrap_or(Value::Null),)+ }
            }
        }

        impl TopicSnapshot {
            /// The state of a topic on which nothing was published yet.
            pub fn empty(family: Family) -> TopicSnapshot {
                match family {
                    $(Family::$variant => TopicSnapshot::$variant(Default::default()),)+
                }
            }

            /// Decodes `payload` as a snapshot of `topic`'s family.
            pub fn decode(topic: &Topic, payload: &Value) -> Result<TopicSnapshot, CatalogError> {
                let family = Family::of(topic)?;
                if let Err(err) = crate::json::check_numbers(payload) {
                    return Err(CatalogError::InvalidPayload {
                        pointer: err.pointer.clone(),
                        topic: topic.to_string(),
                        family: family.name(),
                        kind: "snapshot",
                        reason: err.to_string(),
                    });
                }
                let invalid = |err: serde_json::Error| CatalogError::InvalidPayload {
                    pointer: String::new(),
                    topic: topic.to_string(),
                    family: family.name(),
                    kind: "snapshot",
                    reason: err.to_string(),
                };
                Ok(match family {
                    $(Family::$variant => TopicSnapshot::$variant(
                        <<$family as TopicFamily>::Snapshot>::deserialize(payload).map_err(invalid)?,
                    ),)+
                })
            }

            /// Folds `event` into this snapshot. Returns `false`, changing nothing, when the
            /// event belongs to another family.
            pub fn fold(&mut self, event: &TopicEvent) -> bool {
                match (self, event) {
                    $((TopicSnapshot::$variant(s), TopicEvent::$variant(e)) => {
                        <$family as TopicFamily>::fold(s, e);
                        true
                    })+
                    #[allow(unreachable_patterns)]
                    _ => false,
                }
            }

            /// The payload as JSON.
            pub fn to_value(&self) -> Value {
                // Serializing catalog types to a Value cannot fail: they have string keys only.
                match self { $(TopicSnapshot::$variant(s) => serde_json::to_value(s).unwrap_or(Value::Null),)+ }
            }
        }
    };
}

use serde::Deserialize as _;

catalog! {
    SessionsState => SessionsState,
    SessionsActivity => SessionsActivity,
    TerminalsState => TerminalsState,
    DrivesPressure => DrivesPressure,
    Custom => Custom,
}

impl Family {
    /// The family that owns `topic`.
    pub fn of(topic: &Topic) -> Result<Family, CatalogError> {
        if let Some(family) = Family::ALL
            .iter()
            .find(|f| f.shape().matches(f.name(), topic))
        {
            return Ok(*family);
        }
        // Say what the closest family expects, so the client can fix the topic.
        let hint = match Family::ALL.iter().find(|f| f.name() == topic.path()) {
            Some(f) => format!(
                "family {} expects topics of the form {}",
                f.name(),
                f.shape().display(f.name())
            ),
            None => {
                let known: Vec<String> = Family::ALL
                    .iter()
                    .map(|f| f.shape().display(f.name()))
                    .collect();
                format!("known families: {}", known.join(", "))
            }
        };
        Err(CatalogError::UnknownTopic {
            topic: topic.to_string(),
            hint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn topic(name: &str) -> Topic {
        Topic::new(name).unwrap()
    }

    #[test]
    fn every_topic_has_at_most_one_family_and_regexes_agree() {
        let cases = [
            ("sessions.state", Some(Family::SessionsState)),
            ("sessions.state:x", None),
            ("sessions.activity:abc", Some(Family::SessionsActivity)),
            ("sessions.activity", None),
            ("terminals.state", Some(Family::TerminalsState)),
            ("drives.pressure", Some(Family::DrivesPressure)),
            ("custom.builds", Some(Family::Custom)),
            ("custom.builds.main:k1", Some(Family::Custom)),
            ("custom", None),
            ("customs.x", None),
            ("weather", None),
        ];
        for (name, expected) in cases {
            assert_eq!(Family::of(&topic(name)).ok(), expected, "{name}");
            let matching: Vec<Family> = Family::ALL
                .iter()
                .copied()
                .filter(|f| regex_matches(&f.shape().topic_regex(f.name()), name))
                .collect();
            assert_eq!(
                matching,
                expected.into_iter().collect::<Vec<_>>(),
                "regex for {name}"
            );
        }
    }

    fn regex_matches(regex: &str, input: &str) -> bool {
        regex::Regex::new(regex).unwrap().is_match(input)
    }

    #[test]
    fn unknown_topics_get_a_hint() {
        let err = Family::of(&topic("sessions.activity"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sessions.activity:<sessionId>"), "{err}");
        let err = Family::of(&topic("weather")).unwrap_err().to_string();
        assert!(err.contains("known families: sessions.state"), "{err}");
    }

    #[test]
    fn payloads_are_checked_against_their_family() {
        let pressure = json!({"drive": "/dev/sda", "pressure": 0.5, "threshold": 0.9});
        assert!(TopicEvent::decode(&topic("drives.pressure"), &pressure).is_ok());
        let err = TopicEvent::decode(&topic("sessions.state"), &pressure).unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::InvalidPayload {
                    family: "sessions.state",
                    ..
                }
            ),
            "{err}"
        );
        assert!(TopicEvent::decode(&topic("custom.anything"), &pressure).is_ok());
        let big: Value = serde_json::from_str(r#"{"n": [18446744073709551616]}"#).unwrap();
        let err = TopicEvent::decode(&topic("custom.anything"), &big).unwrap_err();
        assert!(
            matches!(&err, CatalogError::InvalidPayload { pointer, .. } if pointer == "/n/0"),
            "{err}"
        );
    }

    #[test]
    fn fold_refuses_events_of_another_family() {
        let mut snapshot = TopicSnapshot::empty(Family::SessionsState);
        let event = TopicEvent::decode(&topic("custom.x"), &json!(1)).unwrap();
        assert!(!snapshot.fold(&event));
        assert_eq!(snapshot, TopicSnapshot::empty(Family::SessionsState));
    }

    /// Checks each family's rule against its snapshot type: the empty snapshot is what the rule
    /// says (`null` for `Latest`, one empty list otherwise, which is also what the generated
    /// TypeScript `emptySnapshot` returns) and the list the rule names is there.
    struct RuleFitsSnapshot(Vec<String>);

    impl FamilyVisitor for RuleFitsSnapshot {
        fn visit<F: TopicFamily>(&mut self, family: Family) {
            let mut empty = F::Snapshot::default();
            let json = serde_json::to_value(&empty).unwrap();
            let (expected, list) = match F::FOLD {
                Fold::Latest => (Value::Null, None),
                Fold::Upsert { list, .. } | Fold::Append { list, .. } => {
                    (json!({ list: [] }), Some(list))
                }
            };
            if json != expected {
                self.0.push(format!(
                    "{}: empty snapshot is {json}, the rule {:?} expects {expected}",
                    family.name(),
                    F::FOLD
                ));
            }
            if let Some(list) = list {
                if empty.list_mut(list).is_none() {
                    self.0.push(format!(
                        "{}: rule names list {list:?}, FoldTarget does not give it",
                        family.name()
                    ));
                }
            }
        }
    }

    #[test]
    fn every_rule_fits_its_snapshot_type() {
        let mut check = RuleFitsSnapshot(Vec::new());
        visit_families(&mut check);
        assert!(check.0.is_empty(), "{:#?}", check.0);
    }

    #[test]
    fn fold_rules_are_the_rules_described() {
        for family in Family::ALL {
            assert_eq!(
                family.fold_rule(),
                family.fold().describe(),
                "{}",
                family.name()
            );
        }
        assert!(
            Family::SessionsState
                .fold_rule()
                .contains("an event with status `closed` removes the entry instead"),
            "{}",
            Family::SessionsState.fold_rule()
        );
    }
}
