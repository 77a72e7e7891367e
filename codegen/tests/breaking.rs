//! The breaking-change check on a corpus of schema changes: each test mutates the real
//! `generated/schema/` (or writes a small schema) and states every change expected, with its
//! verdict at the `wire` and the `strict` level.

use std::collections::BTreeMap;
use std::path::Path;

use rtbus_codegen::breaking::{self, AllowFile, BreakingError, Level, SchemaSet, Side, Verdict};
use serde_json::{Value, json};

/// Schema files by path relative to `generated/schema/`.
type Files = BTreeMap<String, Value>;

const C2S: &str = "client-to-server.schema.json";
const S2C: &str = "server-to-client.schema.json";

fn real() -> Files {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../generated/schema");
    let mut files = Files::new();
    for sub in ["", "topics"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("generated/schema is readable") {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 name")
                .to_owned();
            let relative = if sub.is_empty() {
                name
            } else {
                format!("{sub}/{name}")
            };
            if SchemaSet::wanted(&relative) {
                let text = std::fs::read_to_string(&path).expect("a readable schema");
                files.insert(
                    relative,
                    serde_json::from_str(&text).expect("a JSON schema"),
                );
            }
        }
    }
    assert!(
        files.len() >= 3,
        "expected the direction and family schemas, got {:?}",
        files.keys()
    );
    files
}

fn set(side: Side, files: &Files) -> SchemaSet {
    SchemaSet::new(
        side,
        files
            .iter()
            .map(|(k, v)| (k.clone(), format!("{v:#}")))
            .collect(),
    )
}

/// The value at `pointer` in `file`, to edit.
fn at<'a>(files: &'a mut Files, file: &str, pointer: &str) -> &'a mut Value {
    files
        .get_mut(file)
        .and_then(|schema| schema.pointer_mut(pointer))
        .unwrap_or_else(|| panic!("{file} has no {pointer}"))
}

fn object<'a>(
    files: &'a mut Files,
    file: &str,
    pointer: &str,
) -> &'a mut serde_json::Map<String, Value> {
    at(files, file, pointer)
        .as_object_mut()
        .unwrap_or_else(|| panic!("{file}{pointer} is no object"))
}

fn array<'a>(files: &'a mut Files, file: &str, pointer: &str) -> &'a mut Vec<Value> {
    at(files, file, pointer)
        .as_array_mut()
        .unwrap_or_else(|| panic!("{file}{pointer} is no array"))
}

/// Removes the message type `tag` from `file`.
fn remove_message(files: &mut Files, file: &str, tag: &str) {
    let branches = array(files, file, "/oneOf");
    let before = branches.len();
    branches.retain(|b| b.pointer("/properties/type/const") != Some(&json!(tag)));
    assert_eq!(branches.len(), before - 1, "{file} has one {tag}");
}

/// Adds a message type `tag` to `file`, a copy of `like`.
fn add_message(files: &mut Files, file: &str, like: &str, tag: &str) {
    let branches = array(files, file, "/oneOf");
    let mut copy = branches
        .iter()
        .find(|b| b.pointer("/properties/type/const") == Some(&json!(like)))
        .cloned()
        .unwrap_or_else(|| panic!("{file} has no {like}"));
    *copy
        .pointer_mut("/properties/type/const")
        .expect("a type const") = json!(tag);
    branches.push(copy);
}

fn required_names<'a>(files: &'a mut Files, file: &str, def: &str) -> &'a mut Vec<Value> {
    array(files, file, &format!("/$defs/{def}/required"))
}

type Row = (String, String, String, String, String);

/// Every change from `old` to `new`: (rule, direction, at, verdict at wire, verdict at strict).
fn changes(old: &Files, new: &Files) -> Vec<Row> {
    let (a, b) = (
        set(Side::Ref("old".into()), old),
        set(Side::WorkingTree, new),
    );
    let wire = breaking::compare(&a, &b, Level::Wire).expect("the comparison runs");
    let strict = breaking::compare(&a, &b, Level::Strict).expect("the comparison runs");
    assert_eq!(wire.changes.len(), strict.changes.len());
    wire.changes
        .iter()
        .zip(&strict.changes)
        .map(|(w, s)| {
            assert_eq!((w.rule, w.direction, w.at()), (s.rule, s.direction, s.at()));
            (
                w.rule.id().to_owned(),
                w.direction.name().to_owned(),
                w.at(),
                w.verdict.name().to_owned(),
                s.verdict.name().to_owned(),
            )
        })
        .collect()
}

