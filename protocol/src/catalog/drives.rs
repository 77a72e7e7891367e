//! The `drives.pressure` family.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::{FamilyShape, Fields, Fold, Order, TopicFamily, list_snapshot};
use crate::scalar::Ratio;

/// How full one drive is, against the level at which it counts as under pressure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrivePressure {
    /// The drive, e.g. a mount point or device name.
    pub drive: String,
    /// How full the drive is, 0.0 (empty) to 1.0 (full).
    pub pressure: Ratio,
    /// The pressure at or above which the drive counts as under pressure, 0.0 to 1.0.
    pub threshold: Ratio,
}

/// The latest pressure of every drive, ordered by `drive`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrivesPressureSnapshot {
    /// One entry per drive, ordered by `drive`.
    pub drives: Vec<DrivePressure>,
}

/// The `drives.pressure` family: a ticker of drive fill levels.
#[derive(Debug)]
pub struct DrivesPressure;

impl TopicFamily for DrivesPressure {
    const NAME: &'static str = "drives.pressure";
    const SHAPE: FamilyShape = FamilyShape::Exact;
    const DESCRIPTION: &'static str =
        "A ticker of drive fill levels. Each event is the latest reading of one drive.";
    const FOLD: Fold = Fold::Upsert {
        list: "drives",
        key: "drive",
        order: Order::KeyAscending,
        remove_when: None,
    };
    type Snapshot = DrivesPressureSnapshot;
    type Event = DrivePressure;
}

list_snapshot!(DrivesPressureSnapshot, DrivePressure, "drives" => drives);

impl Fields for DrivePressure {
    fn str_field(&self, name: &str) -> Option<&str> {
        match name {
            "drive" => Some(&self.drive),
            _ => None,
        }
    }
}
