//! The breaking-change check: compares `generated/schema/` at a git ref with the working
//! tree's, structurally and direction-aware, behind `cargo xtask breaking --against <ref>`.
//!
//! # What is compared
//!
//! Per direction (`client-to-server.schema.json`, `server-to-client.schema.json`), each
//! message type (the `oneOf` branch whose `type` const is X) is walked in parallel on both
//! sides, `$ref`s resolved into `$defs`. Per topic family (`topics/<family>.schema.json`) the
//! payloads are walked in the direction they travel: `$defs/event` twice, as the publish
//! payload (client→server) and as the event payload (server→client), `$defs/snapshot` as
//! server→client, and `$defs/topic` both ways (clients send topics, the server echoes them).
//! The direction schemas' `allOf` `if`/`then` payload bindings are generated from the same
//! families and are not walked again; `transcript.schema.json` is the conformance harness's
//! file format, no wire type, and is not compared.
//!
//! Each change has a stable rule id ([`Rule`]), a location (direction, message type or family,
//! JSON pointer relative to it, printed `server-to-client error#/properties/data`) and a
//! verdict from [`effect`]: whether the change *narrows* (some value the old schema accepted is
//! now rejected) or *widens* (some value the new schema accepts was rejected), its direction,
//! and whether it adds or removes a named member.
//!
//! | direction        | narrows                                   | widens                                        |
//! |------------------|-------------------------------------------|-----------------------------------------------|
//! | client-to-server | breaking (old clients' frames rejected)   | safe; a new member of a closed set: warning (strict: breaking) |
//! | server-to-client | safe; a removed name: warning (strict: breaking) | breaking (old clients reject the frame) |
//!
//! Closed sets are message types, families, enum values and union variants (an exhaustive
//! `switch` over them misses the new one); names are those and fields ([`Rule::member`]). A
//! new family is safe server→client: the server sends a topic's frames only to connections
//! that subscribed to it, which old clients cannot do. `PATTERN_CHANGED`, `FORMAT_CHANGED` and
//! `TYPE_CHANGED` narrow and widen at once, so they break both directions. Removing a field
//! narrows only if the object is closed (`additionalProperties: false`), and widens if the
//! field was required; adding an optional field widens only if the object was closed. Union
//! branches are paired across versions by their `type` const, else their `$ref` name, else
//! their `type`; a plain schema facing a union pairs with its branch (so `T` → `T | null` is
//! `VARIANT_ADDED`), and `UNION_CHANGED` (narrowing and widening, or only narrowing when the
//! plain schema was `{}`) is left for a union that has no such branch. Descriptions and other
//! annotations are not changes.
//!
//! Known limits: keywords are compared one by one, not as set inclusion (a `pattern` change is
//! never proved compatible; a `type` dropped in favour of an equivalent `anyOf` reads as a type
//! change); `allOf`, `not`, `if`/`then` below the root are not walked.
//!
//! # Why widening a server→client message breaks even at the wire level
//!
//! oasdiff and buf can treat a new response field or enum value as compatible because their
//! clients ignore what they do not know. rtbus's clients do not: every object in the schemas
//! is closed (`additionalProperties: false`), the rule `frame.malformed` makes an unknown
//! `type` or field a `bad_request`, and the generated decoder `decodeServerMessage` (which
//! `@rtbus/client` runs on every frame) rejects an unknown field, type or enum value and drops
//! the frame. No rule tells a client to ignore unknown fields, so an old client loses any frame
//! that uses a widened shape. Widening server→client output is therefore `breaking` at every
//! level; the way to ship it is a new protocol version. `warning` is kept for what only breaks
//! code built on the generated types (a new member in an exhaustive match, a removed name).
//!
//! # Levels and exit codes
//!
//! `--level wire` (default) fails on changes that break a deployed peer on the wire;
//! `--level strict` also on those that break code compiled against the generated types (the
//! `warning`s of `wire`). Exit 0: no unallowed breaking change; 1: some; 2: a usage or input
//! error (a bad ref, a missing or malformed schema, a bad or stale allow file).
//!
//! # Accepting a deliberate break
//!
//! - A new protocol version: when the version in the direction schemas' `$id`
//!   (`https://rtbus.dev/schema/v<N>/…`, which names the subprotocol `rtbus.v<N>`) differs
//!   between the two sides, the report says "new protocol version v1 → v2: all breaks
//!   accepted" and every change is reported as accepted.
//! - An allow entry, in `breaking.toml` at the repository root (or `--allow FILE`):
//!
//!   ```toml
//!   [[allow]]
//!   rule = "FIELD_REMOVED"                              # a rule id
//!   at = "subscribe#/properties/data/properties/hint"   # "<subject>" or "<subject>#<pointer>"
//!   direction = "client-to-server"                      # optional
//!   reason = "hint was never sent by any released client"
//!   ```
//!
//!   `at` matches a change whose subject (message type or family) equals it, or whose
//!   `subject#pointer` equals it or lies below it. An allowed change is printed as allowed, with
//!   the reason. An entry that matches no change is an error: stale allows must not accumulate.
//!
//! # Running it
//!
//! `cargo xtask breaking --against <ref> [--level wire|strict] [--allow FILE] [--format
//! text|json] [--repo DIR]` reads the ref's files with `git show <ref>:generated/schema/…` (no checkout) and
//! the working tree's from disk. CI runs it on pull requests against
//! `git merge-base origin/<base> HEAD`.

