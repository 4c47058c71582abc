//! Reading JSON the way media servers and their templates write it, for every webhook
//! parser and API client: [`Scalar`] takes a value of any JSON type where a string,
//! number or boolean belongs (Tautulli writes every value as a string, Jellyfin
//! templates print Python's `True`, Plex writes numbers), and [`object_body`] /
//! [`python_literals`] deal with bodies that are not quite a JSON object.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::adapters::media::{json_error, ParseError};
use crate::domain::model::Source;

/// One JSON value read without insisting on its type. Null and absent are
/// [`Scalar::Absent`]; an object or array where a scalar belongs is skipped unread and
/// reads as absent too. Strings borrow from the input when they have no escapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Scalar<'a> {
    #[default]
    Absent,
    Str(Cow<'a, str>),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl<'a> Scalar<'a> {
    /// The value as text: a trimmed non-blank string, or a number written in decimal
    /// (a whole float without its fraction); booleans are not text.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => {
                let t = s.trim();
                if t.is_empty() {
                    None
                } else if t.len() == s.len() {
                    Some(s.clone())
                } else {
                    Some(Cow::Owned(t.to_owned()))
                }
            }
            Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
            Scalar::UInt(u) => Some(Cow::Owned(u.to_string())),
            Scalar::Float(f) if f.is_finite() => {
                Some(Cow::Owned(if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    format!("{}", *f as i64)
                } else {
                    f.to_string()
                }))
            }
            _ => None,
        }
    }

    /// [`Scalar::text`], unless it is a template placeholder Tautulli left unfilled
    /// (`{user_id}`): the Plex-shaped payloads may come through Tautulli's template.
    pub fn filled(&self) -> Option<Cow<'a, str>> {
        self.text().filter(|t| !is_placeholder(t))
    }

    /// [`Scalar::text`] as an owned string.
    pub fn string(&self) -> Option<String> {
        self.text().map(Cow::into_owned)
    }

    /// A boolean, also from `"true"`/`"True"`/`"false"` strings and 0/1.
    pub fn flag(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) => {
                let s = s.trim();
                if s.eq_ignore_ascii_case("true") || s == "1" {
                    Some(true)
                } else if s.eq_ignore_ascii_case("false") || s == "0" {
                    Some(false)
                } else {
                    None
                }
            }
            Scalar::Int(0) | Scalar::UInt(0) => Some(false),
            Scalar::Int(1) | Scalar::UInt(1) => Some(true),
            _ => None,
        }
    }

    /// A non-negative whole number, also from a numeric string; fractions are truncated.
    pub fn u64(&self) -> Option<u64> {
        match self {
            Scalar::UInt(u) => Some(*u),
            Scalar::Int(i) => u64::try_from(*i).ok(),
            Scalar::Float(f) => float_u64(*f),
            Scalar::Str(s) => {
                let s = s.trim();
                s.parse::<u64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().and_then(float_u64))
            }
            _ => None,
        }
    }

    pub fn u32(&self) -> Option<u32> {
        self.u64().and_then(|v| u32::try_from(v).ok())
    }

    /// A whole number, possibly negative (unix times); fractions are truncated.
    pub fn i64(&self) -> Option<i64> {
        match self {
            Scalar::Int(i) => Some(*i),
            Scalar::UInt(u) => i64::try_from(*u).ok(),
            Scalar::Float(f) if f.is_finite() && f.abs() < 9.0e18 => Some(f.trunc() as i64),
            Scalar::Str(s) => {
                let s = s.trim();
                s.parse::<i64>().ok().or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                        .map(|f| f.trunc() as i64)
                })
            }
            _ => None,
        }
    }

    /// A year; zero or out of range is `None`.
    pub fn year(&self) -> Option<i32> {
        self.i64()
            .filter(|y| (1..=9999).contains(y))
            .and_then(|y| i32::try_from(y).ok())
    }
}

fn float_u64(f: f64) -> Option<u64> {
    (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then(|| f.trunc() as u64)
}

/// `{user_id}`: a Tautulli placeholder left unfilled.
fn is_placeholder(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with('{')
        && s.ends_with('}')
        && !s[1..s.len() - 1].contains(['{', '}', '"', ':'])
}

// `'de: 'a` (not `'de == 'a`) so derived structs with a `Scalar<'a>` field borrow.
impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Absent)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Absent)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Scalar::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Absent)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Absent)
    }
}

