//! Delivery bodies at rest: deflate-compressed (`flate2` over the pure-Rust
//! `miniz_oxide`), so a 15 KB Plex payload costs one DynamoDB write unit, not fifteen.
//! The api inflates them again (`?body=true` returns the payload as the log kept it: as
//! received, less what no parser reads, `adapters::media::for_log`).

use std::io::{Read, Write};

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use crate::ports::store::{Result, StoreError};

/// Compress a delivery body for storage.
pub fn pack(body: &str) -> Result<Vec<u8>> {
    let mut enc = DeflateEncoder::new(Vec::with_capacity(body.len() / 4), Compression::best());
    enc.write_all(body.as_bytes())
        .and_then(|()| enc.finish())
        .map_err(|e| StoreError::Corrupt(format!("cannot compress a delivery body: {e}")))
}

/// The body as it was before [`pack`].
pub fn unpack(bytes: &[u8]) -> Result<String> {
    let mut out = String::with_capacity(bytes.len() * 4);
    DeflateDecoder::new(bytes)
        .read_to_string(&mut out)
        .map_err(|e| StoreError::Corrupt(format!("stored delivery body unreadable: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_smaller() {
        let body = r#"{"event":"media.scrobble","Metadata":{"title":"x"}}"#.repeat(200);
        let packed = pack(&body).unwrap();
        assert!(
            packed.len() * 10 < body.len(),
            "{} of {}",
            packed.len(),
            body.len()
        );
        assert_eq!(unpack(&packed).unwrap(), body);
        assert_eq!(unpack(&pack("").unwrap()).unwrap(), "");
        assert!(unpack(b"not deflate at all \xff\xfe").is_err());
    }
}
