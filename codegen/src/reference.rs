//! `generated/PROTOCOL.md`: the protocol reference, rendered from the generated JSON Schemas
//! (whose descriptions are the Rust doc comments), the code tables, the catalog, the rules and
//! examples serialized from real values.

use std::fmt::Write as _;

use rtbus_protocol::catalog::Family;
use rtbus_protocol::rules::RULES;
use rtbus_protocol::{
    CloseCode, ENDPOINT_PATH, ErrorCode, MAX_NESTING_DEPTH, MAX_REQUEST_ID_LEN, MAX_SAFE_INTEGER,
    MAX_TOPIC_LEN, PROTOCOL_VERSION, SUBPROTOCOL, TOPIC_PATTERN,
};
use serde_json::{Map, Value};

use crate::corpus::{self, Example};
use crate::typescript::one_line;
use crate::{Body, Error, GeneratedFile, Result};

/// A direction schema, parsed, with helpers to read it.
struct Schema {
    root: Value,
}

impl Schema {
    fn load(file: &str) -> Result<Schema> {
        let files = crate::schema::generate()?;
        let path = format!("generated/schema/{file}");
        let file = files
            .iter()
            .find(|f| f.path() == path)
            .ok_or_else(|| Error::SchemaShape(format!("{path} is not generated")))?;
        let root = serde_json::from_str(file.contents())
            .map_err(|source| Error::Json { what: path, source })?;
        Ok(Schema { root })
    }

    fn def(&self, name: &str) -> Option<&Value> {
        self.root.get("$defs")?.get(name)
    }

    fn variants(&self) -> Vec<&Value> {
        self.root
            .get("oneOf")
            .and_then(Value::as_array)
            .map(|v| v.iter().collect())
            .unwrap_or_default()
    }

    /// Follows a `$ref` (directly or through `anyOf: [$ref, null]`).
    fn target<'a>(&'a self, schema: &'a Value) -> Option<(&'a str, &'a Value)> {
        let name = ref_name(schema)?;
        Some((name, self.def(name)?))
    }
}

fn ref_name(schema: &Value) -> Option<&str> {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        return target.strip_prefix("#/$defs/");
    }
    schema
        .get("anyOf")?
        .as_array()?
        .iter()
        .find_map(|s| s.get("$ref")?.as_str()?.strip_prefix("#/$defs/"))
}

fn description(schema: &Value) -> String {
    one_line(
        schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

/// The type of `schema` for a table cell; scalars and enums link to their entry under Types,
/// objects are expanded in place instead.
fn type_name(defs: &Schema, schema: &Value) -> String {
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    if let Some(name) = ref_name(schema) {
        let is_object = defs
            .def(name)
            .is_some_and(|d| d.get("properties").is_some());
        return if is_object {
            format!("`{name}`")
        } else {
            format!("[`{name}`](#{})", anchor(name))
        };
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            let items = schema
                .get("items")
                .map(|items| type_name(defs, items))
                .unwrap_or_default();
            format!("{items} array")
        }
        Some(Value::String(t)) => format!("`{t}`"),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(|t| format!("`{t}`"))
            .unwrap_or_default(),
        _ => "any JSON".to_owned(),
    }
}

fn anchor(name: &str) -> String {
    format!("type-{}", name.to_ascii_lowercase())
}

fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Table rows for the fields of `object`, recursing into referenced objects.
fn field_rows(schema: &Schema, object: &Value, prefix: &str, depth: usize, out: &mut String) {
    let Some(properties) = object.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (name, field) in ordered(properties, &required) {
        let path = format!("{prefix}{name}");
        let _ = writeln!(
            out,
            "| `{path}` | {} | {} | {} |",
            type_name(schema, field),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                "no"
            },
            escape_cell(&description(field))
        );
        if depth == 0 {
            continue;
        }
        let (inner, child_prefix) = match field.get("items") {
            Some(items) => (schema.target(items), format!("{path}[].")),
            None => (schema.target(field), format!("{path}.")),
        };
        if let Some((_, def)) = inner {
            if def.get("properties").is_some() {
                field_rows(schema, def, &child_prefix, depth - 1, out);
            }
        }
    }
}

