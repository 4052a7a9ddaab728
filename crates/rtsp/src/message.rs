//! RTSP/1.0 messages (RFC 2326 section 6-7): an incremental, allocation-bounded parser for
//! what a client sends, and the response writer. Sans-IO; never panics on input.

use bytes::Bytes;

/// Largest request line plus headers we accept; real clients send well under 2 KiB.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body we accept (SET_PARAMETER, ANNOUNCE).
pub const MAX_BODY: usize = 64 * 1024;

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Request {
    /// First header named `name` (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A message the client sent: a request, or a response to a request we never make (ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response {
        status: u16,
        headers: Vec<(String, String)>,
    },
}

/// Why bytes are not an RTSP message. Each maps to a 400-class answer, then the connection
/// closes, since the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message head longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("body longer than {MAX_BODY} bytes")]
    BodyTooLarge,
    #[error("message head is not UTF-8")]
    NotUtf8,
    #[error("malformed start line {0:?}")]
    BadStartLine(String),
    #[error("malformed header line {0:?}")]
    BadHeader(String),
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
}

/// Parses one message from the front of `buf`. `Ok(None)`: need more bytes.
/// `Ok(Some((msg, n)))`: the message used the first `n` bytes.
pub fn parse_message(buf: &[u8]) -> Result<Option<(Message, usize)>, ParseError> {
    let Some((head_len, sep)) = find_head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(ParseError::HeadTooLarge);
        }
        return Ok(None);
    };
    if head_len > MAX_HEAD {
        return Err(ParseError::HeadTooLarge);
    }
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| ParseError::NotUtf8)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or_default();
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| ParseError::BadHeader(truncate(line)))?;
        let k = k.trim();
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::BadHeader(truncate(line)));
        }
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let content_length = match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        None => 0,
        Some((_, v)) => v
            .parse::<usize>()
            .map_err(|_| ParseError::BadContentLength(truncate(v)))?,
    };
    if content_length > MAX_BODY {
        return Err(ParseError::BodyTooLarge);
    }
    let body_start = head_len + sep;
    let total = body_start + content_length;
    if buf.len() < total {
        return Ok(None);
    }
    let body = Bytes::copy_from_slice(&buf[body_start..total]);

    let parts: Vec<&str> = start.split(' ').filter(|p| !p.is_empty()).collect();
    let msg = if start.starts_with("RTSP/") {
        let status = parts
            .get(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| ParseError::BadStartLine(truncate(start)))?;
        Message::Response { status, headers }
    } else {
        let [method, uri, version] = parts[..] else {
            return Err(ParseError::BadStartLine(truncate(start)));
        };
        if !method
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
            || !version.starts_with("RTSP/")
        {
            return Err(ParseError::BadStartLine(truncate(start)));
        }
        Message::Request(Request {
            method: method.to_string(),
            uri: uri.to_string(),
            version: version.to_string(),
            headers,
            body,
        })
    };
    Ok(Some((msg, total)))
}

/// Length of the head (start line + headers) and of the blank-line separator after it.
/// Accepts CRLF and, from sloppy clients, bare LF line endings.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let limit = buf.len().min(MAX_HEAD + 4);
    let mut i = 0;
    while i < limit {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                // "\r\n\r\n" or "\n\r\n": the head ends at this newline.
                let end = if i > 0 && buf[i - 1] == b'\r' {
                    i - 1
                } else {
                    i
                };
                return Some((end, i + 3 - end));
            }
        }
        i += 1;
    }
    None
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// A response we send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn with_body(mut self, content_type: &str, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    /// First header named `name`, case-insensitive.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Wire form: status line, headers (CSeq first if present), Content-Length, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            s.push_str(k);
            s.push_str(": ");
            s.push_str(v);
            s.push_str("\r\n");
        }
        if !self.body.is_empty() {
            s.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        s.push_str("\r\n");
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reason phrases of RFC 2326 section 7.1.1.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        451 => "Parameter Not Understood",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        551 => "Option Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(raw: &str) -> (Request, usize) {
        match parse_message(raw.as_bytes()).unwrap().unwrap() {
            (Message::Request(r), n) => (r, n),
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn parses_a_request_with_headers_and_body() {
        let raw = "SET_PARAMETER rtsp://h/cam1 RTSP/1.0\r\nCSeq: 7\r\nsession:  abc \r\n\
                   Content-Length: 5\r\n\r\nhello OPTIONS";
        let (r, n) = req(raw);
        assert_eq!(r.method, "SET_PARAMETER");
        assert_eq!(r.uri, "rtsp://h/cam1");
        assert_eq!(r.header("cseq"), Some("7"));
        assert_eq!(r.header("Session"), Some("abc"));
        assert_eq!(&r.body[..], b"hello");
        assert_eq!(&raw[n..], " OPTIONS");
    }

    #[test]
    fn waits_for_more_bytes() {
        assert_eq!(
            parse_message(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n"),
            Ok(None)
        );
        assert_eq!(
            parse_message(b"OPTIONS * RTSP/1.0\r\nContent-Length: 4\r\n\r\nab"),
            Ok(None)
        );
        assert_eq!(parse_message(b""), Ok(None));
    }

    #[test]
    fn accepts_bare_lf() {
        let (r, n) = req("OPTIONS * RTSP/1.0\nCSeq: 2\n\n");
        assert_eq!(r.header("CSeq"), Some("2"));
        assert_eq!(n, 28);
    }

    #[test]
    fn parses_client_responses() {
        let (m, _) = parse_message(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            m,
            Message::Response {
                status: 200,
                headers: vec![("CSeq".into(), "1".into())]
            }
        );
    }

    #[test]
    fn rejects_malformed() {
        let bad: &[&[u8]] = &[
            b"GARBAGE\r\n\r\n",
            b"OPTIONS *\r\n\r\n",
            b"OPTIONS * HTTP/1.1 extra\r\n\r\n",
            b"options * RTSP/1.0\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nNoColon\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nContent-Length: 99999999\r\n\r\n",
            b"OPTIONS * RTSP/1.0\r\nX: \xff\xfe\r\n\r\n",
            b"RTSP/1.0 abc\r\n\r\n",
        ];
        for b in bad {
            assert!(
                parse_message(b).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let huge = vec![b'A'; MAX_HEAD + 10];
        assert_eq!(parse_message(&huge), Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn writes_responses() {
        let r = Response::new(454)
            .header("CSeq", "3")
            .with_body("text/plain", "x");
        let s = String::from_utf8(r.to_bytes()).unwrap();
        assert_eq!(
            s,
            "RTSP/1.0 454 Session Not Found\r\nCSeq: 3\r\nContent-Type: text/plain\r\n\
             Content-Length: 1\r\n\r\nx"
        );
    }

    proptest! {
        #[test]
        fn never_panics_and_consumes_within_bounds(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(Some((_, n))) = parse_message(&data) {
                prop_assert!(n > 0 && n <= data.len());
            }
        }

        #[test]
        fn never_panics_on_near_valid(method in "[A-Z_]{1,12}", uri in "\\PC{0,40}", hdrs in proptest::collection::vec(("[ -~]{0,20}", "[ -~]{0,40}"), 0..8), body in "\\PC{0,20}") {
            let mut s = format!("{method} {uri} RTSP/1.0\r\n");
            for (k, v) in &hdrs { s.push_str(&format!("{k}: {v}\r\n")); }
            s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            let _ = parse_message(s.as_bytes());
        }
    }
}
