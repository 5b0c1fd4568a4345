//! What text from outside may hold: bounded lengths, no control, bidirectional or invisible
//! characters (each makes two different strings look alike, or one look like another), and the
//! UTS #39 skeleton that tells confusable identifiers apart.

/// Longest external id, event id or owner reference part (bytes).
pub const MAX_ID: usize = 256;
/// Longest source name (bytes).
pub const MAX_SOURCE: usize = 64;
/// Longest display name or purpose (bytes).
pub const MAX_NAME: usize = 1024;
/// Longest attribute name (bytes).
pub const MAX_ATTRIBUTE_NAME: usize = 128;
/// Longest attribute value (bytes).
pub const MAX_ATTRIBUTE_VALUE: usize = 4096;
/// Most attributes of one identity.
pub const MAX_ATTRIBUTES: usize = 100;

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("longer than {max} bytes ({len})")]
    TooLong { len: usize, max: usize },
    #[error("must not contain control characters (U+{0:04X})")]
    Control(u32),
    #[error("must not contain bidirectional or invisible formatting characters (U+{0:04X})")]
    Invisible(u32),
}

/// Bidirectional controls, zero-width and other invisible formatting characters.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Check `s`: at most `max` bytes; no control character (a tab only where `tab_ok`), no
/// bidirectional or invisible one.
pub fn check(s: &str, max: usize, tab_ok: bool) -> Result<(), TextError> {
    if s.len() > max {
        return Err(TextError::TooLong { len: s.len(), max });
    }
    for c in s.chars() {
        if c.is_control() && !(tab_ok && c == '\t') {
            return Err(TextError::Control(u32::from(c)));
        }
        if invisible(c) {
            return Err(TextError::Invisible(u32::from(c)));
        }
    }
    Ok(())
}

/// The UTS #39 skeleton of `s`: two strings people would read as the same have the same one.
pub fn skeleton(s: &str) -> String {
    unicode_security::skeleton(s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_skeleton_and_invisible_characters_are_refused() {
        assert_eq!(skeleton("hr:\u{0415}1000"), skeleton("hr:E1000"), "Cyrillic Е");
        assert_ne!(skeleton("hr:E1000"), skeleton("hr:E1001"));
        assert_eq!(check("E1000\u{200B}", MAX_ID, false), Err(TextError::Invisible(0x200B)));
        assert_eq!(check("abc\u{202E}fed", MAX_ID, false), Err(TextError::Invisible(0x202E)));
        assert_eq!(check("a\tb", MAX_ID, false), Err(TextError::Control(9)));
        assert!(check("a\tb", MAX_ID, true).is_ok());
        assert_eq!(
            check(&"x".repeat(MAX_ID + 1), MAX_ID, false),
            Err(TextError::TooLong { len: MAX_ID + 1, max: MAX_ID })
        );
        assert!(check("Zoë Ångström-李", MAX_NAME, false).is_ok());
    }
}
