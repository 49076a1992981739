//! Form bodies: `application/x-www-form-urlencoded` and, for the logo upload, a small
//! `multipart/form-data` reader (bodies are capped by the server's body limit).

use std::collections::BTreeMap;

/// A submitted form: every value of every field, in order.
#[derive(Debug, Default, Clone)]
pub struct Form {
    fields: Vec<(String, String)>,
    /// Uploaded files by field: (file name, content type, bytes).
    files: BTreeMap<String, (String, String, Vec<u8>)>,
}

impl Form {
    pub fn urlencoded(body: &[u8]) -> Self {
        Self {
            fields: url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            files: BTreeMap::new(),
        }
    }

    /// The first value of `name`, trimmed; `None` when missing or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first value of `name` as sent (not trimmed), or "".
    pub fn raw(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name` (checkbox groups).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    /// An uploaded file of `name` that is not empty: (content type, bytes).
    pub fn file(&self, name: &str) -> Option<(&str, &[u8])> {
        self.files
            .get(name)
            .filter(|(_, _, bytes)| !bytes.is_empty())
            .map(|(_, ct, bytes)| (ct.as_str(), bytes.as_slice()))
    }

    /// A `multipart/form-data` body with `content_type`'s boundary; `None` if it is not one.
    pub fn multipart(content_type: &str, body: &[u8]) -> Option<Self> {
        let boundary = content_type
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("boundary="))?
            .trim_matches('"');
        if boundary.is_empty() || boundary.len() > 200 {
            return None;
        }
        let delimiter = format!("--{boundary}");
        let mut form = Form::default();
        let mut parts = split(body, delimiter.as_bytes()).into_iter();
        // Before the first delimiter: the preamble.
        parts.next()?;
        for part in parts {
            // The closing delimiter is followed by `--`.
            if part.starts_with(b"--") {
                break;
            }
            let part = part.strip_prefix(b"\r\n")?;
            let split_at = find(part, b"\r\n\r\n")?;
            let (head, rest) = part.split_at(split_at);
            let content = rest.get(4..)?;
            let content = content.strip_suffix(b"\r\n").unwrap_or(content);
            let head = String::from_utf8_lossy(head);
            let mut name = None;
            let mut filename = None;
            let mut ctype = String::from("application/octet-stream");
            for line in head.split("\r\n") {
                let (key, value) = line.split_once(':')?;
                match key.trim().to_ascii_lowercase().as_str() {
                    "content-disposition" => {
                        for p in value.split(';').map(str::trim) {
                            if let Some(v) = p.strip_prefix("name=") {
                                name = Some(v.trim_matches('"').to_owned());
                            } else if let Some(v) = p.strip_prefix("filename=") {
                                filename = Some(v.trim_matches('"').to_owned());
                            }
                        }
                    }
                    "content-type" => ctype = value.trim().to_ascii_lowercase(),
                    _ => {}
                }
            }
            let name = name?;
            match filename {
                Some(f) => {
                    form.files.insert(name, (f, ctype, content.to_vec()));
                }
                None => form
                    .fields
                    .push((name, String::from_utf8_lossy(content).into_owned())),
            }
        }
        Some(form)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `body` cut at every `delimiter` (which is removed).
fn split<'a>(body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delimiter) {
        out.push(&rest[..i]);
        rest = &rest[i + delimiter.len()..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urlencoded_fields() {
        let f = Form::urlencoded(b"a=1&b=+two+&scope=x&scope=y&empty=");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("two"));
        assert_eq!(f.raw("b"), " two ");
        assert_eq!(f.all("scope"), ["x", "y"]);
        assert_eq!(f.get("empty"), None);
        assert!(f.has("empty"));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn multipart_fields_and_a_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"color\"\r\n\r\n#123456\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"l.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\x00\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"none\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n\
--XyZ--\r\n";
        let f = Form::multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(f.get("_csrf"), Some("tok"));
        assert_eq!(f.get("color"), Some("#123456"));
        let (ct, bytes) = f.file("logo").unwrap();
        assert_eq!(ct, "image/png");
        assert_eq!(bytes, b"\x89PNG\r\n\x1a\n\x00");
        assert!(f.file("none").is_none());
        assert!(Form::multipart("text/plain", body).is_none());
    }
}
