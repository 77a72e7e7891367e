//! The free-form `custom.*` family.

use crate::json::JsonValue;

use super::{FamilyShape, TopicFamily};

/// The `custom.*` family: any JSON value (numbers within ±(2^53−1)), for application broadcasts that need no schema.
#[derive(Debug)]
pub struct Custom;

impl TopicFamily for Custom {
    const NAME: &'static str = "custom";
    const SHAPE: FamilyShape = FamilyShape::Prefix;
    const DESCRIPTION: &'static str = "Free-form broadcasts: any JSON value, under any topic that \
        starts with `custom.`; numbers must lie within ±(2^53−1). Use it for application data that has no family of its own yet.";
    const FOLD_RULE: &'static str =
        "The snapshot is the latest event's payload (`null` before the first event).";
    type Snapshot = JsonValue;
    type Event = JsonValue;

    fn fold(snapshot: &mut JsonValue, event: &JsonValue) {
        snapshot.clone_from(event);
    }
}
