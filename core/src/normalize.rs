//! Normalising text for matching and for generated values.
//!
//! Correlation compares *normalised* keys — `" Ana@X.com "` and `"ana@x.com"`
//! are the same work email — but must not allocate for every record it looks
//! at, so normalisation is offered as a character iterator that hashing and
//! equality consume directly.

use alloc::string::String;
use core::hash::Hasher;

/// How a correlation key's text is normalised before comparing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// Surrounding white space removed.
    Trim,
    /// Surrounding white space removed and case folded (emails, logins).
    TrimFold,
}

/// The normalised characters of `text`, without allocating.
pub fn normalized(text: &str, how: Normalization) -> impl Iterator<Item = char> + '_ {
    let fold = how == Normalization::TrimFold;
    text.trim().chars().flat_map(move |c| {
        let mut lower = c.to_lowercase();
        let (first, rest) = if fold {
            (lower.next().unwrap_or(c), Some(lower))
        } else {
            (c, None)
        };
        core::iter::once(first).chain(rest.into_iter().flatten())
    })
}

/// True when `text` normalises to nothing (empty or white space only).
pub fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Equality of normalised texts, without allocating.
pub fn normalized_eq(a: &str, b: &str, how: Normalization) -> bool {
    if how == Normalization::TrimFold && a.is_ascii() && b.is_ascii() {
        return a.trim().eq_ignore_ascii_case(b.trim());
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
    let t = text.trim();
    if how == Normalization::Trim || !t.bytes().any(|b| b.is_ascii_uppercase() || b >= 0x80) {
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
