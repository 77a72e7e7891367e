//! The rule ids of the breaking-change check and the verdict table: how a change's effect on
//! the set of accepted messages, and its direction, decide its verdict at each level.

/// Which way a message travels, which decides who must keep understanding whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Frames (and publish payloads) that clients send: the new server must accept what old
    /// clients send.
    ClientToServer,
    /// Frames (and snapshot and event payloads) that the server sends: old clients must
    /// understand what the new server sends.
    ServerToClient,
}

impl Direction {
    /// The name used in reports and allow entries (`client-to-server`, `server-to-client`).
    pub fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        }
    }

    /// The direction named `name`, as [`Direction::name`] spells it.
    pub fn from_name(name: &str) -> Option<Direction> {
        [Direction::ClientToServer, Direction::ServerToClient]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

/// How strict the check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// Only what breaks a deployed peer on the wire (the default).
    #[default]
    Wire,
    /// Also what breaks code compiled against the generated types: a removed name it may
    /// refer to, a new member an exhaustive `switch`/`match` does not handle.
    Strict,
}

impl Level {
    /// The name of the level on the command line (`wire`, `strict`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Wire => "wire",
            Level::Strict => "strict",
        }
    }
}

/// What a change does to a deployed peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A deployed peer rejects or misreads messages: breaking at every level.
    Wire,
    /// The wire still works, but code built against the old generated types no longer
    /// compiles or no longer matches exhaustively: breaking at `strict`, a warning at `wire`.
    Source,
    /// Nothing deployed notices.
    None,
}

/// The verdict on one change at one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Fails the check (exit 1) unless allowed.
    Breaking,
    /// Reported, does not fail the check at this level.
    Warning,
    /// Compatible.
    Safe,
}

impl Verdict {
    /// The word printed in reports.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Breaking => "breaking",
            Verdict::Warning => "warning",
            Verdict::Safe => "safe",
        }
    }
}

impl Effect {
    /// The name used in JSON reports (`wire`, `source`, `none`).
    pub fn name(self) -> &'static str {
        match self {
            Effect::Wire => "wire",
            Effect::Source => "source",
            Effect::None => "none",
        }
    }

    /// The verdict on a change with this effect at `level`.
    pub fn verdict(self, level: Level) -> Verdict {
        match (self, level) {
            (Effect::Wire, _) | (Effect::Source, Level::Strict) => Verdict::Breaking,
            (Effect::Source, Level::Wire) => Verdict::Warning,
            (Effect::None, _) => Verdict::Safe,
        }
    }
}

/// What a change does to the names in the generated types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Adds a member to a closed set (an exhaustive `switch` misses it).
    Added,
    /// Removes a name (code that refers to it no longer compiles).
    Removed,
    /// Neither.
    None,
}

macro_rules! rules {
    ($($variant:ident = $id:literal, $member:ident: $doc:literal;)+) => {
        /// A kind of schema change, with a stable id. Ids never change meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $(#[doc = $doc] $variant,)+
        }

        impl Rule {
            /// Every rule, in table order.
            pub const ALL: &[Rule] = &[$(Rule::$variant),+];

            /// The stable id, e.g. `FIELD_REMOVED`.
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id,)+ }
            }

            /// What the rule reports.
            pub fn doc(self) -> &'static str {
                match self { $(Rule::$variant => $doc,)+ }
            }

            /// Whether the change adds a member to a closed set that generated code matches
            /// on exhaustively (a message type, a family, an enum value, a union variant), or
            /// removes a name generated code may refer to (those, and fields).
            pub fn member(self) -> Member {
                match self { $(Rule::$variant => Member::$member,)+ }
            }

            /// The rule whose id is `id`.
            pub fn from_id(id: &str) -> Option<Rule> {
                Rule::ALL.iter().copied().find(|rule| rule.id() == id)
            }
        }
    };
}

