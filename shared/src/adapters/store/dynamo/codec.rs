//! Keys and attribute values: how records are named (`pk`/`sk`) and how values
//! are read from and written to DynamoDB attributes; SDK errors as store errors.

#[allow(unused_imports)]
use super::*;

pub(super) type Record = HashMap<String, AttributeValue>;

pub(super) const USERS: &str = "USERS";

pub(super) const OUTBOX: &str = "OUTBOX";

pub(super) const RUNS: &str = "RUNS";

/// Per clock hour, how many unclaimed deliveries were kept (sk: the hour, epoch s).
pub(super) const UNCLAIMED_COUNT: &str = "D-HOURS";

pub(super) fn backend_pk(user: &str) -> String {
    format!("U#{user}")
}

pub(super) fn backend_sk(name: &str) -> String {
    format!("B#{name}")
}

pub(super) fn token_pk(hash: &str) -> String {
    format!("H#{hash}")
}

pub(super) fn item_pk(user: &str) -> String {
    format!("I#{user}")
}

/// DynamoDB refuses partition keys over 2048 bytes; a longer lookup key (a payload can
/// carry any item id) is stored under its SHA-256 instead.
pub(super) const MAX_PK_BYTES: usize = 2048;

pub(super) fn pointer_pk(user: &str, key: &str) -> String {
    let pk = format!("K#{user}#{key}");
    if pk.len() <= MAX_PK_BYTES {
        return pk;
    }
    use sha2::Digest;
    format!(
        "K#{user}#~{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

pub(super) fn delivery_pk(user: Option<&str>) -> String {
    match user {
        Some(u) => format!("D#{u}"),
        None => "D-".to_string(),
    }
}

pub(super) fn is_backend_key(key: &str) -> bool {
    crate::domain::sync::LookupKey::decode(key).is_some_and(|k| k.is_backend())
}

pub(super) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Record {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("sk".to_string(), AttributeValue::S(sk.into())),
    ])
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn list(v: &[String]) -> AttributeValue {
    AttributeValue::L(v.iter().map(|k| s(k.clone())).collect())
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(super) fn get_s<'a>(r: &'a Record, name: &str) -> Result<&'a str> {
    match r.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt(format!(
            "record {} lacks string attribute {name}",
            describe(r)
        ))),
    }
}

pub(super) fn get_u64(r: &Record, name: &str) -> Result<u64> {
    match r.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| corrupt(format!("record {}: {name} = {v:?}", describe(r)))),
        _ => Err(corrupt(format!(
            "record {} lacks number attribute {name}",
            describe(r)
        ))),
    }
}

pub(super) fn get_list(r: &Record, name: &str) -> Result<Vec<String>> {
    match r.get(name) {
        None => Ok(Vec::new()),
        Some(AttributeValue::L(v)) => v
            .iter()
            .map(|e| match e {
                AttributeValue::S(k) => Ok(k.clone()),
                _ => Err(corrupt(format!("record {}: {name} entry", describe(r)))),
            })
            .collect(),
        Some(_) => Err(corrupt(format!(
            "record {}: {name} is no list",
            describe(r)
        ))),
    }
}

/// The key of a record, for error messages (never its data: it may hold tokens).
pub(super) fn describe(r: &Record) -> String {
    let part = |n: &str| match r.get(n) {
        Some(AttributeValue::S(v)) => v.as_str(),
        _ => "?",
    };
    format!("{}/{}", part("pk"), part("sk"))
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(corrupt)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(r: &Record, name: &str) -> Result<T> {
    serde_json::from_str(get_s(r, name)?)
        .map_err(|e| corrupt(format!("record {}: {name}: {e}", describe(r))))
}

pub(super) fn parse_time(r: &Record, name: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(get_s(r, name)?)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format!("record {}: {name}: {e}", describe(r))))
}

/// An item record (or copy) with its version and the `B#` records holding its copies.
pub(super) fn parse_item(r: &Record) -> Result<(Item, Vec<String>)> {
    let mut item: Item = from_json(r, "data")?;
    item.version = get_u64(r, "version")?;
    Ok((item, get_list(r, "bkeys")?))
}

pub(super) fn unavailable<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("DynamoDB {op}: {}", DisplayErrorContext(&e)))
}

pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("DynamoDB request: {e}"))
}