fn expect(old: &Files, new: &Files, expected: &[(&str, &str, &str, &str, &str)]) {
    let mut got = changes(old, new);
    got.sort();
    let mut want: Vec<Row> = expected
        .iter()
        .map(|(r, d, a, w, s)| {
            (
                (*r).into(),
                (*d).into(),
                (*a).into(),
                (*w).into(),
                (*s).into(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "\n got: {got:#?}\nwant: {want:#?}");
}

/// One test per change. `new` mutates the working tree's side; `old` mutates the ref's (to
/// test the reverse of a mutation).
macro_rules! case {
    ($name:ident, $side:ident, |$files:ident| $edit:block, [$($row:expr),* $(,)?]) => {
        #[test]
        fn $name() {
            let base = real();
            let mut mutated = base.clone();
            {
                let $files = &mut mutated;
                $edit
            }
            assert_ne!(base, mutated, "the mutation changes the schema");
            let (old, new) = case!(@order $side, base, mutated);
            expect(&old, &new, &[$($row),*]);
        }
    };
    (@order new, $base:ident, $mutated:ident) => { ($base, $mutated) };
    (@order old, $base:ident, $mutated:ident) => { ($mutated, $base) };
}

const CS: &str = "client-to-server";
const SC: &str = "server-to-client";
const B: &str = "breaking";
const W: &str = "warning";
const S: &str = "safe";

// --- message types -------------------------------------------------------------------------

case!(
    c2s_message_type_removed,
    new,
    |f| { remove_message(f, C2S, "ping") },
    [("MESSAGE_TYPE_REMOVED", CS, "ping", B, B),]
);
case!(
    c2s_message_type_added,
    new,
    |f| { add_message(f, C2S, "ping", "hello") },
    [("MESSAGE_TYPE_ADDED", CS, "hello", W, B),]
);
case!(
    s2c_message_type_added,
    new,
    |f| { add_message(f, S2C, "pong", "notice") },
    [("MESSAGE_TYPE_ADDED", SC, "notice", B, B),]
);
case!(
    s2c_message_type_removed,
    new,
    |f| { remove_message(f, S2C, "pong") },
    [("MESSAGE_TYPE_REMOVED", SC, "pong", W, B),]
);

// --- fields --------------------------------------------------------------------------------

case!(
    c2s_required_field_added,
    new,
    |f| {
        object(f, C2S, "/$defs/AuthData/properties")
            .insert("scope".into(), json!({"type": "string"}));
        required_names(f, C2S, "AuthData").push(json!("scope"));
    },
    [(
        "REQUIRED_FIELD_ADDED",
        CS,
        "auth#/properties/data/properties/scope",
        B,
        B
    ),]
);
case!(
    c2s_optional_field_added,
    new,
    |f| {
        object(f, C2S, "/$defs/AuthData/properties")
            .insert("scope".into(), json!({"type": "string"}));
    },
    [(
        "FIELD_ADDED",
        CS,
        "auth#/properties/data/properties/scope",
        S,
        S
    ),]
);
case!(
    c2s_optional_field_removed,
    new,
    |f| {
        object(f, C2S, "/$defs/SubscriptionRequest/properties").remove("snapshot");
    },
    [(
        "FIELD_REMOVED",
        CS,
        "subscribe#/properties/data/properties/topics/items/properties/snapshot",
        B,
        B
    ),]
);
case!(
    c2s_field_now_required,
    new,
    |f| {
        required_names(f, C2S, "SubscriptionRequest").push(json!("snapshot"));
    },
    [(
        "FIELD_NOW_REQUIRED",
        CS,
        "subscribe#/properties/data/properties/topics/items/properties/snapshot",
        B,
        B
    ),]
);
case!(
    c2s_field_now_optional,
    new,
    |f| {
        required_names(f, C2S, "AuthData").clear();
    },
    [(
        "FIELD_NOW_OPTIONAL",
        CS,
        "auth#/properties/data/properties/token",
        S,
        S
    ),]
);
case!(
    s2c_field_now_optional,
    new,
    |f| {
        required_names(f, S2C, "ErrorData").retain(|n| n != "message");
    },
    [(
        "FIELD_NOW_OPTIONAL",
        SC,
        "error#/properties/data/properties/message",
        B,
        B
    ),]
);
case!(
    s2c_field_now_required,
    new,
    |f| {
        required_names(f, S2C, "ErrorData").push(json!("topic"));
    },
    [(
        "FIELD_NOW_REQUIRED",
        SC,
        "error#/properties/data/properties/topic",
        S,
        S
    ),]
);
case!(
    s2c_optional_field_removed,
    new,
    |f| {
        object(f, S2C, "/$defs/ErrorData/properties").remove("topic");
    },
    [(
        "FIELD_REMOVED",
        SC,
        "error#/properties/data/properties/topic",
        W,
        B
    ),]
);
case!(
    s2c_required_field_removed,
    new,
    |f| {
        object(f, S2C, "/$defs/ErrorData/properties").remove("message");
        required_names(f, S2C, "ErrorData").retain(|n| n != "message");
    },
    [(
        "REQUIRED_FIELD_REMOVED",
        SC,
        "error#/properties/data/properties/message",
        B,
        B
    ),]
);
case!(
    s2c_optional_field_added,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties")
            .insert("expiresAt".into(), json!({"type": "string"}));
    },
    [(
        "FIELD_ADDED",
        SC,
        "authenticated#/properties/data/properties/expiresAt",
        B,
        B
    ),]
);

// --- types, values, bounds, patterns -------------------------------------------------------

case!(
    c2s_type_widened,
    new,
    |f| {
        *at(f, C2S, "/$defs/AuthData/properties/token/type") = json!(["string", "null"]);
    },
    [(
        "TYPE_WIDENED",
        CS,
        "auth#/properties/data/properties/token",
        S,
        S
    ),]
);
case!(
    c2s_type_narrowed,
    old,
    |f| {
        *at(f, C2S, "/$defs/AuthData/properties/token/type") = json!(["string", "null"]);
    },
    [(
        "TYPE_NARROWED",
        CS,
        "auth#/properties/data/properties/token",
        B,
        B
    ),]
);
case!(
    s2c_type_widened,
    new,
    |f| {
        *at(f, S2C, "/$defs/AuthenticatedData/properties/principal/type") =
            json!(["string", "null"]);
    },
    [(
        "TYPE_WIDENED",
        SC,
        "authenticated#/properties/data/properties/principal",
        B,
        B
    ),]
);
case!(
    s2c_type_changed,
    new,
    |f| {
        *at(f, S2C, "/$defs/AuthenticatedData/properties/principal/type") = json!("integer");
    },
    [(
        "TYPE_CHANGED",
        SC,
        "authenticated#/properties/data/properties/principal",
        B,
        B
    ),]
);
case!(
    s2c_enum_value_added,
    new,
    |f| {
        array(f, S2C, "/$defs/Start/oneOf").push(json!({"const": "paused", "type": "string"}));
    },
    [(
        "ENUM_VALUE_ADDED",
        SC,
        "subscribed#/properties/data/properties/topics/items/properties/start",
        B,
        B
    ),]
);
case!(
    s2c_enum_value_removed,
    new,
    |f| {
        array(f, S2C, "/$defs/Start/oneOf").retain(|b| b.get("const") != Some(&json!("live")));
    },
    [(
        "ENUM_VALUE_REMOVED",
        SC,
        "subscribed#/properties/data/properties/topics/items/properties/start",
        W,
        B
    ),]
);
case!(
    c2s_bound_tightened,
    new,
    |f| {
        *at(f, C2S, "/$defs/RequestId/maxLength") = json!(32);
    },
    [
        ("BOUND_TIGHTENED", CS, "auth#/properties/id", B, B),
        ("BOUND_TIGHTENED", CS, "ping#/properties/id", B, B),
        ("BOUND_TIGHTENED", CS, "publish#/properties/id", B, B),
        ("BOUND_TIGHTENED", CS, "subscribe#/properties/id", B, B),
        ("BOUND_TIGHTENED", CS, "unsubscribe#/properties/id", B, B),
    ]
);
case!(
    s2c_bound_tightened,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties/roles")
            .insert("maxItems".into(), json!(8));
    },
    [(
        "BOUND_TIGHTENED",
        SC,
        "authenticated#/properties/data/properties/roles",
        S,
        S
    ),]
);
case!(
    c2s_pattern_changed,
    new,
    |f| {
        *at(f, C2S, "/$defs/Epoch/pattern") = json!("^[A-Za-z0-9]{1,64}$");
    },
    [(
        "PATTERN_CHANGED",
        CS,
        "subscribe#/properties/data/properties/topics/items/properties/epoch",
        B,
        B
    ),]
);
case!(
    c2s_pattern_removed,
    new,
    |f| {
        object(f, C2S, "/$defs/Epoch").remove("pattern");
    },
    [(
        "PATTERN_REMOVED",
        CS,
        "subscribe#/properties/data/properties/topics/items/properties/epoch",
        S,
        S
    ),]
);
case!(
    s2c_pattern_added,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties/principal")
            .insert("pattern".into(), json!("^[a-z]+$"));
    },
    [(
        "PATTERN_ADDED",
        SC,
        "authenticated#/properties/data/properties/principal",
        S,
        S
    ),]
);
case!(
    s2c_additional_properties_opened,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData").remove("additionalProperties");
    },
    [(
        "ADDITIONAL_PROPERTIES_OPENED",
        SC,
        "authenticated#/properties/data/additionalProperties",
        B,
        B
    ),]
);
case!(
    c2s_additional_properties_opened,
    new,
    |f| {
        object(f, C2S, "/$defs/AuthData").remove("additionalProperties");
    },
    [(
        "ADDITIONAL_PROPERTIES_OPENED",
        CS,
        "auth#/properties/data/additionalProperties",
        S,
        S
    ),]
);
case!(
    c2s_additional_properties_closed,
    old,
    |f| {
        object(f, C2S, "/$defs/AuthData").remove("additionalProperties");
    },
    [(
        "ADDITIONAL_PROPERTIES_CLOSED",
        CS,
        "auth#/properties/data/additionalProperties",
        B,
        B
    ),]
);
case!(
    c2s_dependency_removed,
    new,
    |f| {
        object(f, C2S, "/$defs/SubscriptionRequest").remove("dependentRequired");
    },
    [
        (
            "DEPENDENCY_REMOVED",
            CS,
            "subscribe#/properties/data/properties/topics/items/dependentRequired",
            S,
            S
        ),
        (
            "DEPENDENCY_REMOVED",
            CS,
            "subscribe#/properties/data/properties/topics/items/dependentRequired",
            S,
            S
        ),
    ]
);
case!(
    s2c_items_schema_lifted,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties/roles").remove("items");
    },
    [(
        "SUBSCHEMA_REMOVED",
        SC,
        "authenticated#/properties/data/properties/roles/items",
        B,
        B
    ),]
);
case!(
    s2c_values_restricted,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties/principal")
            .insert("enum".into(), json!(["alice"]));
    },
    [(
        "VALUES_RESTRICTED",
        SC,
        "authenticated#/properties/data/properties/principal",
        S,
        S
    ),]
);