/// `type` first, then required fields in declaration order, then the optional ones.
fn ordered<'a>(
    properties: &'a Map<String, Value>,
    required: &[&str],
) -> Vec<(&'a String, &'a Value)> {
    let mut fields: Vec<(&String, &Value)> = properties.iter().collect();
    fields.sort_by_key(|(name, _)| {
        let rank = if name.as_str() == "type" {
            0
        } else if name.as_str() == "id" {
            1
        } else if let Some(i) = required.iter().position(|r| r == name) {
            2 + i
        } else {
            100
        };
        (rank, name.as_str().to_owned())
    });
    fields
}

fn table_header(out: &mut String) {
    out.push_str("| Field | Type | Required | Description |\n|---|---|---|---|\n");
}

fn json_block(value: &Value, out: &mut String) -> Result<()> {
    let text = serde_json::to_string_pretty(&crate::json::canonical(value)).map_err(|source| {
        Error::Json {
            what: "an example".into(),
            source,
        }
    })?;
    let _ = writeln!(out, "```json\n{text}\n```\n");
    Ok(())
}

fn messages<T: serde::Serialize>(
    schema: &Schema,
    examples: &[Example<T>],
    out: &mut String,
) -> Result<()> {
    for variant in schema.variants() {
        let Some(kind) = variant
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
        else {
            continue;
        };
        let _ = writeln!(out, "### `{kind}`\n\n{}\n", description(variant));
        table_header(out);
        field_rows(schema, variant, "", 3, out);
        out.push('\n');
        let example = examples.iter().find_map(|e| {
            let value = serde_json::to_value(&e.message).ok()?;
            (value.get("type")? == kind).then_some(value)
        });
        if let Some(example) = example {
            out.push_str("Example:\n\n");
            json_block(&example, out)?;
        }
    }
    Ok(())
}

fn types_section(schemas: &[&Schema], out: &mut String) {
    let mut seen = std::collections::BTreeMap::new();
    for schema in schemas {
        if let Some(defs) = schema.root.get("$defs").and_then(Value::as_object) {
            for (name, def) in defs {
                // Objects are described where they are used; list scalars and enums here.
                if def.get("properties").is_none() {
                    seen.entry(name.clone()).or_insert_with(|| def.clone());
                }
            }
        }
    }
    for (name, def) in seen {
        let _ = writeln!(
            out,
            "<a id=\"{}\"></a>\n### `{name}`\n\n{}\n",
            anchor(&name),
            description(&def)
        );
        if name == "ErrorCode" {
            out.push_str("One of the [error codes](#error-codes).\n\n");
            continue;
        }
        let mut facts = Vec::new();
        for key in [
            "type",
            "format",
            "pattern",
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
        ] {
            if let Some(v) = def.get(key) {
                facts.push(format!(
                    "{key}: `{}`",
                    v.as_str().map_or(v.to_string(), str::to_owned)
                ));
            }
        }
        if !facts.is_empty() {
            let _ = writeln!(out, "{}.\n", facts.join(", "));
        }
        if let Some(values) = def.get("oneOf").and_then(Value::as_array) {
            out.push_str("| Value | Meaning |\n|---|---|\n");
            for v in values {
                let _ = writeln!(
                    out,
                    "| `{}` | {} |",
                    v.get("const").and_then(Value::as_str).unwrap_or(""),
                    escape_cell(&description(v))
                );
            }
            out.push('\n');
        }
    }
}

fn codes_section(out: &mut String) {
    out.push_str("## Error codes\n\n");
    out.push_str(
        "Sent as `data.code` of an `error` frame. An error never closes the connection; \
         *Reconnect* says whether reconnecting could help.\n\n",
    );
    out.push_str("| Code | Meaning | Reconnect |\n|---|---|---|\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            code.value(),
            escape_cell(&one_line(code.description())),
            if code.reconnect() {
                "yes, with backoff"
            } else {
                "no"
            }
        );
    }
    out.push_str("\n## Close codes\n\n");
    out.push_str(
        "The status code of the WebSocket close frame. Codes below 4000 are RFC 6455's; \
         4000–4999 are rtbus's own. *Reconnect* tells a client whether to reconnect (with \
         backoff, resuming each topic after the last `seq` it saw).\n\n",
    );
    out.push_str("| Code | Name | Meaning | Reconnect |\n|---|---|---|---|\n");
    for code in CloseCode::ALL {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            code.value(),
            lower_camel(code.name()),
            escape_cell(&one_line(code.description())),
            if code.reconnect() {
                "yes, and resume"
            } else {
                "no"
            }
        );
    }
    out.push('\n');
}

fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn catalog_section(server: &Schema, out: &mut String) -> Result<()> {
    out.push_str("## Topic catalog\n\n");
    out.push_str(
        "Every topic belongs to exactly one family, which fixes the payload type of its \
         `snapshot` and `event` frames (and of `publish`). A snapshot is the family's empty \
         state with every event up to its `seq` folded in by the family's fold rule. Each \
         family also has its own schema under `schema/topics/`. The generated TypeScript \
         (`typescript/fold.ts`: `emptySnapshot`, `foldEvent`, and the rules as data in `FOLDS`) \
         folds by the same rules, so a client that folds the events it receives holds what a \
         new subscriber's snapshot would hold.\n\n",
    );
    out.push_str("| Family | Topics | Snapshot | Event |\n|---|---|---|---|\n");
    let families = family_types(server);
    for (family, snapshot, event) in &families {
        let _ = writeln!(
            out,
            "| [`{}`](#family-{}) | `{}` | {} | {} |",
            family.name(),
            corpus::ident(family.name()),
            family.shape().display(family.name()),
            snapshot,
            event
        );
    }
    out.push('\n');
    for (family, snapshot_type, event_type) in families {
        let name = family.name();
        let _ = writeln!(
            out,
            "<a id=\"family-{}\"></a>\n### `{}`\n\n{}\n\n- Topics: `{}` (pattern `{}`)\n- Snapshot: {snapshot_type}\n- Event: {event_type}\n- Fold rule: {}\n- Schema: `schema/topics/{name}.schema.json`\n",
            corpus::ident(name),
            family.shape().display(name),
            family.description(),
            family.shape().display(name),
            family.shape().topic_regex(name),
            family.fold_rule()
        );
        for (label, pointer) in [("Snapshot", "snapshot"), ("Event", "event")] {
            let payload = family_payload_schema(server, family, pointer);
            if let Some((type_name, def)) = payload.and_then(|p| server.target(p)) {
                if def.get("properties").is_some() {
                    let _ = writeln!(out, "{label} fields (`{type_name}`):\n");
                    table_header(out);
                    field_rows(server, def, "", 2, out);
                    out.push('\n');
                }
            }
        }
        let (snapshot, events) = corpus::example_payloads(family)?;
        let _ = writeln!(
            out,
            "Example: after the events below, a new subscriber's snapshot of `{}` is\n",
            corpus::example_topic(family)
        );
        json_block(&snapshot, out)?;
        out.push_str("Events, in `seq` order:\n\n");
        for event in events {
            json_block(&event, out)?;
        }
    }
    Ok(())
}

/// The payload schema the server schema's `if`/`then` rules give `family` for `kind`.
fn family_payload_schema<'a>(server: &'a Schema, family: Family, kind: &str) -> Option<&'a Value> {
    let regex = family.shape().topic_regex(family.name());
    server
        .root
        .get("allOf")?
        .as_array()?
        .iter()
        .find_map(|rule| {
            let cond = rule.get("if")?;
            (cond.pointer("/properties/type/const")? == kind
                && cond.pointer("/properties/data/properties/topic/pattern")? == regex.as_str())
            .then(|| rule.pointer("/then/properties/data/properties/payload"))?
        })
}

fn family_types(server: &Schema) -> Vec<(Family, String, String)> {
    Family::ALL
        .iter()
        .map(|family| {
            let name = |kind| {
                family_payload_schema(server, *family, kind)
                    .map(|schema| type_name(server, schema))
                    .unwrap_or_else(|| "any JSON".to_owned())
            };
            (*family, name("snapshot"), name("event"))
        })
        .collect()
}

fn rules_section(out: &mut String) {
    out.push_str("## Rules\n\n");
    out.push_str(
        "Every normative statement of the protocol, with a stable id. Conformance cases cite \
         these ids; a rule that changes meaning gets a new id.\n",
    );
    let mut sections: Vec<&str> = Vec::new();
    for rule in RULES {
        if !sections.contains(&rule.section) {
            sections.push(rule.section);
        }
    }
    for section in sections {
        let _ = writeln!(out, "\n### {section}\n");
        for rule in RULES.iter().filter(|r| r.section == section) {
            let _ = writeln!(
                out,
                "- <a id=\"{}\"></a>**`{}`**: {}",
                rule.anchor(),
                rule.id,
                rule.text
            );
        }
    }
}

