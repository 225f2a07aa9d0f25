//! Just enough `multipart/form-data` parsing for the fake to store uploaded files.

use bytes::Bytes;

/// One part of a form.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

/// A parsed form, parts in order.
#[derive(Debug, Clone)]
pub(crate) struct Form {
    pub parts: Vec<Part>,
}

impl Form {
    pub fn file(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The value of parameter `key` in a header value (`form-data; name="file"; filename="a;b.png"`),
/// RFC 7578 / RFC 2045 style: values are tokens or quoted strings, in which `;` is data and
/// `\"` and `\\` are escapes.
fn param(header: &str, key: &str) -> Option<String> {
    // `boundary=` in a Content-Type and the parameters of a disposition alike follow a `;`.
    let mut rest = header.split_once(';')?.1;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return None;
        }
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = Some(i + 1);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end?..])
            }
            None => {
                let (v, next) = after.split_once(';').unwrap_or((after, ""));
                (v.trim().to_owned(), next)
            }
        };
        if name.trim().eq_ignore_ascii_case(key) {
            return Some(value);
        }
        rest = next;
    }
}

/// Parses `body` sent with `content_type` (`multipart/form-data; boundary=…`).
pub(crate) fn parse(content_type: &str, body: &Bytes) -> Option<Form> {
    let boundary = param(content_type, "boundary")?;
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut pos = find(body, &delim, 0)? + delim.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            break;
        }
        pos += 2; // CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(body.get(pos..head_end)?).ok()?;
        let data_start = head_end + 4;
        let next = find(body, &delim, data_start)?;
        let data_end = next.checked_sub(2)?; // CRLF before the delimiter
        if data_end < data_start {
            return None; // malformed: no room for the CRLF before the delimiter
        }
        let mut part = Part {
            name: String::new(),
            file_name: None,
            content_type: None,
            data: body.slice(data_start..data_end),
        };
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.eq_ignore_ascii_case("content-disposition") {
                part.name = param(v, "name").unwrap_or_default();
                part.file_name = param(v, "filename");
            } else if k.eq_ignore_ascii_case("content-type") {
                part.content_type = Some(v.trim().to_owned());
            }
        }
        parts.push(part);
        pos = next + delim.len();
    }
    Some(Form { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_files_and_refuses_malformed_bodies() {
        let body = Bytes::from_static(
            b"--XX\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk1\r\n--XX\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\
PNGDATA\r\n--XX--\r\n",
        );
        let form = parse("multipart/form-data; boundary=XX", &body).unwrap();
        assert_eq!(form.parts[0].name, "key");
        assert_eq!(&form.parts[0].data[..], b"k1");
        let f = form.file("file").unwrap();
        assert_eq!(f.file_name.as_deref(), Some("a.png"));
        assert_eq!(f.content_type.as_deref(), Some("image/png"));
        assert_eq!(&f.data[..], b"PNGDATA");
        for bad in [
            &b"--XX\r\nA: b\r\n\r\n--XX--"[..],
            b"--XX\r\n\r\n\r\n--XX",
            b"garbage",
            b"--XX",
            b"",
        ] {
            let _ = parse(
                "multipart/form-data; boundary=XX",
                &Bytes::copy_from_slice(bad),
            );
        }
        assert!(parse("multipart/form-data", &body).is_none());
    }

    /// Issue 19, defect 18: quoted parameter values are read as RFC 7578 says: a `;` inside
    /// quotes is part of the value, and `\"` / `\\` are escapes.
    // Was `defect_18` in its issue.
    #[test]
    fn quoted_parameters_keep_semicolons_and_unescape() {
        let cd = r#" form-data; name="file"; filename="a;b \"c\" \\ d.png""#;
        assert_eq!(param(cd, "name").as_deref(), Some("file"));
        assert_eq!(param(cd, "filename").as_deref(), Some(r#"a;b "c" \ d.png"#));
        assert_eq!(
            param("form-data; name=plain; x=1", "name").as_deref(),
            Some("plain")
        );
        assert_eq!(param("form-data; name=\"unterminated", "name"), None);
        assert_eq!(param("form-data", "name"), None);
        assert_eq!(
            param("multipart/form-data; boundary=XX", "boundary").as_deref(),
            Some("XX")
        );
    }
}
