//! `generated/asyncapi.yaml`: the protocol as an AsyncAPI 3.0 document, with draft-07 payload
//! schemas.
//!
//! The document describes a client application: one server (`ws`), one channel (the endpoint,
//! its subprotocol in the channel's `ws` binding), the operation `send` (every client→server
//! message) and the operation `receive` (every server→client message). Each message's payload
//! is the schema of its frame, and the frames that carry a topic payload (`publish`,
//! `snapshot`, `event`) hold the same payload-by-family `if`/`then` rules as the 2020-12
//! schemas of `generated/schema/`, built by the same functions; the family payload types are in
//! `components.schemas`.
//!
//! The schemas are draft-07 (AsyncAPI's default schema format) rather than 2020-12 because
//! `@asyncapi/parser` validates draft-07 payloads only: a 2020-12 `schemaFormat` would be
//! accepted unchecked. The text is JSON, which is YAML 1.2, so the header can be a `#` comment
//! (AsyncAPI forbids a `$comment` at the root) and `codegen/tests/asyncapi.rs` can parse it.

use rtbus_protocol::{ClientMessage, ENDPOINT_PATH, SUBPROTOCOL, ServerMessage};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::schema::{self, FamilySchemas, PayloadKind};
use crate::{Body, Error, GeneratedFile, Result};

/// Where the generated document is written.
pub const PATH: &str = "generated/asyncapi.yaml";

/// The channel's key in `channels`.
const CHANNEL: &str = "realtime";

fn shape(what: impl Into<String>) -> Error {
    Error::SchemaShape(format!("{PATH}: {}", what.into()))
}

/// The messages of one direction, in the order of the enum's variants: (name, message object).
fn messages<T: JsonSchema>(
    generator: &mut SchemaGenerator,
    families: &[FamilySchemas],
    topic_frames: &[(&str, PayloadKind)],
) -> Result<Vec<(String, Value)>> {
    let root = generator.root_schema_for::<T>().to_value();
    let branches = root
        .get("oneOf")
        .and_then(Value::as_array)
        .ok_or_else(|| shape(format!("{}: expected a oneOf of frames", T::schema_name())))?;
    let mut out = Vec::new();
    for branch in branches {
        let kind = branch
            .pointer("/properties/type/const")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("a {} frame without a type const", T::schema_name())))?;
        let mut payload = branch.clone();
        if let Some(&(_, payload_kind)) = topic_frames.iter().find(|(t, _)| *t == kind) {
            let mut rules = vec![schema::known_family_rule(&[kind], families)];
            for family in families {
                rules.push(schema::payload_rule(
                    kind,
                    family.family,
                    family.payload(payload_kind),
                ));
            }
            let Value::Object(map) = &mut payload else {
                return Err(shape(format!("the {kind} frame is not an object schema")));
            };
            if map.insert("allOf".into(), Value::Array(rules)).is_some() {
                return Err(shape(format!("the {kind} frame already has an allOf")));
            }
        }
        let summary = branch
            .get("description")
            .and_then(Value::as_str)
            .and_then(|d| d.split("\n\n").next())
            .map(|d| d.replace('\n', " "));
        let mut message = json!({
            "name": kind,
            "title": kind,
            "contentType": "application/json",
            "payload": payload,
        });
        if let (Some(summary), Value::Object(map)) = (summary, &mut message) {
            map.insert("summary".into(), Value::String(summary));
        }
        out.push((kind.to_owned(), message));
    }
    Ok(out)
}

/// Rewrites the 2019-09 keywords the protocol's own `JsonSchema` impls write into their draft-07
/// spelling: `dependentRequired` (lists of property names) is draft-07's `dependencies` with
/// array values. Any other post-draft-07 keyword fails generation rather than go unchecked.
fn to_draft07(value: &mut Value) -> Result<()> {
    const LATER: &[&str] = &[
        "$defs",
        "$anchor",
        "$dynamicRef",
        "dependentSchemas",
        "prefixItems",
        "unevaluatedItems",
        "unevaluatedProperties",
        "minContains",
        "maxContains",
    ];
    match value {
        Value::Object(map) => {
            if let Some(keyword) = LATER.iter().find(|k| map.contains_key(**k)) {
                return Err(shape(format!("{keyword} has no draft-07 spelling")));
            }
            if let Some(dependent) = map.remove("dependentRequired") {
                if map.insert("dependencies".into(), dependent).is_some() {
                    return Err(shape("both dependentRequired and dependencies"));
                }
            }
            map.values_mut().try_for_each(to_draft07)
        }
        Value::Array(items) => items.iter_mut().try_for_each(to_draft07),
        _ => Ok(()),
    }
}

