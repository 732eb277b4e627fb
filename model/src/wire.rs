//! Enums that travel as text: in JSON, in URLs and in database columns.
//!
//! Every such enum is declared with [`wire_enum!`](crate::wire_enum), which writes its one table of names: the serde
//! names, `as_str`, a lenient-free `parse` and the strict `decode` all come from it, so a stored
//! value Palisade does not know is an error that names the value, never a silent default.

/// A text that names no value of an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What the text should have named ("engine", "rollout state").
    pub what: &'static str,
    pub text: String,
    /// The texts that name a value.
    pub expected: &'static [&'static str],
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown {} `{}`: expected one of {}",
            self.what,
            self.text,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownValue {}

#[cfg(feature = "ssr")]
impl From<UnknownValue> for sqlx::Error {
    fn from(err: UnknownValue) -> Self {
        sqlx::Error::Decode(Box::new(err))
    }
}

/// Declare an enum whose values are written as fixed texts:
///
/// ```text
/// wire_enum! {
///     /// How hard a policy bites.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
///     pub enum Mode as "mode" {
///         Audit = "audit",
///         Warn = "warn",
///     }
/// }
/// ```
///
/// gives `Mode::ALL` (in declaration order), `as_str`, `parse` (exact match, `None` otherwise),
/// `decode` (an [`UnknownValue`] error otherwise), `Display` and `FromStr`, and the serde name of
/// each variant.
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The text this value is written as.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value written as exactly `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The value written as exactly `text`, or an error naming `text`.
            pub fn decode(text: &str) -> Result<$name, $crate::wire::UnknownValue> {
                $name::parse(text).ok_or_else(|| $crate::wire::UnknownValue {
                    what: $what,
                    text: text.to_owned(),
                    expected: &[$($text),+],
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::wire::UnknownValue;

            fn try_from(text: String) -> Result<$name, Self::Error> {
                $name::decode(&text)
            }
        }

        $crate::__wire_enum_server!($name, [$($text),+]);

        impl std::str::FromStr for $name {
            type Err = $crate::wire::UnknownValue;

            fn from_str(text: &str) -> Result<$name, Self::Err> {
                $name::decode(text)
            }
        }
    };
}

/// The server half of [`wire_enum!`]: present only when this crate is built for the server. The
/// value is stored as its text, and its JSON Schema (for the API document) lists every text.
#[cfg(feature = "ssr")]
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_enum_server {
    ($name:ident, [$($text:literal),+]) => {
        /// Stored as its text; reading an unknown text is a decoding error that names it.
        impl $crate::wire::sqlx::Type<$crate::wire::sqlx::Any> for $name {
            fn type_info() -> $crate::wire::sqlx::any::AnyTypeInfo {
                <String as $crate::wire::sqlx::Type<$crate::wire::sqlx::Any>>::type_info()
            }
        }

        impl<'r> $crate::wire::sqlx::Decode<'r, $crate::wire::sqlx::Any> for $name {
            fn decode(
                value: $crate::wire::sqlx::any::AnyValueRef<'r>,
            ) -> Result<Self, $crate::wire::sqlx::error::BoxDynError> {
                let text =
                    <String as $crate::wire::sqlx::Decode<'r, $crate::wire::sqlx::Any>>::decode(
                        value,
                    )?;
                Ok($name::decode(&text)?)
            }
        }

        impl $crate::wire::schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(
                _: &mut $crate::wire::schemars::SchemaGenerator,
            ) -> $crate::wire::schemars::Schema {
                $crate::wire::enum_schema(&[$($text),+])
            }
        }
    };
}

/// Without the server build there is no database or schema half.
#[cfg(not(feature = "ssr"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_enum_server {
    ($name:ident, [$($text:literal),+]) => {};
}

/// The JSON Schema of a [`wire_enum!`]: one of `texts`.
#[cfg(feature = "ssr")]
#[doc(hidden)]
pub fn enum_schema(texts: &[&str]) -> schemars::Schema {
    let mut schema = schemars::Schema::default();
    schema.insert("type".into(), "string".into());
    schema.insert("enum".into(), texts.to_vec().into());
    schema
}

#[cfg(feature = "ssr")]
#[doc(hidden)]
pub use schemars;

#[cfg(feature = "ssr")]
#[doc(hidden)]
pub use sqlx;

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    wire_enum! {
        /// A test enum.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum Light as "light" {
            /// Stop.
            Red = "red",
            YellowNow = "yellow_now",
        }
    }

    #[test]
    fn one_table_gives_every_form() {
        assert_eq!(Light::ALL, [Light::Red, Light::YellowNow]);
        for light in Light::ALL {
            assert_eq!(Light::parse(light.as_str()), Some(light));
            assert_eq!(light.to_string(), light.as_str());
            let json = serde_json::to_string(&light).unwrap();
            assert_eq!(json, format!("\"{}\"", light.as_str()));
            assert_eq!(serde_json::from_str::<Light>(&json).unwrap(), light);
        }
    }

    #[test]
    fn an_unknown_text_is_an_error_that_names_it() {
        assert_eq!(Light::parse("Red"), None);
        let err = Light::decode("blue").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown light `blue`: expected one of red, yellow_now"
        );
        assert!("green".parse::<Light>().is_err());
        assert!(serde_json::from_str::<Light>("\"blue\"").is_err());
    }
}
