//! The macro that turns the table of audit records in `event.rs` into [`super::AuditEvent`]
//! and its methods. Expanded there: the names it uses resolve in `event.rs`.

/// Generates [`AuditEvent`] and its table-driven methods. Each entry reads
///
/// `Variant = "kind" | "older.kind" [level] { field: Type, ... }`
///
/// where the older names are accepted by the parser only, and `level` is an expression of type
/// [`Level`] that may use the variant's fields by name.
macro_rules! audit_events {
    ($(
        $(#[$meta:meta])*
        $variant:ident = $kind:literal $(| $alias:literal)* [$level:expr] {
            $($field:ident : $ty:ty),* $(,)?
        }
    )+) => {
        /// One audit record.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum AuditEvent {
            $($(#[$meta])* $variant { $($field: $ty),* },)+
        }

        impl AuditEvent {
            /// The name of every variant, in table order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The kind each variant is written as, parallel to [`Self::VARIANTS`]. A kind
            /// with two shapes (`session.closed`) appears once per shape.
            pub const KINDS: &'static [&'static str] = &[$($kind),+];

            /// The record's name, the value of its `event` field.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $kind,)+
                }
            }

            /// The variant's name, for telling apart two shapes of one kind.
            pub fn variant(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => stringify!($variant),)+
                }
            }

            /// The syslog severity of the record.
            pub fn level(&self) -> Level {
                match self {
                    // Most levels are constants and leave the bindings unused.
                    $(#[allow(unused_variables)] Self::$variant { $($field),* } => $level,)+
                }
            }

            /// The fields after `event`, named and ordered as written.
            pub fn fields(&self) -> Vec<(&'static str, FieldValue)> {
                match self {
                    $(Self::$variant { $($field),* } => {
                        vec![$((stringify!($field), Field::to_value($field))),*]
                    })+
                }
            }

            /// The event a parsed record holds. Every field must be there, once, with a
            /// value of its type, and nothing else; a kind with two shapes takes the first
            /// that fits, and reports the first shape's complaint when none does.
            // A variant without fields leaves the closure's argument unused.
            #[allow(unused_variables)]
            pub(super) fn from_fields(record: &Record) -> Result<Self, ParseError> {
                let kind = record.kind();
                let mut failed: Option<ParseError> = None;
                $(
                    if kind == $kind $(|| kind == $alias)* {
                        let shape = record.read(|f| {
                            Ok(Self::$variant { $($field: f.take(stringify!($field))?),* })
                        });
                        match shape {
                            Ok(event) => return Ok(event),
                            Err(e) => failed = failed.or(Some(e)),
                        }
                    }
                )+
                Err(failed.unwrap_or_else(|| record.unknown_kind()))
            }
        }
    };
}