/// Generates [`PATH`].
pub fn generate() -> Result<Vec<GeneratedFile>> {
    let mut settings = SchemaSettings::draft07();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let families = schema::families(&mut generator);
    let client = messages::<ClientMessage>(
        &mut generator,
        &families,
        &[("publish", PayloadKind::Event)],
    )?;
    let server = messages::<ServerMessage>(
        &mut generator,
        &families,
        &[
            ("snapshot", PayloadKind::Snapshot),
            ("event", PayloadKind::Event),
        ],
    )?;
    let mut schemas: Map<String, Value> = generator.take_definitions(true);
    for family in &families {
        let name = family.family.name();
        schemas.insert(format!("{name}.snapshot"), family.snapshot.clone());
        schemas.insert(format!("{name}.event"), family.event.clone());
    }

    let mut component_messages = Map::new();
    let mut channel_messages = Map::new();
    let mut refs = |list: &[(String, Value)]| -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for (name, message) in list {
            if component_messages
                .insert(name.clone(), message.clone())
                .is_some()
            {
                return Err(shape(format!("two messages named {name}")));
            }
            channel_messages.insert(
                name.clone(),
                json!({ "$ref": format!("#/components/messages/{name}") }),
            );
            out.push(json!({ "$ref": format!("#/channels/{CHANNEL}/messages/{name}") }));
        }
        Ok(out)
    };
    let send = refs(&client)?;
    let receive = refs(&server)?;

    let mut document = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "rtbus realtime protocol",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "The rtbus WebSocket pub/sub protocol, seen from a client: it sends the \
                 messages of the `send` operation and receives those of `receive`. Every \
                 frame is one JSON text message. Payload schemas are JSON Schema draft-07; \
                 the same schemas in draft 2020-12 are published in `generated/schema/` \
                 ({}), and `generated/PROTOCOL.md` is the reference.",
                crate::SCHEMA_BASE
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "description": "rtbus-server with its default configuration.",
            },
        },
        "channels": {
            CHANNEL: {
                "address": ENDPOINT_PATH,
                "title": "The rtbus endpoint",
                "description": format!(
                    "The WebSocket endpoint. The client offers the subprotocol `{SUBPROTOCOL}` \
                     in `Sec-WebSocket-Protocol` and the server selects it; a bearer token may \
                     travel in the `Authorization` header of the handshake or in an `auth` \
                     frame."
                ),
                "servers": [{ "$ref": "#/servers/local" }],
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Sec-WebSocket-Protocol": {
                                    "type": "string",
                                    "const": SUBPROTOCOL,
                                    "description": "The subprotocol of this protocol version.",
                                },
                                "Authorization": {
                                    "type": "string",
                                    "description": "`Bearer <token>`; optional (see `auth`).",
                                },
                            },
                            "required": ["Sec-WebSocket-Protocol"],
                        },
                        "bindingVersion": "0.1.0",
                    },
                },
            },
        },
        "operations": {
            "send": {
                "action": "send",
                "title": "Client to server",
                "summary": "Every message a client sends.",
                "channel": { "$ref": format!("#/channels/{CHANNEL}") },
                "messages": send,
            },
            "receive": {
                "action": "receive",
                "title": "Server to client",
                "summary": "Every message a server sends.",
                "channel": { "$ref": format!("#/channels/{CHANNEL}") },
                "messages": receive,
            },
        },
        "components": {
            "messages": component_messages,
            "schemas": schemas,
        },
    });
    schema::forbid_null_for_optional(&mut document);
    to_draft07(&mut document)?;
    crate::make_portable(&mut document);
    schema::check_integers(&document, PATH, "")?;
    let text = crate::json::to_pretty(&document)?;
    GeneratedFile::new(PATH, Body::text(text)).map(|f| vec![f])
}
