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

fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
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
}
