//! Fresh identifiers for what the engine's callers create: deployment ids, group and
//! application ids, claims. The core has no randomness, so they are drawn here.

/// 64 unpredictable bits, from the standard library's random hash keys (drawn per process and
/// changed on every call) and the time.
pub fn entropy() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A hook execution id: 192 bits from the operating system's random source, in URL-safe
/// characters. Holding one is what authorises a hook function's report, so it must not be
/// guessable.
pub fn execution_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(crate::core::digest::hex(&bytes))
}

/// A random UUID (version 4), as CodeDeploy's application and group ids are.
pub fn uuid() -> String {
    let a = entropy();
    let b = entropy();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let a = uuid();
        let b = uuid();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{a}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{a}");
    }
}
