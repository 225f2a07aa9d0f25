//! What a drift check found: the differences between generated code and a live schema, as
//! data. The check itself ([`Client::verify`](crate::Client::verify)) is in `verify.rs`.

use std::fmt;

/// One difference between the generated code and the live schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Drift {
    /// The live schema has an input the code does not know.
    InputAdded {
        /// Slot id.
        id: String,
        /// Wire type.
        kind: String,
        /// Whether it may be omitted.
        optional: bool,
    },
    /// An input of the code is gone from the live schema.
    InputRemoved {
        /// Slot id.
        id: String,
    },
    /// An output was added upstream.
    OutputAdded {
        /// Slot id.
        id: String,
        /// Wire type.
        kind: String,
    },
    /// An output of the code is gone from the live schema.
    OutputRemoved {
        /// Slot id.
        id: String,
    },
    /// A slot's media type changed.
    TypeChanged {
        /// `"input"` or `"output"`.
        side: &'static str,
        /// Slot id.
        id: String,
        /// Type in the generated code.
        generated: String,
        /// Type in the live schema.
        live: String,
    },
    /// An input became optional or required.
    OptionalityChanged {
        /// Slot id.
        id: String,
        /// Whether the live schema makes it optional.
        now_optional: bool,
    },
    /// The live catalog entry of a model has a param the code does not know.
    ParamAdded {
        /// Param name.
        name: String,
        /// Its catalog type.
        kind: String,
        /// Whether the model requires it (a generation without it is then refused).
        required: bool,
    },
    /// A param of the code is gone from the live catalog entry.
    ParamRemoved {
        /// Param name.
        name: String,
    },
    /// A param's type, requiredness, allowed values or range changed.
    ParamChanged {
        /// Param name.
        name: String,
        /// What changed, in words (`no longer allows \`landscape_21_9\``).
        change: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::InputAdded { id, kind, optional } => {
                let req = if *optional { "optional" } else { "required" };
                write!(f, "input `{id}` added ({kind}, {req})")
            }
            Drift::InputRemoved { id } => write!(f, "input `{id}` removed"),
            Drift::OutputAdded { id, kind } => write!(f, "output `{id}` added ({kind})"),
            Drift::OutputRemoved { id } => write!(f, "output `{id}` removed"),
            Drift::TypeChanged {
                side,
                id,
                generated,
                live,
            } => write!(f, "{side} `{id}` type changed: {generated} -> {live}"),
            Drift::OptionalityChanged { id, now_optional } => {
                let became = if *now_optional {
                    "optional"
                } else {
                    "required"
                };
                write!(f, "input `{id}` became {became}")
            }
            Drift::ParamAdded {
                name,
                kind,
                required,
            } => {
                let req = if *required { "required" } else { "optional" };
                write!(f, "param `{name}` added ({kind}, {req})")
            }
            Drift::ParamRemoved { name } => write!(f, "param `{name}` removed"),
            Drift::ParamChanged { name, change } => write!(f, "param `{name}` {change}"),
        }
    }
}