// --- families (payloads follow their direction) --------------------------------------------

case!(
    family_event_enum_value_added,
    new,
    |f| {
        array(
            f,
            "topics/sessions.activity.schema.json",
            "/$defs/ActivityKind/oneOf",
        )
        .push(json!({"const": "image", "type": "string"}));
    },
    [
        (
            "ENUM_VALUE_ADDED",
            CS,
            "sessions.activity#/$defs/event/properties/kind",
            W,
            B
        ),
        (
            "ENUM_VALUE_ADDED",
            SC,
            "sessions.activity#/$defs/event/properties/kind",
            B,
            B
        ),
        (
            "ENUM_VALUE_ADDED",
            SC,
            "sessions.activity#/$defs/snapshot/properties/entries/items/properties/kind",
            B,
            B
        ),
    ]
);
case!(
    family_bound_loosened,
    new,
    |f| {
        *at(
            f,
            "topics/drives.pressure.schema.json",
            "/$defs/Ratio/maximum",
        ) = json!(100);
    },
    [
        (
            "BOUND_LOOSENED",
            CS,
            "drives.pressure#/$defs/event/properties/pressure",
            S,
            S
        ),
        (
            "BOUND_LOOSENED",
            CS,
            "drives.pressure#/$defs/event/properties/threshold",
            S,
            S
        ),
        (
            "BOUND_LOOSENED",
            SC,
            "drives.pressure#/$defs/event/properties/pressure",
            B,
            B
        ),
        (
            "BOUND_LOOSENED",
            SC,
            "drives.pressure#/$defs/event/properties/threshold",
            B,
            B
        ),
        (
            "BOUND_LOOSENED",
            SC,
            "drives.pressure#/$defs/snapshot/properties/drives/items/properties/pressure",
            B,
            B
        ),
        (
            "BOUND_LOOSENED",
            SC,
            "drives.pressure#/$defs/snapshot/properties/drives/items/properties/threshold",
            B,
            B
        ),
    ]
);
case!(
    family_topic_pattern_changed,
    new,
    |f| {
        *at(
            f,
            "topics/drives.pressure.schema.json",
            "/$defs/topic/pattern",
        ) = json!("^drives\\.load$");
    },
    [
        ("PATTERN_CHANGED", CS, "drives.pressure#/$defs/topic", B, B),
        ("PATTERN_CHANGED", SC, "drives.pressure#/$defs/topic", B, B),
    ]
);
case!(
    family_removed,
    new,
    |f| {
        assert!(f.remove("topics/terminals.state.schema.json").is_some());
    },
    [
        ("FAMILY_REMOVED", CS, "terminals.state", B, B),
        ("FAMILY_REMOVED", SC, "terminals.state", W, B),
    ]
);
case!(
    family_added,
    old,
    |f| {
        assert!(f.remove("topics/terminals.state.schema.json").is_some());
    },
    [
        ("FAMILY_ADDED", CS, "terminals.state", W, B),
        ("FAMILY_ADDED", SC, "terminals.state", S, S),
    ]
);
case!(
    recursive_def_is_walked_and_ends,
    new,
    |f| {
        *at(
            f,
            "topics/custom.schema.json",
            "/$defs/SafeJsonValue/anyOf/3/maximum",
        ) = json!(1000);
    },
    [
        ("BOUND_TIGHTENED", CS, "custom#/$defs/event/anyOf/3", B, B),
        ("BOUND_TIGHTENED", SC, "custom#/$defs/event/anyOf/3", S, S),
        (
            "BOUND_TIGHTENED",
            SC,
            "custom#/$defs/snapshot/anyOf/3",
            S,
            S
        ),
    ]
);
case!(
    union_variant_removed,
    new,
    |f| {
        array(f, "topics/custom.schema.json", "/$defs/SafeJsonValue/anyOf").remove(2);
    },
    [
        ("VARIANT_REMOVED", CS, "custom#/$defs/event/anyOf/2", B, B),
        ("VARIANT_REMOVED", SC, "custom#/$defs/event/anyOf/2", W, B),
        (
            "VARIANT_REMOVED",
            SC,
            "custom#/$defs/snapshot/anyOf/2",
            W,
            B
        ),
    ]
);

