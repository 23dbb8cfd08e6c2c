//! Normalising text for matching and for generated values.
//!
//! Correlation compares *normalised* keys — `" Ana@X.com "` and `"ana@x.com"`
//! are the same work email — but must not allocate for every record it looks
//! at, so normalisation is offered as a character iterator that hashing and
//! equality consume directly. Pure-ASCII text (nearly every key) never goes
//! through the Unicode tables.
//!
//! Correlation keys are also normalised to Unicode NFKC
//! ([`Normalization::Key`], [`Normalization::KeyFold`]), so a key cannot
//! differ from another only by a compatibility character. Such a key, or one
//! mixing scripts, is a *look-alike* ([`lookalike`]): the planner reports it
//! as a conflict instead of linking or creating, because `marK@x` (Kelvin
//! sign) or `mаrk@x` (Cyrillic `а`) is how an attacker — or a typo in an
//! input method — makes one person's key pass for another's.

use alloc::string::String;
use core::hash::Hasher;
use core::str::Chars;

use unicode_normalization::{Recompositions, UnicodeNormalization};
use unicode_security::{GeneralSecurityProfile, MixedScript};

/// How a text is normalised before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// Surrounding white space removed (field values).
    Trim,
    /// Surrounding white space removed and case folded (email and login
    /// field values).
    TrimFold,
    /// A correlation key compared exactly (employee numbers): trimmed, NFKC.
    Key,
    /// A correlation key compared without case (emails, logins): trimmed,
    /// NFKC, then lower-cased (Unicode's full lowercase mapping, which is
    /// case folding for every letter but a handful such as `ß`).
    KeyFold,
}

impl Normalization {
    const fn folds(self) -> bool {
        matches!(self, Normalization::TrimFold | Normalization::KeyFold)
    }

    const fn nfkc(self) -> bool {
        matches!(self, Normalization::Key | Normalization::KeyFold)
    }
}

/// The characters before case folding: ASCII as is, anything else through
/// NFKC when the normalisation asks for it.
enum Base<'a> {
    Plain(Chars<'a>),
    Nfkc(Recompositions<Chars<'a>>),
}

/// The normalised characters of a text; see [`normalized`].
pub struct Normalized<'a> {
    base: Base<'a>,
    fold: bool,
    /// The rest of a multi-character lowercase mapping (`İ` → `i̇`).
    pending: Option<core::char::ToLowercase>,
}

impl Iterator for Normalized<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        if let Some(rest) = &mut self.pending {
            match rest.next() {
                Some(c) => return Some(c),
                None => self.pending = None,
            }
        }
        let c = match &mut self.base {
            Base::Plain(chars) => chars.next()?,
            Base::Nfkc(chars) => chars.next()?,
        };
        if !self.fold || c.is_ascii() {
            return Some(if self.fold { c.to_ascii_lowercase() } else { c });
        }
        let mut lower = c.to_lowercase();
        let first = lower.next().unwrap_or(c);
        self.pending = Some(lower);
        Some(first)
    }
}

/// `str::trim`, with a fast exit for the common case: text that starts and
/// ends with a visible ASCII character has nothing to trim, which two byte
/// tests tell, where `str::trim` decodes UTF-8 from both ends. Every compare
/// and hash of a record's values trims, so this is on the hottest path of
/// [`crate::Prepared::new`].
#[inline]
pub fn trim(text: &str) -> &str {
    let visible = |b: &u8| (b'!'..=b'~').contains(b);
    match text.as_bytes() {
        [first, .., last] if visible(first) && visible(last) => text,
        [only] if visible(only) => text,
        _ => text.trim(),
    }
}

/// The normalised characters of `text`, without allocating.
pub fn normalized(text: &str, how: Normalization) -> Normalized<'_> {
    let t = trim(text);
    let base = if how.nfkc() && !t.is_ascii() {
        Base::Nfkc(t.nfkc())
    } else {
        Base::Plain(t.chars())
    };
    Normalized {
        base,
        fold: how.folds(),
        pending: None,
    }
}

/// Why a correlation key is a look-alike (see [`lookalike`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookalike {
    /// A character that is not allowed in identifiers by Unicode's general
    /// security profile (UTS #39): compatibility characters such as the
    /// Kelvin sign `K` or full-width letters, invisible and format
    /// characters, symbols.
    Restricted(char),
    /// One label (the text between `@` and `.`) mixes scripts, such as a
    /// Cyrillic `а` among Latin letters.
    MixedScript,
}