/// How a client keeps its place in a topic's stream, resumes, and re-authenticates.
fn streams_section(out: &mut String) {
    out.push_str(
        "## Streams and resume\n\n\
         Each topic's events form a *stream*, named by its `epoch` (1 to 64 URL-safe characters) \
         and numbered by `seq`. Every `snapshot` and `event` carries both, and so do the \
         `subscribed` entry and the `published` reply. Same topic and same epoch means the same \
         numbering and the same history. A server gives a topic a new epoch whenever its \
         numbering restarts or its history is lost: a restart of a server that keeps topics in \
         memory, a topic forgotten and created again, data lost by a storage engine. It never \
         reuses one. A `seq` alone therefore says nothing across a reconnect: keep the epoch \
         beside the last `seq` seen, per topic, and compare epochs only for equality.\n\n\
         To resume after a lost connection, subscribe with both: \
         `{\"topic\": \"drives.pressure\", \"resumeAfter\": 41, \"epoch\": \"k3x9q2-1f\"}`. \
         One without the other is a `bad_request`. The server replays only when the epoch is the \
         topic's current one and its history still holds *every* event after `resumeAfter`; \
         otherwise it replays nothing (never a partial replay). The `subscribed` entry of each \
         topic says which happened, so a client can tell from the frames alone, also with \
         `snapshot: false`:\n\n\
         | `start` | When | What follows | What the client does |\n\
         |---|---|---|---|\n\
         | `snapshot` | no resume asked | a `snapshot` at the entry's `seq`, then live events | replace the topic's state with the snapshot |\n\
         | `live` | no resume asked, `snapshot: false` | live events from `seq` + 1 | apply events as they come |\n\
         | `resumed` | the resume was honoured | the events after `resumeAfter` up to `seq`, marked `isReplay: true` (none when up to date), then live events | keep the state and apply them: no gap, no duplicate |\n\
         | `reset` | the resume was not honoured: another epoch (e.g. the server restarted), history too short, or `resumeAfter` ahead of the topic | nothing replayed; a fresh `snapshot` at `seq` unless the request said `snapshot: false`, then live events | discard the topic's state; take the snapshot, or, having opted out of it, reload the state yourself (e.g. subscribe again with a snapshot) |\n\n\
         After any of them, live events continue from the entry's `seq` + 1 under the entry's \
         `epoch`. The close codes that say \"reconnect and resume\" mean exactly this: \
         reconnect, then resume with the epoch and last `seq` of each topic.\n\n\
         ## Re-authentication\n\n\
         A client refreshes its token on an open socket by sending `auth` again. The server \
         answers every `auth` frame:\n\n\
         - **Accepted, same principal:** `authenticated`; every subscription stays.\n\
         - **Accepted, another principal:** `authenticated`; the subscriptions the new \
         principal may not read end, listed in one `unsubscribed` frame without `id` and with \
         `reason: \"forbidden\"`, sent right after it. The others stay.\n\
         - **Rejected:** `error` code `unauthorized`, and the connection no longer has a \
         principal (a revoked or expired token does not keep working on an open socket). The \
         subscriptions that need one end, listed in one `unsubscribed` frame without `id` and \
         with `reason: \"unauthorized\"`; public topics stay. Send `auth` with a valid token to \
         act as a principal again.\n\n\
         No event of an ended subscription follows its `unsubscribed` frame.\n\n",
    );
}