// --- whole-schema properties ---------------------------------------------------------------

#[test]
fn the_real_schema_against_itself_has_no_changes() {
    let files = real();
    assert_eq!(changes(&files, &files), Vec::<Row>::new());
}

#[test]
fn descriptions_are_not_changes() {
    let base = real();
    let mut new = base.clone();
    *at(&mut new, C2S, "/$defs/AuthData/description") = json!("Reworded.");
    assert_ne!(base, new);
    assert_eq!(changes(&base, &new), Vec::<Row>::new());
}

#[test]
fn a_new_protocol_version_accepts_every_break() {
    let base = real();
    let mut new = base.clone();
    for file in [C2S, S2C] {
        let id = at(&mut new, file, "/$id");
        *id = json!(id.as_str().expect("a string $id").replace("/v1/", "/v2/"));
    }
    remove_message(&mut new, C2S, "ping");
    let report = breaking::compare(
        &set(Side::Ref("old".into()), &base),
        &set(Side::WorkingTree, &new),
        Level::Strict,
    )
    .expect("the comparison runs");
    assert_eq!(report.version_bump, Some((1, 2)));
    assert_eq!(report.changes.len(), 1);
    assert_eq!(report.changes[0].verdict, Verdict::Breaking);
    assert!(report.passes(), "a version bump accepts the break");
    let text = report.render();
    assert!(
        text.contains("new protocol version v1 → v2: all breaks accepted"),
        "{text}"
    );
    assert!(text.contains("breaking (accepted)"), "{text}");
}