rules! {
    MessageTypeAdded = "MESSAGE_TYPE_ADDED", Added: "A message type (a `oneOf` branch of a direction schema, by its `type` const) was added.";
    MessageTypeRemoved = "MESSAGE_TYPE_REMOVED", Removed: "A message type was removed.";
    FamilyAdded = "FAMILY_ADDED", Added: "A topic family (a `topics/*.schema.json`) was added.";
    FamilyRemoved = "FAMILY_REMOVED", Removed: "A topic family was removed.";
    FieldAdded = "FIELD_ADDED", None: "An optional property was added.";
    RequiredFieldAdded = "REQUIRED_FIELD_ADDED", None: "A required property was added.";
    FieldRemoved = "FIELD_REMOVED", Removed: "An optional property was removed.";
    RequiredFieldRemoved = "REQUIRED_FIELD_REMOVED", Removed: "A required property was removed.";
    FieldNowRequired = "FIELD_NOW_REQUIRED", None: "An optional property became required.";
    FieldNowOptional = "FIELD_NOW_OPTIONAL", None: "A required property became optional.";
    TypeNarrowed = "TYPE_NARROWED", None: "The `type` set lost a type.";
    TypeWidened = "TYPE_WIDENED", None: "The `type` set gained a type.";
    TypeChanged = "TYPE_CHANGED", None: "The `type` set both lost and gained types.";
    EnumValueAdded = "ENUM_VALUE_ADDED", Added: "An `enum`/`const` value (or a `oneOf` of consts) gained a value.";
    EnumValueRemoved = "ENUM_VALUE_REMOVED", Removed: "An `enum`/`const` value set lost a value.";
    ValuesRestricted = "VALUES_RESTRICTED", None: "A schema that took any value of its type now takes only an `enum`/`const` set.";
    ValuesUnrestricted = "VALUES_UNRESTRICTED", None: "An `enum`/`const` set was lifted.";
    BoundTightened = "BOUND_TIGHTENED", None: "A numeric bound (`minimum`, `maximum`, `exclusive*`, `min/maxLength`, `min/maxItems`, `min/maxProperties`) was added or tightened.";
    BoundLoosened = "BOUND_LOOSENED", None: "A numeric bound was removed or loosened.";
    PatternAdded = "PATTERN_ADDED", None: "A `pattern` was added.";
    PatternRemoved = "PATTERN_REMOVED", None: "A `pattern` was removed.";
    PatternChanged = "PATTERN_CHANGED", None: "A `pattern` changed: treated as narrowing and widening at once.";
    FormatAdded = "FORMAT_ADDED", None: "A `format` was added.";
    FormatRemoved = "FORMAT_REMOVED", None: "A `format` was removed.";
    FormatChanged = "FORMAT_CHANGED", None: "A `format` changed: treated as narrowing and widening at once.";
    AdditionalPropertiesClosed = "ADDITIONAL_PROPERTIES_CLOSED", None: "`additionalProperties` went from allowed to `false`.";
    AdditionalPropertiesOpened = "ADDITIONAL_PROPERTIES_OPENED", None: "`additionalProperties` went from `false` to allowed.";
    DependencyAdded = "DEPENDENCY_ADDED", None: "A `dependentRequired` entry was added or gained a property.";
    DependencyRemoved = "DEPENDENCY_REMOVED", None: "A `dependentRequired` entry was removed or lost a property.";
    SubschemaAdded = "SUBSCHEMA_ADDED", None: "An `items` or `additionalProperties` schema now constrains what was free.";
    SubschemaRemoved = "SUBSCHEMA_REMOVED", None: "An `items` or `additionalProperties` schema was lifted.";
    VariantAdded = "VARIANT_ADDED", Added: "A `oneOf`/`anyOf` union gained a variant.";
    VariantRemoved = "VARIANT_REMOVED", Removed: "A `oneOf`/`anyOf` union lost a variant.";
    UnionChanged = "UNION_CHANGED", None: "A schema became a union or stopped being one: treated as narrowing and widening at once.";
}

/// The effect of a change that `narrows` and/or `widens` the set of accepted values, made
/// by `rule`, in `direction`. This is the verdict table of the module documentation.
pub fn effect(rule: Rule, direction: Direction, narrows: bool, widens: bool) -> Effect {
    match direction {
        // The consumer is the new server, the producers are old clients: a value they may
        // send that the server now rejects breaks them. A new member breaks only code that
        // matches every member (a server or proxy built on the generated types).
        Direction::ClientToServer if narrows => Effect::Wire,
        Direction::ClientToServer if widens && rule.member() == Member::Added => Effect::Source,
        Direction::ClientToServer => Effect::None,
        // The producer is the new server, the consumers are old clients whose decoders are
        // closed (see the module documentation): a value they do not accept breaks them. A
        // removed member breaks only code that names it.
        Direction::ServerToClient if widens => Effect::Wire,
        Direction::ServerToClient if narrows && rule.member() == Member::Removed => Effect::Source,
        Direction::ServerToClient => Effect::None,
    }
}