/// Generates `generated/PROTOCOL.md`.
pub fn generate() -> Result<Vec<GeneratedFile>> {
    let client = Schema::load("client-to-server.schema.json")?;
    let server = Schema::load("server-to-client.schema.json")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# rtbus protocol v{PROTOCOL_VERSION}\n\n\
         rtbus is a realtime publish/subscribe protocol over WebSocket. A client connects, \
         authenticates, subscribes to topics and receives a snapshot of each topic's state \
         followed by live events; privileged clients publish events.\n\n\
         This reference, the TypeScript types in `typescript/`, the JSON Schemas in `schema/` \
         and the AsyncAPI document `asyncapi.yaml` are generated from the same Rust source, so \
         they agree.\n\n\
         Contents: [Connection](#connection) · [Frames](#frames) · \
         [Client to server](#client-to-server) · [Server to client](#server-to-client) · \
         [Types](#types) · [Error codes](#error-codes) · [Close codes](#close-codes) · \
         [Topics](#topics) · [Streams and resume](#streams-and-resume) · \
         [Re-authentication](#re-authentication) · [Topic catalog](#topic-catalog) · \
         [Rules](#rules)\n\n\
         ## Connection\n\n\
         - Endpoint path: `{ENDPOINT_PATH}` (a WebSocket upgrade).\n\
         - Subprotocol: `{SUBPROTOCOL}`, offered in `Sec-WebSocket-Protocol`; it names the \
         protocol version.\n\
         - Authentication: an `auth` frame carrying a bearer token, or an \
         `Authorization: Bearer <token>` header on the handshake. Tokens never travel in a URL. \
         A header that authenticates is not answered by any frame: the connection simply acts \
         as its principal from the first frame on. An `auth` frame is always answered \
         (`authenticated` or `error`), also on a connection that is already authenticated; see \
         [Re-authentication](#re-authentication).\n\n\
         ## Frames\n\n\
         Every frame is a WebSocket text frame holding one JSON object, the same envelope in \
         both directions:\n\n\
         ```json\n{{ \"type\": \"...\", \"id\": \"optional request id\", \"data\": {{}} }}\n```\n\n\
         - `type` names the message. Unknown types, unknown fields and mistyped fields are \
         rejected (`bad_request`).\n\
         - `id` is chosen by the client (1 to {MAX_REQUEST_ID_LEN} characters) and copied into the \
         reply or `error`, so a client can match them.\n\
         - Field names are camelCase. Every integer is at most {MAX_SAFE_INTEGER} (2^53 − 1), so \
         `JSON.parse` never loses precision. Free-form values (`custom.*` payloads, an activity \
         entry's `data`, a `ping`'s `data`) hold numbers within ±(2^53 − 1) only: a larger one \
         is refused (`invalid_payload` or `bad_request`, with a JSON pointer to it), never \
         relayed rounded; send it as a string. Numbers are relayed as the IEEE 754 double they \
         denote. An integer field accepts `80.0` as `80`, as JSON Schema's `integer` does.\n\
         - An optional field is absent or holds a value of its type, never `null` (`null` is a \
         `bad_request`, or `invalid_payload` inside a payload), so an event and the snapshot it \
         folds into cannot disagree about it. Only free-form values hold `null` as a value.\n\
         - A frame nests arrays and objects at most {MAX_NESTING_DEPTH} levels deep, counting its \
         own object (a payload starts at level 3). A deeper frame is answered with \
         `bad_request`; a frame that cannot be read as a whole (too deep, trailing garbage, a bad \
         field) still gets its `id` copied into the `error` when its top-level object holds a \
         valid one.\n\
         - Schemas: `schema/client-to-server.schema.json` and \
         `schema/server-to-client.schema.json` (JSON Schema 2020-12), which also check each \
         snapshot, event and publish payload against its topic's family.\n\
         - Which file is which: the JSON Schemas in `schema/` are draft 2020-12 (what \
         validators such as ajv's 2020 build and the Rust `jsonschema` crate read); \
         `asyncapi.yaml` is the protocol as an AsyncAPI 3.0 document (server `ws`, the \
         endpoint channel, operations `send` and `receive`, one message per type) whose payload \
         schemas are the same schemas in JSON Schema draft-07, the dialect AsyncAPI tools \
         validate.\n"
    );
    out.push_str("## Client to server\n\n");
    messages(&client, &corpus::client_examples()?, &mut out)?;
    out.push_str("## Server to client\n\n");
    messages(&server, &corpus::server_examples()?, &mut out)?;
    out.push_str("## Types\n\n");
    types_section(&[&client, &server], &mut out);
    codes_section(&mut out);
    let _ = writeln!(
        out,
        "## Topics\n\n\
         A topic is one or more dot-separated *segments* of lowercase ASCII letters, digits, \
         `_` and `-`, optionally followed by `:` and a *key* of ASCII letters, digits, `_`, \
         `-`, `.` and `~` (enough for ids and UUIDs). At most {MAX_TOPIC_LEN} bytes.\n\n\
         ```text\n{TOPIC_PATTERN}\n```\n\n\
         Examples: `sessions.state`, `sessions.activity:abc123`, `custom.builds.main`. An \
         invalid topic is answered with `invalid_topic` and a message naming the offending \
         character and its byte offset; a valid topic that no family owns with \
         `unknown_topic`.\n"
    );
    streams_section(&mut out);
    catalog_section(&server, &mut out)?;
    rules_section(&mut out);
    Ok(vec![GeneratedFile::new(
        "generated/PROTOCOL.md",
        Body::text(out),
    )?])
}
