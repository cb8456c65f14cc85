//! `multipart/form-data` bodies (RFC 7578), as a browser's form or
//! `curl -F page=@photo.jpeg` sends them, parsed from a body already read
//! within its limit.

use bytes::Bytes;

/// One part of a form: a field's value, or a file with its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub body: Bytes,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary") && !v.is_empty() && v.len() <= 200).then(|| v.to_owned())
    })
}

/// The parts of a form body, in order; an error says what is malformed.
pub fn parse(body: &Bytes, boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let d = delimiter.as_bytes();
    let mut at = find(body, d, 0).ok_or("the form has no parts")?;
    let mut parts = Vec::new();
    loop {
        at += d.len();
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        at = skip_line_end(body, at).ok_or("a form boundary is not followed by a line end")?;
        let head_end = find(body, b"\r\n\r\n", at).ok_or("a form part's headers do not end")?;
        let head = std::str::from_utf8(&body[at..head_end]).map_err(|_| "a form part's headers are not text")?;
        let content = head_end + 4;
        let mut next_delimiter = Vec::with_capacity(d.len() + 2);
        next_delimiter.extend_from_slice(b"\r\n");
        next_delimiter.extend_from_slice(d);
        let end = find(body, &next_delimiter, content).ok_or("the form ends before its closing boundary")?;
        let (name, filename) = disposition(head).ok_or("a form part has no name")?;
        parts.push(Part { name, filename, body: body.slice(content..end) });
        at = end + 2;
    }
}

/// `name` and `filename` of a part's `Content-Disposition: form-data`.
fn disposition(head: &str) -> Option<(String, Option<String>)> {
    let line = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let value = &line["content-disposition:".len()..];
    let mut name = None;
    let mut filename = None;
    for param in split_quoted(value).iter().skip(1) {
        let Some((k, v)) = param.split_once('=') else { continue };
        let v = unquote(v.trim());
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    Some((name?, filename.filter(|f| !f.is_empty())))
}

/// Splits on `;` outside double quotes.
pub fn split_quoted(value: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// A parameter value without its quotes and escapes.
pub fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_owned(),
    }
}

fn skip_line_end(body: &[u8], at: usize) -> Option<usize> {
    if body[at..].starts_with(b"\r\n") {
        Some(at + 2)
    } else if body[at..].starts_with(b"\n") {
        Some(at + 1)
    } else {
        None
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..].windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, Option<&str>, &[u8])]) -> Bytes {
        let mut b = Vec::new();
        for (name, file, body) in parts {
            b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"");
            b.extend_from_slice(name.as_bytes());
            b.push(b'"');
            if let Some(f) = file {
                b.extend_from_slice(format!("; filename=\"{f}\"\r\nContent-Type: image/jpeg").as_bytes());
            }
            b.extend_from_slice(b"\r\n\r\n");
            b.extend_from_slice(body);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        Bytes::from(b)
    }

    #[test]
    fn files_and_fields_come_out_in_order_with_their_bytes() {
        let body = form(&[
            ("page", Some("a;1.jpg"), b"\xff\xd8\r\n--Xy\r\n"),
            ("speed", None, b"0.7"),
            ("page", Some("b.png"), b""),
        ]);
        let parts = parse(&body, "XyZ").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!((parts[0].name.as_str(), parts[0].filename.as_deref()), ("page", Some("a;1.jpg")));
        assert_eq!(&parts[0].body[..], b"\xff\xd8\r\n--Xy\r\n");
        assert_eq!((parts[1].filename.as_deref(), &parts[1].body[..]), (None, &b"0.7"[..]));
        assert!(parts[2].body.is_empty());
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=----x1").as_deref(), Some("----x1"));
        assert_eq!(boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary("image/jpeg"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn malformed_forms_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"--XyZ",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            b"--XyZ\r\n\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\n",
        ] {
            assert!(parse(&Bytes::copy_from_slice(bad), "XyZ").is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any body with any boundary parses or is refused; nothing panics.
        #[test]
        fn any_form_body_is_parsed_or_refused(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096),
            boundary in "[A-Za-z0-9'()+_,./:=? -]{1,70}",
        ) {
            let _ = parse(&Bytes::from(body), &boundary);
        }

        /// A well-formed form with bytes changed, cut or repeated.
        #[test]
        fn any_mutated_form_is_parsed_or_refused(at in 0usize..400, byte in proptest::prelude::any::<u8>(), cut in 0usize..400) {
            let mut b = b"--XyZ\r\nContent-Disposition: form-data; name=\"page\"; filename=\"a.png\"\r\n\
                Content-Type: image/png\r\n\r\nPNGDATA\r\n--XyZ\r\nContent-Disposition: form-data; name=\"speed\"\r\n\r\n0.8\r\n--XyZ--\r\n"
                .to_vec();
            let at = at % b.len();
            b[at] = byte;
            b.truncate(b.len() - cut % b.len());
            let _ = parse(&Bytes::from(b), "XyZ");
        }

        #[test]
        fn any_content_type_yields_a_boundary_or_none(content_type in "\\PC{0,200}") {
            if let Some(b) = boundary(&content_type) {
                proptest::prop_assert!(!b.is_empty());
            }
        }
    }
}