/// The body, if it starts a JSON object (a byte-order mark is already off:
/// `Payload::new`); else the error to answer: not JSON at all, or JSON that is not an object (a struct would also
/// accept an array positionally, so only objects go in). The Plex family's messages
/// say "a JSON array", the MediaBrowser family's "an array": both are kept as written.
pub(crate) fn object_body(source: Source, json: &[u8]) -> Result<&[u8], ParseError> {
    let plex = matches!(source, Source::Plex | Source::Tautulli);
    let what = match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => return Ok(json),
        None if plex => {
            return Err(ParseError::bad(format!(
                "{source} payload is empty; expected a JSON object"
            )))
        }
        None => return Err(ParseError::bad(format!("{source} payload is empty"))),
        // Anything else that is valid JSON starts with one of these.
        Some(b'[') => ["an array", "a JSON array"],
        Some(b'"') => ["a string", "a JSON string"],
        Some(b't' | b'f') => ["a boolean", "a JSON boolean"],
        Some(b'n') => ["null", "JSON null"],
        Some(_) => ["a number", "a JSON number"],
    };
    match serde_json::from_slice::<IgnoredAny>(json) {
        Ok(_) => Err(ParseError::bad(format!(
            "{source} payload is {}, not a JSON object",
            what[usize::from(plex)]
        ))),
        Err(e) => Err(json_error(source, e)),
    }
}

/// Deserialize a whole payload that must be a JSON object ([`object_body`]).
pub(crate) fn read_object<'a, T: Deserialize<'a>>(
    source: Source,
    json: &'a [u8],
) -> Result<T, ParseError> {
    serde_json::from_slice(object_body(source, json)?).map_err(|e| json_error(source, e))
}

/// Rewrite Python-style `True`, `False` and `None` outside string literals to `true`,
/// `false` and `null`, keeping the length (so error positions stay right). `None` when
/// there was nothing to rewrite (the body is broken some other way).
pub(crate) fn python_literals(json: &[u8]) -> Option<Vec<u8>> {
    const WORDS: [(&[u8], &[u8]); 3] =
        [(b"True", b"true"), (b"False", b"false"), (b"None", b"null")];
    let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let starts_word = i == 0 || !is_word(json.get(i.wrapping_sub(1)));
        if starts_word && matches!(b, b'T' | b'F' | b'N') {
            let hit = WORDS.iter().find(|(word, _)| {
                json.get(i..).is_some_and(|rest| rest.starts_with(word))
                    && !is_word(json.get(i + word.len()))
            });
            if let Some((word, replacement)) = hit {
                let buf = out.get_or_insert_with(|| json.to_vec());
                if let Some(dst) = buf.get_mut(i..i + word.len()) {
                    dst.copy_from_slice(replacement);
                }
                i += word.len();
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Scalar<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn any_type_is_read_and_nested_values_are_absent() {
        assert_eq!(read(r#"" 42 ""#).text().as_deref(), Some("42"));
        assert_eq!(read("42").u32(), Some(42));
        assert_eq!(read(r#""7.9""#).u64(), Some(7));
        assert_eq!(read("-5").u64(), None);
        assert_eq!(read("-5").i64(), Some(-5));
        assert_eq!(read("2.0").text().as_deref(), Some("2"));
        assert_eq!(read(r#""True""#).flag(), Some(true));
        assert_eq!(read("0").flag(), Some(false));
        assert_eq!(read(r#"{"a":[1]}"#), Scalar::Absent);
        assert_eq!(read("[1,2]"), Scalar::Absent);
        assert_eq!(read("null"), Scalar::Absent);
        assert_eq!(read(r#""0""#).year(), None);
        assert_eq!(read(r#""""#).text(), None);
    }

    #[test]
    fn unfilled_placeholders_are_not_filled_text() {
        assert_eq!(read(r#""{user_id}""#).filled(), None);
        assert_eq!(read(r#""{user_id}""#).text().as_deref(), Some("{user_id}"));
        assert_eq!(
            read(r#""{\"a\":1}""#).filled().as_deref(),
            Some("{\"a\":1}")
        );
    }

    #[test]
    fn python_literal_scanner_respects_strings() {
        assert_eq!(python_literals(br#"{"a":"True"}"#), None);
        assert_eq!(
            python_literals(br#"{"a":True,"b":[False,None],"c":"x\"True"}"#).as_deref(),
            Some(&br#"{"a":true,"b":[false,null],"c":"x\"True"}"#[..])
        );
        // Only whole words.
        assert_eq!(python_literals(br#"{"a":Truex}"#), None);
    }
}
