//! Idempotency keys of a batch: derived, never random, so a resume (in this process or
//! another) sends exactly the key it sent before. Journaled and re-sent by later versions:
//! their derivation never changes (a changed key is a second run).

use sha2::{Digest, Sha256};

/// A deterministic key: `prefix-` and 40 hex digits of the parts' SHA-256.
fn derived_key(prefix: &str, parts: &[&str]) -> String {
    let digest = hex::encode(Sha256::digest(parts.join("\0").as_bytes()));
    format!("{prefix}-{}", &digest[..40])
}

/// An item's run: the batch, the item key and attempt, the technique, and the exact body.
pub(crate) fn run_key(
    batch_id: &str,
    item: &str,
    attempt: i64,
    technique_id: &str,
    body: &str,
) -> String {
    let attempt = attempt.to_string();
    derived_key(
        "flora-batch",
        &[batch_id, item, &attempt, technique_id, body],
    )
}

/// A local file's upload: the batch, the file's content and the slot's kind. An upload the
/// journal lost in a crash is sent again under the same key, and FLORA replays its asset.
pub(crate) fn upload_key(batch_id: &str, sha256: &str, kind: &str) -> String {
    derived_key("flora-batch-upload", &[batch_id, sha256, kind])
}

#[cfg(test)]
mod tests {
    /// Computed independently (Python hashlib): the derivation is a contract with every
    /// journal already written.
    #[test]
    fn derived_keys_are_stable() {
        assert_eq!(
            super::run_key("b1", "k", 0, "tech_x", "[]"),
            "flora-batch-bc181c0e8066e17c3e352295348cd6273b782fc5"
        );
    }
}
