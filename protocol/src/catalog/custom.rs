//! The free-form `custom.*` family.

use crate::json::JsonValue;

use super::{FamilyShape, Fields, Fold, FoldTarget, TopicFamily};

/// The `custom.*` family: any JSON value (numbers within ±(2^53−1)), for application broadcasts that need no schema.
#[derive(Debug)]
pub struct Custom;

impl TopicFamily for Custom {
    const NAME: &'static str = "custom";
    const SHAPE: FamilyShape = FamilyShape::Prefix;
    const DESCRIPTION: &'static str = "Free-form broadcasts: any JSON value, under any topic that \
        starts with `custom.`; numbers must lie within ±(2^53−1). Use it for application data that has no family of its own yet.";
    const FOLD: Fold = Fold::Latest;
    type Snapshot = JsonValue;
    type Event = JsonValue;
}

impl Fields for JsonValue {
    fn str_field(&self, name: &str) -> Option<&str> {
        self.get().get(name)?.as_str()
    }
}

impl FoldTarget<JsonValue> for JsonValue {
    fn list_mut(&mut self, _name: &str) -> Option<&mut Vec<JsonValue>> {
        None
    }

    fn set_latest(&mut self, event: &JsonValue) -> bool {
        self.clone_from(event);
        true
    }
}