impl core::fmt::Display for Lookalike {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Lookalike::Restricted(c) => {
                write!(f, "character U+{:04X} is not a plain letter", *c as u32)
            }
            Lookalike::MixedScript => f.write_str("it mixes scripts"),
        }
    }
}

/// Whether a correlation key could pass for another key: a non-ASCII
/// character that UTS #39 restricts in identifiers, or a label (split on
/// `@` and `.`) that is not single-script. ASCII text is never a look-alike
/// (and costs one scan); a key written wholly in one script (`élodie@acme.fr`,
/// `маша@почта.рф`) is not one either. Whole-script confusables (a key all in
/// Cyrillic letters that look Latin) are out of reach of this check.
pub fn lookalike(text: &str) -> Option<Lookalike> {
    let t = trim(text);
    if t.is_ascii() {
        return None;
    }
    if let Some(c) = t.chars().find(|c| !c.is_ascii() && !c.identifier_allowed()) {
        return Some(Lookalike::Restricted(c));
    }
    t.split(['@', '.'])
        .any(|label| !label.is_single_script())
        .then_some(Lookalike::MixedScript)
}

/// True when `text` normalises to nothing (empty or white space only).
pub fn is_blank(text: &str) -> bool {
    trim(text).is_empty()
}

/// Equality of normalised texts, without allocating.
pub fn normalized_eq(a: &str, b: &str, how: Normalization) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return if how.folds() {
            trim(a).eq_ignore_ascii_case(trim(b))
        } else {
            trim(a) == trim(b)
        };
    }
    normalized(a, how).eq(normalized(b, how))
}

/// Feeds the normalised text into `hasher`, without allocating.
///
/// Hashers such as foldhash are not streaming-stable (`write("ab")` differs
/// from `write("a"); write("b")`), so bytes are always fed in fixed-size
/// chunks: the ASCII fast path and the Unicode path then agree.
pub fn hash_normalized<H: Hasher>(text: &str, how: Normalization, hasher: &mut H) {
    const CHUNK: usize = 32;
    let t = trim(text);
    let unchanged = if how.folds() {
        !t.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80)
    } else {
        !how.nfkc() || t.is_ascii()
    };
    if unchanged {
        for chunk in t.as_bytes().chunks(CHUNK) {
            hasher.write(chunk);
        }
    } else {
        let mut buf = [0u8; CHUNK + 4];
        let mut len = 0;
        for c in normalized(t, how) {
            len += c.encode_utf8(&mut buf[len..]).len();
            if len >= CHUNK {
                hasher.write(&buf[..CHUNK]);
                buf.copy_within(CHUNK..len, 0);
                len -= CHUNK;
            }
        }
        if len > 0 {
            hasher.write(&buf[..len]);
        }
    }
    hasher.write_u8(0xff);
}

/// Normalised, owned text: what a plan shows and what is written.
pub fn normalize(text: &str, how: Normalization) -> String {
    normalized(text, how).collect()
}

/// Latin letters with their accents removed (`é` → `e`, `ß` → `ss`,
/// `Œ` → `OE`), other characters unchanged.
///
/// Covers the Latin-1 and Latin Extended-A letters of the languages our
/// tenants write names in (French, German, Spanish, Portuguese, Nordic,
/// Polish, Czech …) without pulling a Unicode normalisation table into a
/// `no_std` crate.
pub fn fold_accents(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match fold_char(c) {
            Some(s) => out.push_str(s),
            None => out.push(c),
        }
    }
    out
}

fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ď' | 'Đ' | 'Ð' => "D",
        'ď' | 'đ' | 'ð' => "d",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' => "T",
        'ţ' | 'ť' | 'ŧ' => "t",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ÿ' | 'Ŷ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        'Þ' => "TH",
        'þ' => "th",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn trim_agrees_with_str_trim() {
        for t in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "ab",
            "a b",
            "\u{a0}a",
            "a\u{2003}",
            "é",
            " é ",
            "\tx\n",
            "~",
            "!x!",
            "\u{85}a\u{85}",
            "\u{7f}a",
        ] {
            assert_eq!(trim(t), t.trim(), "{t:?}");
        }
    }

    use super::*;
    use core::hash::BuildHasher;

    fn hash(text: &str, how: Normalization) -> u64 {
        let mut h = foldhash::fast::FixedState::with_seed(7).build_hasher();
        hash_normalized(text, how, &mut h);
        h.finish()
    }

    #[test]
    fn emails_compare_trimmed_and_case_folded() {
        let how = Normalization::TrimFold;
        assert!(normalized_eq(
            " Ana.Lopez@ACME.fr ",
            "ana.lopez@acme.fr",
            how
        ));
        assert!(normalized_eq("ÉLODIE@acme.fr", "élodie@acme.fr", how));
        assert!(!normalized_eq("ana@acme.fr", "anna@acme.fr", how));
        assert_eq!(hash(" Ana@ACME.fr", how), hash("ana@acme.fr", how));
        assert_eq!(hash("ÉLODIE@acme.fr", how), hash("élodie@acme.fr", how));
        let long = "Jean-Baptiste.De-La-Fontaine-Saint-Éloi@Example-Company.fr";
        assert_eq!(hash(long, how), hash(&normalize(long, how), how));
        assert_eq!(normalize(" ÉLODIE@Acme.fr", how), "élodie@acme.fr");
    }

    #[test]
    fn keys_are_nfkc_normalised_once_hashed_and_compared_alike() {
        let how = Normalization::KeyFold;
        // Kelvin sign, full-width m, decomposed é: equal to their plain forms.
        for (odd, plain) in [
            ("mar\u{212A}@acme.fr", "mark@acme.fr"),
            ("\u{FF4D}ark@acme.fr", "mark@acme.fr"),
            ("e\u{301}lodie@acme.fr", "\u{E9}lodie@acme.fr"),
        ] {
            assert!(normalized_eq(odd, plain, how), "{odd}");
            assert_eq!(hash(odd, how), hash(plain, how), "{odd}");
            assert_eq!(normalize(odd, how), plain);
        }
        // Field values are not NFKC'd: a change of form is a change.
        assert!(!normalized_eq(
            "\u{FF4D}ark",
            "mark",
            Normalization::TrimFold
        ));
        assert!(!normalized_eq("\u{FF4D}", "m", Normalization::Trim));
        assert!(normalized_eq("\u{FF21}12", "A12", Normalization::Key));
        assert!(!normalized_eq("a12", "A12", Normalization::Key));
        // A Cyrillic а stays itself.
        assert!(!normalized_eq("m\u{430}rk@acme.fr", "mark@acme.fr", how));
    }

    #[test]
    fn lookalikes_are_restricted_characters_or_mixed_scripts() {
        assert_eq!(lookalike("mark@acme.fr"), None);
        assert_eq!(lookalike("\u{E9}lodie@acme.fr"), None);
        assert_eq!(lookalike("e\u{301}lodie@acme.fr"), None);
        assert_eq!(lookalike("маша@почта.рф"), None);
        assert_eq!(lookalike("маша@acme.fr"), None, "one script per label");
        assert_eq!(
            lookalike("mar\u{212A}@acme.fr"),
            Some(Lookalike::Restricted('\u{212A}'))
        );
        assert_eq!(
            lookalike("mark\u{200B}@acme.fr"),
            Some(Lookalike::Restricted('\u{200B}'))
        );
        assert_eq!(
            lookalike("m\u{430}rk@acme.fr"),
            Some(Lookalike::MixedScript)
        );
        assert_eq!(
            lookalike("mark@\u{430}cme.fr"),
            Some(Lookalike::MixedScript)
        );
    }

    #[test]
    fn employee_numbers_keep_case() {
        let how = Normalization::Trim;
        assert!(normalized_eq(" A12 ", "A12", how));
        assert!(!normalized_eq("a12", "A12", how));
        assert_ne!(hash("a12", how), hash("A12", how));
    }

    #[test]
    fn folds_accents_of_common_names() {
        assert_eq!(
            fold_accents("Élodie Müller-Straße"),
            "Elodie Muller-Strasse"
        );
        assert_eq!(
            fold_accents("Łukasz Øvergård Œuvre"),
            "Lukasz Overgard OEuvre"
        );
        assert_eq!(fold_accents("日本"), "日本");
    }
}