// --- allow entries -------------------------------------------------------------------------

fn ping_removed() -> (SchemaSet, SchemaSet) {
    let base = real();
    let mut new = base.clone();
    remove_message(&mut new, C2S, "ping");
    (
        set(Side::Ref("old".into()), &base),
        set(Side::WorkingTree, &new),
    )
}

fn allow(text: &str) -> Result<AllowFile, BreakingError> {
    AllowFile::parse("breaking.toml", text)
}

#[test]
fn an_allow_entry_accepts_its_break_with_the_reason() {
    let (old, new) = ping_removed();
    let file = allow("[[allow]]\nrule = \"MESSAGE_TYPE_REMOVED\"\nat = \"ping\"\ndirection = \"client-to-server\"\nreason = \"ping moved to WebSocket pings\"\n")
        .expect("a valid allow file");
    let report = breaking::check(&old, &new, Level::Wire, Some(&file)).expect("the check runs");
    assert!(report.passes());
    assert_eq!(
        report.changes[0].allowed.as_deref(),
        Some("ping moved to WebSocket pings")
    );
    assert!(
        report
            .render()
            .contains("[allowed: ping moved to WebSocket pings]")
    );
    let unallowed = breaking::check(&old, &new, Level::Wire, None).expect("the check runs");
    assert!(!unallowed.passes());
}