mod allow;
mod diff;
mod rules;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

pub use allow::{Allow, AllowFile};
pub use rules::{Direction, Effect, Level, Member, Rule, Verdict, effect};

use diff::{Doc, Walker, escape};

/// The file of each direction, relative to `generated/schema/`.
pub const DIRECTION_FILES: &[(Direction, &str)] = &[
    (Direction::ClientToServer, "client-to-server.schema.json"),
    (Direction::ServerToClient, "server-to-client.schema.json"),
];

/// The directory of the family schemas, relative to `generated/schema/`.
pub const FAMILY_DIR: &str = "topics/";

/// Which side of the comparison a file came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// The schema at a git ref.
    Ref(String),
    /// The working tree.
    WorkingTree,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Side::Ref(name) => write!(f, "at {name}"),
            Side::WorkingTree => f.write_str("in the working tree"),
        }
    }
}

/// Why the check could not run.
#[derive(Debug, thiserror::Error)]
pub enum BreakingError {
    /// A file the check needs is absent.
    #[error(
        "generated/schema/{file} is missing {side}; expected the schema the generator writes there"
    )]
    MissingFile {
        /// Which side.
        side: String,
        /// The file, relative to `generated/schema/`.
        file: String,
    },
    /// A file is not JSON.
    #[error("generated/schema/{file} {side} is not JSON: {source}")]
    Json {
        /// Which side.
        side: String,
        /// The file.
        file: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A schema does not have a shape the check understands.
    #[error("generated/schema/{file} {side}, at {pointer:?}: expected {expected}")]
    Shape {
        /// Which side.
        side: String,
        /// The file.
        file: String,
        /// Where in it (relative to the message type or family for nodes below one).
        pointer: String,
        /// What was expected.
        expected: String,
    },
    /// The allow file is not valid.
    #[error("{path}: {problem}")]
    Allow {
        /// The allow file.
        path: String,
        /// What is wrong, and where.
        problem: String,
    },
    /// Allow entries that match no change.
    #[error("{path}: {} allow entr{} no change (remove them: stale allows must not accumulate):\n{}", entries.len(), if entries.len() == 1 { "y matches" } else { "ies match" }, entries.join("\n"))]
    StaleAllows {
        /// The allow file.
        path: String,
        /// Each unmatched entry, described.
        entries: Vec<String>,
    },
}

/// The files of one side: paths relative to `generated/schema/`, and their text.
#[derive(Debug, Clone)]
pub struct SchemaSet {
    side: Side,
    files: BTreeMap<String, String>,
}

impl SchemaSet {
    /// A side's files (paths relative to `generated/schema/`, e.g.
    /// `topics/sessions.state.schema.json`).
    pub fn new(side: Side, files: BTreeMap<String, String>) -> Self {
        SchemaSet { side, files }
    }

