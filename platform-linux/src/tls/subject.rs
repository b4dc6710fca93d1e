//! A certificate's subject as text, for logs and `nfy status`.
//!
//! **Decision**: a small DER reader of its own rather than an X.509
//! crate: only the subject is needed, as display text, and the crates
//! that parse certificates whole (x509-parser, x509-cert) bring a parser
//! framework each into a binary whose size counts on the terminal. It
//! reads the certificate's outer structure just far enough to find the
//! subject (`Certificate` → `tbsCertificate` → after version, serial,
//! signature, issuer and validity), refuses anything it does not
//! understand (`None`), and never panics on input (checked by the tests,
//! on truncated and altered certificates).
//!
//! The text lists the attributes in the certificate's order, as OpenSSL
//! prints them (`C=DE, O=Shop, CN=lane-1`), with the usual short names
//! (`CN`, `O`, `OU`, `C`, `L`, `ST`, `serialNumber`, `DC`, `UID`,
//! `emailAddress`) and dotted OIDs for others; `,`, `+`, `=`, `\` and
//! `"` in values are escaped with `\` (RFC 4514), control characters as
//! `\XX`. It is cut at [`MAX_SUBJECT_TEXT`] bytes (ending in `...`).

/// Longest subject text, in bytes.
pub const MAX_SUBJECT_TEXT: usize = 256;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;

/// One DER element at the start of `input`: its tag, its contents and
/// what follows it. Definite lengths of at most 4 bytes only.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (contents, after) = rest.split_at_checked(len)?;
    Some((tag, contents, after))
}

/// The contents of the element at the start of `input` if its tag is
/// `tag`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match element(input)? {
        (t, contents, rest) if t == tag => Some((contents, rest)),
        _ => None,
    }
}

/// The subject of the DER certificate `der` as text (module docs);
/// `None` when `der` is not a certificate this reader understands.
pub fn subject_text(der: &[u8]) -> Option<String> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if let Some((VERSION, _, after)) = element(rest) {
        rest = after;
    }
    let (_serial, rest) = expect(rest, INTEGER)?;
    let (_signature, rest) = expect(rest, SEQUENCE)?;
    let (_issuer, rest) = expect(rest, SEQUENCE)?;
    let (_validity, rest) = expect(rest, SEQUENCE)?;
    let (subject, _) = expect(rest, SEQUENCE)?;
    name_text(subject)
}

/// A `Name` (a sequence of sets of attribute-value pairs) as text.
fn name_text(mut name: &[u8]) -> Option<String> {
    let mut out = String::new();
    while !name.is_empty() {
        let (mut rdn, rest) = expect(name, SET)?;
        name = rest;
        let mut first_in_rdn = true;
        while !rdn.is_empty() {
            let (pair, rest) = expect(rdn, SEQUENCE)?;
            rdn = rest;
            let (oid, value) = expect(pair, OID)?;
            let (tag, value, _) = element(value)?;
            if !out.is_empty() {
                out.push_str(if first_in_rdn { ", " } else { " + " });
            }
            first_in_rdn = false;
            out.push_str(&attribute_name(oid)?);
            out.push('=');
            push_value(&mut out, tag, value)?;
        }
    }
    Some(truncate(out))
}

/// The short name of an attribute type, or its dotted OID.
fn attribute_name(oid: &[u8]) -> Option<String> {
    let name = match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        _ => return dotted(oid),
    };
    Some(name.to_owned())
}

/// An OID's contents in dotted form.
fn dotted(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut out = format!("{}.{}", first / 40, first % 40);
    let mut value: u64 = 0;
    for &b in rest {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            out.push_str(&format!(".{value}"));
            value = 0;
        }
    }
    Some(out)
}

/// Appends an attribute value of DER string type `tag`, escaped.
fn push_value(out: &mut String, tag: u8, value: &[u8]) -> Option<()> {
    let text: String = match tag {
        // UTF8String, PrintableString, IA5String, TeletexString (read
        // as Latin-1 when not UTF-8), UniversalString is refused.
        0x0c | 0x13 | 0x16 | 0x14 => match std::str::from_utf8(value) {
            Ok(s) => s.to_owned(),
            Err(_) => value.iter().map(|&b| char::from(b)).collect(),
        },
        // BMPString: UTF-16, big-endian.
        0x1e => {
            let units: Vec<u16> = value
                .chunks(2)
                .map(|c| match c {
                    [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
                    _ => None,
                })
                .collect::<Option<_>>()?;
            char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        }
        _ => return None,
    };
    for c in text.chars() {
        match c {
            ',' | '+' | '=' | '\\' | '"' | ';' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\{:02X}", u32::from(c) & 0xff)),
            c => out.push(c),
        }
    }
    Some(())
}

/// `text` cut to [`MAX_SUBJECT_TEXT`] bytes on a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() <= MAX_SUBJECT_TEXT {
        return text;
    }
    let mut end = MAX_SUBJECT_TEXT - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str("...");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    fn certificate(dn: &[(DnType, &str)]) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["x".into()]).unwrap();
        let mut name = DistinguishedName::new();
        for (ty, value) in dn {
            name.push(ty.clone(), *value);
        }
        params.distinguished_name = name;
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subjects_read_as_openssl_prints_them() {
        let der = certificate(&[
            (DnType::CountryName, "CH"),
            (DnType::OrganizationName, "Shop, Inc."),
            (DnType::CommonName, "lane-1"),
        ]);
        assert_eq!(
            subject_text(&der).as_deref(),
            Some("C=CH, O=Shop\\, Inc., CN=lane-1")
        );
        let der = certificate(&[(DnType::CommonName, "Grüezi")]);
        assert_eq!(subject_text(&der).as_deref(), Some("CN=Grüezi"));
        let der = certificate(&[(DnType::CustomDnType(vec![1, 2, 3, 4]), "v")]);
        assert_eq!(subject_text(&der).as_deref(), Some("1.2.3.4=v"));
        let der = certificate(&[]);
        assert_eq!(subject_text(&der).as_deref(), Some(""));
    }

    #[test]
    fn long_subjects_are_cut() {
        let long = "x".repeat(400);
        let der = certificate(&[(DnType::CommonName, &long)]);
        let text = subject_text(&der).unwrap();
        assert_eq!(text.len(), MAX_SUBJECT_TEXT);
        assert!(
            text.starts_with("CN=xxx") && text.ends_with("..."),
            "{text}"
        );
    }

    #[test]
    fn anything_else_is_none_and_never_a_panic() {
        let der = certificate(&[(DnType::CommonName, "lane-1")]);
        for len in 0..der.len() {
            // A cut certificate is refused or still reads (its subject
            // may be complete), but never panics.
            let _ = subject_text(&der[..len]);
        }
        assert_eq!(subject_text(&der[..der.len() / 2]), None);
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let mut bytes = der.clone();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = (rng as usize) % bytes.len();
            bytes[at] = (rng >> 32) as u8;
            let _ = subject_text(&bytes);
        }
        assert_eq!(subject_text(b""), None);
        assert_eq!(subject_text(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
