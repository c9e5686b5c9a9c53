//! `application/x-www-form-urlencoded` bodies (the landing page's
//! registration form, WHATWG URL §5.1): `name=value` pairs joined by `&`,
//! `+` for a space, `%XX` for a byte. Bounded: the HTTP side reads at most
//! [`MAX_FORM_BYTES`], and at most [`MAX_FIELDS`] fields are kept.

/// The largest form body the landing page reads.
pub const MAX_FORM_BYTES: usize = 4096;
/// Fields kept from one body; the rest are ignored.
pub const MAX_FIELDS: usize = 16;

/// Why a body was not a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    TooLarge,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FormError::TooLarge => "the form is larger than 4 KiB",
            FormError::BadEscape => "the form has a malformed %-escape",
            FormError::NotUtf8 => "the form is not UTF-8",
        })
    }
}

impl std::error::Error for FormError {}

/// The fields of a form body, in order (a name may repeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormBody {
    pub fields: Vec<(String, String)>,
}

impl FormBody {
    /// The first value of `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn parse(body: &[u8]) -> Result<FormBody, FormError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(FormError::TooLarge);
    }
    let mut form = FormBody::default();
    for pair in body.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        if form.fields.len() == MAX_FIELDS {
            break;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        form.fields.push((decode(name)?, decode(value)?));
    }
    Ok(form)
}

fn decode(part: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while let Some(&b) = part.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = part.get(i + 1..i + 3).ok_or(FormError::BadEscape)?;
                let digit = |h: u8| char::from(h).to_digit(16).ok_or(FormError::BadEscape);
                let (hi, lo) = (digit(hex[0])?, digit(hex[1])?);
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decoded() {
        let form =
            parse(b"username=J%C3%BCliet&password=a+b%26c%3D&password2=&flag").expect("form");
        assert_eq!(form.value("username"), Some("Jüliet"));
        assert_eq!(form.value("password"), Some("a b&c="));
        assert_eq!(form.value("password2"), Some(""));
        assert_eq!(form.value("flag"), Some(""));
        assert_eq!(form.value("missing"), None);
        assert_eq!(parse(b"").expect("empty").fields, vec![]);
        assert_eq!(parse(b"&&a=1&&").expect("gaps").value("a"), Some("1"));
    }

    #[test]
    fn hostile_bodies() {
        assert_eq!(parse(b"a=%"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%4"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%zz"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%+1"), Err(FormError::BadEscape));
        assert_eq!(parse(b"a=%ff"), Err(FormError::NotUtf8));
        assert_eq!(parse(&[b'a'; MAX_FORM_BYTES + 1]), Err(FormError::TooLarge));
        let many = "x=1&".repeat(100);
        assert_eq!(
            parse(many.as_bytes()).expect("form").fields.len(),
            MAX_FIELDS
        );
    }
}