    /// Whether `relative` (below `generated/schema/`) is a file the check reads.
    pub fn wanted(relative: &str) -> bool {
        DIRECTION_FILES.iter().any(|(_, f)| *f == relative)
            || relative
                .strip_prefix(FAMILY_DIR)
                .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".schema.json"))
    }

    fn parse(&self, file: &str) -> Result<Value, BreakingError> {
        let text = self
            .files
            .get(file)
            .ok_or_else(|| BreakingError::MissingFile {
                side: self.side.to_string(),
                file: file.to_owned(),
            })?;
        serde_json::from_str(text).map_err(|source| BreakingError::Json {
            side: self.side.to_string(),
            file: file.to_owned(),
            source,
        })
    }

    fn families(&self) -> BTreeMap<String, &str> {
        self.files
            .keys()
            .filter_map(|path| {
                let name = path
                    .strip_prefix(FAMILY_DIR)?
                    .strip_suffix(".schema.json")?;
                (!name.contains('/')).then(|| (name.to_owned(), path.as_str()))
            })
            .collect()
    }
}

/// One change between the two sides.
#[derive(Debug, Clone)]
pub struct Change {
    /// The rule id.
    pub rule: Rule,
    /// Which way the affected messages travel.
    pub direction: Direction,
    /// The message type (e.g. `subscribe`) or topic family (e.g. `sessions.state`).
    pub subject: String,
    /// The JSON pointer of the changed node, relative to the message type's `oneOf` branch or
    /// to the family file.
    pub pointer: String,
    /// What changed, for a person.
    pub detail: String,
    /// What the change does to a deployed peer.
    pub effect: Effect,
    /// The verdict at the level of the report.
    pub verdict: Verdict,
    /// The reason of the allow entry that accepts it, if any.
    pub allowed: Option<String>,
}

impl Change {
    /// `subject#pointer` (or the subject alone, for a whole message type or family), as
    /// allow entries name it.
    pub fn at(&self) -> String {
        if self.pointer.is_empty() {
            self.subject.clone()
        } else {
            format!("{}#{}", self.subject, self.pointer)
        }
    }
}

/// The result of a comparison.
#[derive(Debug, Clone)]
pub struct Report {
    /// The level the verdicts are for.
    pub level: Level,
    /// The protocol versions of the two sides when they differ: every break is accepted.
    pub version_bump: Option<(u64, u64)>,
    /// Every change, in a stable order.
    pub changes: Vec<Change>,
}

impl Report {
    /// The changes that fail the check: breaking, not allowed, no version bump.
    pub fn failures(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(move |c| {
            c.verdict == Verdict::Breaking && c.allowed.is_none() && self.version_bump.is_none()
        })
    }

    /// Whether the check passes.
    pub fn passes(&self) -> bool {
        self.failures().next().is_none()
    }

    /// The machine-readable report: `level`, `version_bump`, `passes` and `changes` (each with
    /// `rule`, `direction`, `subject`, `pointer`, `detail`, `effect`, `verdict`, `allowed`).
    pub fn to_json(&self) -> String {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                serde_json::json!({
                    "rule": c.rule.id(),
                    "direction": c.direction.name(),
                    "subject": c.subject,
                    "pointer": c.pointer,
                    "detail": c.detail,
                    "effect": c.effect.name(),
                    "verdict": c.verdict.name(),
                    "allowed": c.allowed,
                })
            })
            .collect();
        let value = serde_json::json!({
            "level": self.level.name(),
            "version_bump": self.version_bump,
            "passes": self.passes(),
            "changes": changes,
        });
        format!("{value:#}")
    }

    /// The text report: one line per change (verdict, rule id, where, detail), then a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some((old, new)) = self.version_bump {
            out.push_str(&format!(
                "new protocol version v{old} → v{new}: all breaks accepted\n"
            ));
        }
        for change in &self.changes {
            let mut verdict = change.verdict.name().to_owned();
            if change.verdict != Verdict::Safe
                && (change.allowed.is_some() || self.version_bump.is_some())
            {
                verdict = format!("{verdict} (accepted)");
            }
            out.push_str(&format!(
                "{verdict:<20} {:<28} {} {}  {}",
                change.rule.id(),
                change.direction.name(),
                change.at(),
                change.detail
            ));
            if let Some(reason) = &change.allowed {
                out.push_str(&format!("  [allowed: {reason}]"));
            }
            out.push('\n');
        }
        let count = |v: Verdict| self.changes.iter().filter(|c| c.verdict == v).count();
        let accepted = self
            .changes
            .iter()
            .filter(|c| {
                c.verdict != Verdict::Safe && (c.allowed.is_some() || self.version_bump.is_some())
            })
            .count();
        out.push_str(&format!(
            "{} change(s) at level {}: {} breaking, {} warning, {} safe; {} accepted; {}\n",
            self.changes.len(),
            self.level.name(),
            count(Verdict::Breaking),
            count(Verdict::Warning),
            count(Verdict::Safe),
            accepted,
            if self.passes() { "ok" } else { "FAILED" }
        ));
        out
    }
}

