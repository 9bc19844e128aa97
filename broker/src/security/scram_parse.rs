//! The SCRAM attribute syntax (RFC 5802 section 7): saslnames, nonces and
//! extensions, shared by the server and the client.

use super::scram::ScramError;

fn malformed(what: &'static str, why: impl Into<String>) -> ScramError {
    ScramError::Malformed {
        what,
        why: why.into(),
    }
}

/// Decodes a saslname: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
pub(crate) fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(malformed("saslname", "`=` not followed by `2C` or `3D`")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Encodes a saslname: `=` as `=3D`, `,` as `=2C`.
pub(crate) fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// A nonce is 1 or more printable ASCII characters other than `,`.
pub(crate) fn check_nonce(what: &'static str, nonce: &str) -> Result<(), ScramError> {
    if nonce.is_empty() {
        return Err(malformed(what, "empty nonce"));
    }
    if !nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        return Err(malformed(
            what,
            "the nonce has characters that are not printable",
        ));
    }
    Ok(())
}

/// Extensions are `name=value`; `tokenauth=true` (Kafka delegation tokens)
/// is refused, others are ignored.
pub(crate) fn check_extensions<'a>(
    what: &'static str,
    attrs: impl Iterator<Item = &'a str>,
) -> Result<(), ScramError> {
    for ext in attrs {
        let (name, value) = ext
            .split_once('=')
            .ok_or_else(|| malformed(what, "an attribute is not `name=value`"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(malformed(what, "an attribute name is not letters"));
        }
        if name == "tokenauth" && value.eq_ignore_ascii_case("true") {
            return Err(ScramError::UnsupportedExtension("tokenauth".into()));
        }
    }
    Ok(())
}

pub(crate) fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}
