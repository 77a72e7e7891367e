//! The free-form `custom.*` family.

use serde_json::Value;

use super::{FamilyShape, TopicFamily};

/// The `custom.*` family: any JSON value, for application broadcasts that need no schema.
#[derive(Debug)]
pub struct Custom;

impl TopicFamily for Custom {
    const NAME: &'static str = "custom";
    const SHAPE: FamilyShape = FamilyShape::Prefix;
    const DESCRIPTION: &'static str = "Free-form broadcasts: any JSON value, under any topic that \
        starts with `custom.`. Use it for application data that has no family of its own yet.";
    const FOLD_RULE: &'static str =
        "The snapshot is the latest event's payload (`null` before the first event).";
    type Snapshot = Value;
    type Event = Value;

    fn fold(snapshot: &mut Value, event: &Value) {
        snapshot.clone_from(event);
    }
}