#[test]
fn an_allow_entry_at_a_pointer_prefix_covers_the_subtree() {
    let base = real();
    let mut new = base.clone();
    *at(&mut new, C2S, "/$defs/RequestId/maxLength") = json!(32);
    let file =
        allow("[[allow]]\nrule = \"BOUND_TIGHTENED\"\nat = \"auth#/properties\"\nreason = \"r\"\n")
            .expect("valid");
    let report = breaking::check(
        &set(Side::Ref("o".into()), &base),
        &set(Side::WorkingTree, &new),
        Level::Wire,
        Some(&file),
    )
    .expect("the check runs");
    let allowed: Vec<String> = report
        .changes
        .iter()
        .filter(|c| c.allowed.is_some())
        .map(|c| c.at())
        .collect();
    assert_eq!(allowed, ["auth#/properties/id"]);
    assert!(
        !report.passes(),
        "the other message types' id is still a break"
    );
}

#[test]
fn a_stale_allow_entry_is_an_error() {
    let (old, new) = ping_removed();
    let file = allow("[[allow]]\nrule = \"MESSAGE_TYPE_REMOVED\"\nat = \"ping\"\nreason = \"ok\"\n\n[[allow]]\nrule = \"FIELD_REMOVED\"\nat = \"auth\"\nreason = \"long gone\"\n")
        .expect("a valid allow file");
    let err = breaking::check(&old, &new, Level::Wire, Some(&file)).expect_err("stale entry");
    let message = err.to_string();
    assert!(
        matches!(err, BreakingError::StaleAllows { ref entries, .. } if entries.len() == 1),
        "{message}"
    );
    assert!(message.contains("FIELD_REMOVED at \"auth\""), "{message}");
}