/// Compares `old` (the ref) with `new` (the working tree) at `level`, then applies `allow`
/// (an error if an entry matches nothing).
pub fn check(
    old: &SchemaSet,
    new: &SchemaSet,
    level: Level,
    allow: Option<&AllowFile>,
) -> Result<Report, BreakingError> {
    let mut report = compare(old, new, level)?;
    if let Some(allow) = allow {
        allow.apply(&mut report.changes)?;
    }
    Ok(report)
}

/// Compares `old` with `new` at `level`, without allow entries.
pub fn compare(old: &SchemaSet, new: &SchemaSet, level: Level) -> Result<Report, BreakingError> {
    let mut changes = Vec::new();
    let mut versions = Vec::new();
    for (direction, file) in DIRECTION_FILES {
        let (a, b) = (old.parse(file)?, new.parse(file)?);
        versions.push((version(&a), version(&b)));
        let old_doc = Doc {
            side: &old.side,
            file,
            root: &a,
        };
        let new_doc = Doc {
            side: &new.side,
            file,
            root: &b,
        };
        compare_direction(*direction, old_doc, new_doc, level, &mut changes)?;
    }
    let old_families = old.families();
    let new_families = new.families();
    for (name, file) in &old_families {
        let a = old.parse(file)?;
        let Some(new_file) = new_families.get(name) else {
            for direction in [Direction::ClientToServer, Direction::ServerToClient] {
                changes.push(change(
                    Rule::FamilyRemoved,
                    direction,
                    name,
                    "",
                    format!("family `{name}` removed"),
                    true,
                    false,
                    level,
                ));
            }
            continue;
        };
        let b = new.parse(new_file)?;
        let old_doc = Doc {
            side: &old.side,
            file,
            root: &a,
        };
        let new_doc = Doc {
            side: &new.side,
            file: new_file,
            root: &b,
        };
        compare_family(name, old_doc, new_doc, level, &mut changes)?;
    }
    for name in new_families
        .keys()
        .filter(|n| !old_families.contains_key(*n))
    {
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            // Old clients do not subscribe to a family they do not know, so only the
            // client→server side (the topics a server accepts) widens.
            let widens = direction == Direction::ClientToServer;
            changes.push(change(
                Rule::FamilyAdded,
                direction,
                name,
                "",
                format!("family `{name}` added"),
                false,
                widens,
                level,
            ));
        }
    }
    let version_bump = versions.into_iter().find_map(|pair| match pair {
        (Some(a), Some(b)) if a != b => Some((a, b)),
        _ => None,
    });
    changes.sort_by(|a, b| {
        (a.direction, &a.subject, &a.pointer, a.rule, &a.detail).cmp(&(
            b.direction,
            &b.subject,
            &b.pointer,
            b.rule,
            &b.detail,
        ))
    });
    changes.dedup_by(|a, b| {
        (a.direction, &a.subject, &a.pointer, a.rule, &a.detail)
            == (b.direction, &b.subject, &b.pointer, b.rule, &b.detail)
    });
    Ok(Report {
        level,
        version_bump,
        changes,
    })
}

