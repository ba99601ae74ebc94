//! This machine's name: the default station name, and part of every claim
//! owner, so the journal tells which desk holds what.

/// Longest host name kept (the journal bounds every name it stores).
const MAX_LEN: usize = 64;

/// The host name, printable ASCII only, at most 64 bytes; `localhost` when
/// the system gives none.
///
/// ```
/// let name = kart_perso::host::name();
/// assert!(!name.is_empty() && name.len() <= 64);
/// assert!(name.bytes().all(|b| b.is_ascii_graphic()));
/// ```
pub fn name() -> String {
    let raw = gethostname::gethostname();
    let clean: String = raw
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_graphic)
        .take(MAX_LEN)
        .collect();
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean
    }
}