#[test]
fn a_bad_allow_file_says_what_and_where() {
    let cases = [
        (
            "[[allow]]\nrule = \"NO_SUCH_RULE\"\nat = \"ping\"\nreason = \"r\"\n",
            "entry 1: unknown rule \"NO_SUCH_RULE\"",
        ),
        (
            "[[allow]]\nrule = \"FIELD_REMOVED\"\nat = \"ping\"\n",
            "entry 1: `reason` is missing",
        ),
        (
            "[[allow]]\nrule = \"FIELD_REMOVED\"\nat = \"ping\"\nreason = \"  \"\n",
            "entry 1: `reason` is empty",
        ),
        (
            "[[allow]]\nrule = \"FIELD_REMOVED\"\nat = \"ping\"\nreason = \"r\"\ndirection = \"up\"\n",
            "direction \"up\"",
        ),
        (
            "[[allow]]\nrule = \"FIELD_REMOVED\"\nat = \"ping\"\nreason = \"r\"\nwhy = \"x\"\n",
            "unknown key \"why\"",
        ),
        (
            "[[allow]]\nrule = 3\nat = \"ping\"\nreason = \"r\"\n",
            "`rule` must be a string",
        ),
        ("allow = 1\n", "array of tables"),
        ("[allow\n", "not TOML"),
    ];
    for (text, expected) in cases {
        let err = allow(text).expect_err(text).to_string();
        assert!(err.starts_with("breaking.toml: "), "{err}");
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

// --- bad input -----------------------------------------------------------------------------

fn compare_err(new: &Files) -> String {
    let base = real();
    breaking::compare(
        &set(Side::Ref("main".into()), &base),
        &set(Side::WorkingTree, new),
        Level::Wire,
    )
    .expect_err("bad input")
    .to_string()
}

#[test]
fn a_missing_direction_schema_is_an_error() {
    let mut new = real();
    new.remove(S2C);
    let err = compare_err(&new);
    assert_eq!(
        err,
        format!(
            "generated/schema/{S2C} is missing in the working tree; expected the schema the generator writes there"
        )
    );
}

#[test]
fn a_schema_that_is_not_json_is_an_error() {
    let base = real();
    let mut texts: BTreeMap<String, String> = base
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    texts.insert(C2S.into(), "{ not json".into());
    let err = breaking::compare(
        &set(Side::Ref("main".into()), &base),
        &SchemaSet::new(Side::WorkingTree, texts),
        Level::Wire,
    )
    .expect_err("bad JSON")
    .to_string();
    assert!(
        err.starts_with(&format!(
            "generated/schema/{C2S} in the working tree is not JSON: "
        )),
        "{err}"
    );
}

#[test]
fn a_direction_schema_without_message_types_is_an_error() {
    let mut new = real();
    new.get_mut(C2S)
        .and_then(Value::as_object_mut)
        .expect("an object")
        .remove("oneOf");
    let err = compare_err(&new);
    assert!(
        err.contains("at \"/oneOf\": expected a `oneOf` array with one branch per message type"),
        "{err}"
    );
}

#[test]
fn a_dangling_ref_is_an_error() {
    let mut new = real();
    object(&mut new, C2S, "/$defs").remove("AuthData");
    let err = compare_err(&new);
    assert!(
        err.contains("at \"/properties/data\": expected a `$defs` entry \"AuthData\""),
        "{err}"
    );
}

#[test]
fn a_foreign_ref_is_an_error() {
    let mut new = real();
    *at(&mut new, C2S, "/$defs/AuthData/properties/token") = json!({"$ref": "other.json#/x"});
    let err = compare_err(&new);
    assert!(
        err.contains("expected a `$ref` of the form \"#/$defs/<name>\""),
        "{err}"
    );
}

#[test]
fn a_family_without_its_event_schema_is_an_error() {
    let mut new = real();
    object(&mut new, "topics/drives.pressure.schema.json", "/$defs").remove("event");
    let err = compare_err(&new);
    assert!(err.contains("topics/drives.pressure.schema.json in the working tree, at \"/$defs/event\": expected the family's `event` schema"), "{err}");
}

#[test]
fn a_mistyped_required_list_is_an_error() {
    let mut new = real();
    *at(&mut new, C2S, "/$defs/AuthData/required") = json!("token");
    let err = compare_err(&new);
    assert!(
        err.contains("expected `required` to be an array of strings"),
        "{err}"
    );
}

case!(
    a_union_in_place_of_any_value_narrows,
    old,
    |f| {
        *at(f, "topics/custom.schema.json", "/$defs/event") = json!({"description": "Any JSON."});
    },
    [
        ("UNION_CHANGED", CS, "custom#/$defs/event/anyOf", B, B),
        ("UNION_CHANGED", SC, "custom#/$defs/event/anyOf", S, S),
    ]
);

// --- the remaining rules -------------------------------------------------------------------

case!(
    s2c_format_changed,
    new,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties/principal")
            .insert("format".into(), json!("email"));
    },
    [(
        "FORMAT_ADDED",
        SC,
        "authenticated#/properties/data/properties/principal",
        S,
        S
    ),]
);
case!(
    c2s_format_changed,
    new,
    |f| {
        object(f, "topics/sessions.state.schema.json", "/$defs/Timestamp")
            .insert("format".into(), json!("date"));
    },
    [
        (
            "FORMAT_CHANGED",
            CS,
            "sessions.state#/$defs/event/properties/updatedAt",
            B,
            B
        ),
        (
            "FORMAT_CHANGED",
            SC,
            "sessions.state#/$defs/event/properties/updatedAt",
            B,
            B
        ),
        (
            "FORMAT_CHANGED",
            SC,
            "sessions.state#/$defs/snapshot/properties/sessions/items/properties/updatedAt",
            B,
            B
        ),
    ]
);
case!(
    c2s_format_removed,
    new,
    |f| {
        object(f, "topics/sessions.state.schema.json", "/$defs/Timestamp").remove("format");
    },
    [
        (
            "FORMAT_REMOVED",
            CS,
            "sessions.state#/$defs/event/properties/updatedAt",
            S,
            S
        ),
        (
            "FORMAT_REMOVED",
            SC,
            "sessions.state#/$defs/event/properties/updatedAt",
            B,
            B
        ),
        (
            "FORMAT_REMOVED",
            SC,
            "sessions.state#/$defs/snapshot/properties/sessions/items/properties/updatedAt",
            B,
            B
        ),
    ]
);
case!(
    c2s_items_schema_added,
    old,
    |f| {
        object(f, C2S, "/$defs/UnsubscribeData/properties/topics").remove("items");
    },
    [(
        "SUBSCHEMA_ADDED",
        CS,
        "unsubscribe#/properties/data/properties/topics/items",
        B,
        B
    ),]
);
case!(
    s2c_values_unrestricted,
    old,
    |f| {
        object(f, S2C, "/$defs/AuthenticatedData/properties/principal")
            .insert("enum".into(), json!(["alice"]));
    },
    [(
        "VALUES_UNRESTRICTED",
        SC,
        "authenticated#/properties/data/properties/principal",
        B,
        B
    ),]
);
case!(
    union_variant_added,
    old,
    |f| {
        array(f, "topics/custom.schema.json", "/$defs/SafeJsonValue/anyOf").remove(2);
    },
    [
        ("VARIANT_ADDED", CS, "custom#/$defs/event/anyOf/2", W, B),
        ("VARIANT_ADDED", SC, "custom#/$defs/event/anyOf/2", B, B),
        ("VARIANT_ADDED", SC, "custom#/$defs/snapshot/anyOf/2", B, B),
    ]
);
case!(
    nullable_is_a_variant_added,
    new,
    |f| {
        *at(f, C2S, "/$defs/AuthData/properties/token") =
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]});
    },
    [(
        "VARIANT_ADDED",
        CS,
        "auth#/properties/data/properties/token/anyOf/1",
        W,
        B
    )]
);
case!(
    nullable_removed_is_a_variant_removed,
    old,
    |f| {
        *at(f, S2C, "/$defs/AuthenticatedData/properties/principal") =
            json!({"anyOf": [{"type": "string"}, {"type": "null"}]});
    },
    [(
        "VARIANT_REMOVED",
        SC,
        "authenticated#/properties/data/properties/principal/anyOf/1",
        W,
        B
    )]
);
case!(
    union_replaces_a_schema,
    new,
    |f| {
        *at(f, C2S, "/$defs/AuthData/properties/token") =
            json!({"anyOf": [{"type": "integer"}, {"type": "null"}]});
    },
    [(
        "UNION_CHANGED",
        CS,
        "auth#/properties/data/properties/token/anyOf",
        B,
        B
    )]
);
case!(
    c2s_dependency_added,
    new,
    |f| {
        object(f, C2S, "/$defs/SubscriptionRequest/dependentRequired")
            .insert("snapshot".into(), json!(["topic"]));
    },
    [(
        "DEPENDENCY_ADDED",
        CS,
        "subscribe#/properties/data/properties/topics/items/dependentRequired",
        B,
        B
    ),]
);
case!(
    c2s_type_changed,
    new,
    |f| {
        *at(f, C2S, "/$defs/AuthData/properties/token/type") = json!("integer");
    },
    [(
        "TYPE_CHANGED",
        CS,
        "auth#/properties/data/properties/token",
        B,
        B
    ),]
);
case!(
    c2s_required_field_removed_from_a_closed_object,
    new,
    |f| {
        object(f, C2S, "/$defs/AuthData/properties").remove("token");
        required_names(f, C2S, "AuthData").clear();
    },
    [(
        "REQUIRED_FIELD_REMOVED",
        CS,
        "auth#/properties/data/properties/token",
        B,
        B
    ),]
);
case!(
    c2s_field_removed_from_an_open_object,
    new,
    |f| {
        object(f, C2S, "/$defs/AuthData").remove("additionalProperties");
        object(f, C2S, "/$defs/AuthData/properties").remove("token");
        required_names(f, C2S, "AuthData").clear();
    },
    [
        (
            "ADDITIONAL_PROPERTIES_OPENED",
            CS,
            "auth#/properties/data/additionalProperties",
            S,
            S
        ),
        (
            "REQUIRED_FIELD_REMOVED",
            CS,
            "auth#/properties/data/properties/token",
            S,
            S
        ),
    ]
);

/// Ties every rule to a case: each rule id must appear in some expected row of this file.
#[test]
fn every_rule_has_a_case() {
    let source: String = include_str!("breaking.rs").split_whitespace().collect();
    let missing: Vec<&str> = breaking::Rule::ALL
        .iter()
        .map(|rule| rule.id())
        .filter(|id| {
            !source.contains(&format!("(\"{id}\",CS,"))
                && !source.contains(&format!("(\"{id}\",SC,"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a corpus case: {missing:?}"
    );
}