#[allow(clippy::too_many_arguments)]
fn change(
    rule: Rule,
    direction: Direction,
    subject: &str,
    pointer: &str,
    detail: String,
    narrows: bool,
    widens: bool,
    level: Level,
) -> Change {
    let effect = effect(rule, direction, narrows, widens);
    Change {
        rule,
        direction,
        subject: subject.to_owned(),
        pointer: pointer.to_owned(),
        detail,
        effect,
        verdict: effect.verdict(level),
        allowed: None,
    }
}

/// The protocol version in a schema's `$id` (`…/schema/v<N>/…`).
fn version(schema: &Value) -> Option<u64> {
    let id = schema.get("$id")?.as_str()?;
    id.split('/')
        .find_map(|segment| segment.strip_prefix('v')?.parse().ok())
}

/// The message types of a direction schema: each `oneOf` branch by its `type` const.
fn message_types<'v>(doc: Doc<'v>) -> Result<BTreeMap<String, &'v Value>, BreakingError> {
    let branches = doc
        .root
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or_else(|| doc.shape("/oneOf", "a `oneOf` array with one branch per message type"))?;
    let mut out = BTreeMap::new();
    for (index, branch) in branches.iter().enumerate() {
        let at = format!("/oneOf/{index}");
        let tag = branch
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                doc.shape(
                    &at,
                    "a message type branch with a string `properties.type.const`",
                )
            })?;
        if out.insert(tag.to_owned(), branch).is_some() {
            return Err(doc.shape(
                &at,
                format!("one branch per message type, not a second {tag:?}"),
            ));
        }
    }
    Ok(out)
}

fn compare_direction(
    direction: Direction,
    old: Doc<'_>,
    new: Doc<'_>,
    level: Level,
    changes: &mut Vec<Change>,
) -> Result<(), BreakingError> {
    let a = message_types(old)?;
    let b = message_types(new)?;
    for (tag, old_branch) in &a {
        match b.get(tag) {
            None => changes.push(change(
                Rule::MessageTypeRemoved,
                direction,
                tag,
                "",
                format!("message type `{tag}` removed"),
                true,
                false,
                level,
            )),
            Some(new_branch) => {
                let mut walker = Walker::new(old, new);
                walker.compare(old_branch, new_branch, "")?;
                push_found(walker, direction, tag, level, changes);
            }
        }
    }
    for tag in b.keys().filter(|t| !a.contains_key(*t)) {
        changes.push(change(
            Rule::MessageTypeAdded,
            direction,
            tag,
            "",
            format!("message type `{tag}` added"),
            false,
            true,
            level,
        ));
    }
    Ok(())
}

fn compare_family(
    name: &str,
    old: Doc<'_>,
    new: Doc<'_>,
    level: Level,
    changes: &mut Vec<Change>,
) -> Result<(), BreakingError> {
    const PARTS: &[(&str, &[Direction])] = &[
        (
            "event",
            &[Direction::ClientToServer, Direction::ServerToClient],
        ),
        ("snapshot", &[Direction::ServerToClient]),
        (
            "topic",
            &[Direction::ClientToServer, Direction::ServerToClient],
        ),
    ];
    for (part, directions) in PARTS {
        let def = |doc: Doc<'_>| -> Result<Value, BreakingError> {
            doc.root
                .get("$defs")
                .and_then(|d| d.get(*part))
                .cloned()
                .ok_or_else(|| {
                    doc.shape(
                        &format!("/$defs/{part}"),
                        format!("the family's `{part}` schema"),
                    )
                })
        };
        let (a, b) = (def(old)?, def(new)?);
        for direction in *directions {
            let mut walker = Walker::new(old, new);
            walker.compare(&a, &b, &format!("/$defs/{}", escape(part)))?;
            push_found(walker, *direction, name, level, changes);
        }
    }
    Ok(())
}

fn push_found(
    walker: Walker<'_>,
    direction: Direction,
    subject: &str,
    level: Level,
    changes: &mut Vec<Change>,
) {
    for found in walker.found {
        changes.push(change(
            found.rule,
            direction,
            subject,
            &found.pointer,
            found.detail,
            found.narrows,
            found.widens,
            level,
        ));
    }
}
