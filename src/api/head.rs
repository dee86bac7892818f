//! A look at each new connection's first request head before the HTTP
//! parser takes it. The parser answers a request line with a URI longer
//! than 65,534 bytes (the most a URI may hold) with an empty `400`, and a
//! head over 128 KiB with an empty `431`; neither reaches a route, so no
//! handler can give them the `{code, message}` body every other error has.
//! This screen reads a new connection's request line ahead without
//! consuming it (`peek`), answers a URI that is too long itself (414 with a
//! JSON body), and hands every other connection on untouched.
//!
//! Only the first request of a connection is screened. A later request on
//! the same kept-alive connection goes to the parser as it comes; when the
//! parser refuses it, [`JsonParserErrors`] gives its empty answer the JSON
//! body on its way out.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The longest URI the HTTP layer takes.
pub const MAX_URI_BYTES: usize = 65_534;
/// The largest request head the HTTP layer takes (its read buffer).
pub const MAX_HEAD_BYTES: usize = 131_072;
/// How long the screen waits for a head to arrive before leaving the
/// connection to the parser (which has its own request timeout).
const WAIT: Duration = Duration::from_secs(5);

/// What the screen decided about a connection's first request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand the connection to the HTTP parser.
    Pass,
    /// The request line's URI is too long: 414.
    UriTooLong,
    /// The request head is too large: 431.
    HeadTooLarge,
    /// More bytes are needed to tell.
    NeedMore,
}

/// Judges the bytes of a connection read so far.
pub fn judge(bytes: &[u8]) -> Verdict {
    let line_end = bytes.iter().position(|&b| b == b'\n');
    let line = &bytes[..line_end.unwrap_or(bytes.len())];
    // "METHOD SP URI SP VERSION": the URI runs from the first space.
    let uri_len = match line.iter().position(|&b| b == b' ') {
        Some(start) => {
            let rest = &line[start + 1..];
            match (line_end, rest.iter().rposition(|&b| b == b' ')) {
                (Some(_), Some(end)) => end,
                // The line is not complete yet: all of it may be URI.
                _ => rest.len(),
            }
        }
        None => 0,
    };
    if uri_len > MAX_URI_BYTES {
        return Verdict::UriTooLong;
    }
    match line_end {
        // The headers are left to the parser: an over-large head gets its
        // 431, which [`JsonParserErrors`] gives a body.
        Some(_) => Verdict::Pass,
        None if bytes.len() > MAX_HEAD_BYTES => Verdict::HeadTooLarge,
        None => Verdict::NeedMore,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Screens a new connection: `Ok` hands it on to the HTTP parser; `Err`
/// means it was answered here (414 or 431 with a JSON body) and closed.
pub async fn screen(stream: TcpStream) -> std::io::Result<TcpStream> {
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match tokio::time::timeout(WAIT, stream.peek(&mut buf)).await {
            Ok(n) => n?,
            Err(_) => return Ok(stream),
        };
        if n == 0 {
            return Ok(stream);
        }
        match judge(&buf[..n]) {
            Verdict::Pass => return Ok(stream),
            Verdict::UriTooLong => {
                return refuse(
                    stream,
                    "414 URI Too Long",
                    "uri_too_long",
                    "the request's path and query are longer than 65,534 bytes",
                )
                .await
            }
            Verdict::HeadTooLarge => {
                return refuse(
                    stream,
                    "431 Request Header Fields Too Large",
                    "head_too_large",
                    "the request line and headers are larger than 128 KiB",
                )
                .await
            }
            Verdict::NeedMore => {
                if started.elapsed() > WAIT {
                    return Ok(stream);
                }
                if n == buf.len() {
                    // Everything read so far fits the buffer exactly: look
                    // at more of it at once.
                    buf.resize((buf.len() * 4).min(MAX_HEAD_BYTES + 1), 0);
                } else {
                    // `peek` returns at once while unread bytes wait; give
                    // the rest of the head a moment to arrive.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
}

/// Answers `status` with a `{code, message}` body and closes the
/// connection, reading what the client still sends for a moment first so
/// the answer is not lost to a reset.
async fn refuse(
    mut stream: TcpStream,
    status: &str,
    code: &str,
    message: &str,
) -> std::io::Result<TcpStream> {
    tracing::info!(code, "refused a request head before parsing it");
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await?;
    let mut sink = vec![0u8; 16 * 1024];
    let drain = async {
        let mut total = 0usize;
        while let Ok(n) = stream.read(&mut sink).await {
            total += n;
            if n == 0 || total > 4 * MAX_HEAD_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Err(std::io::Error::other(format!("request refused: {code}")))
}

/// A connection whose outgoing bytes are watched for the HTTP parser's own
/// refusals, which it sends with an empty body just before it closes the
/// connection: `400 Bad Request` (a request line or header it cannot parse)
/// and `431` (a head over its buffer). Each gets a `{code, message}` body.
/// Every other byte passes unchanged. (aupd's own error answers always
/// have a body, so an empty 400 or 431 can only be the parser's.)
#[derive(Debug)]
pub struct JsonParserErrors<T> {
    inner: T,
    pending: Vec<u8>,
    sent: usize,
}

impl<T> JsonParserErrors<T> {
    /// Watches `inner`.
    pub fn new(inner: T) -> Self {
        JsonParserErrors {
            inner,
            pending: Vec::new(),
            sent: 0,
        }
    }
}

/// The parser's refusals as it writes them (up to their `date` header),
/// and the answer each gets.
const REFUSALS: [(&[u8], &str, &str); 2] = [
    (
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        "malformed_request",
        "the request line or headers could not be parsed (a path and query longer than \
         65,534 bytes, a malformed header or method)",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        "head_too_large",
        "the request line and headers are larger than 128 KiB",
    ),
];

/// `bytes` with a refusal at its end given a JSON body, or `None` when it
/// ends with no refusal.
pub fn with_json_refusal(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.ends_with(b"\r\n\r\n") {
        return None;
    }
    for (head, code, message) in REFUSALS {
        let Some(at) = bytes.windows(head.len()).rposition(|w| w == head) else {
            continue;
        };
        let rest = &bytes[at + head.len()..];
        // Only the rest of that head may follow: its headers, then the end.
        if rest.len() > 256 || contains(&rest[..rest.len() - 4], b"\r\n\r\n") {
            continue;
        }
        let body = serde_json::json!({ "code": code, "message": message }).to_string();
        let status_line_end = head.len() - "content-length: 0\r\n".len();
        let mut out = Vec::with_capacity(bytes.len() + body.len() + 64);
        out.extend_from_slice(&bytes[..at + status_line_end]);
        out.extend_from_slice(
            format!(
                "content-length: {}\r\ncontent-type: application/json\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(rest);
        out.extend_from_slice(body.as_bytes());
        return Some(out);
    }
    None
}

impl<T: AsyncWrite + Unpin> JsonParserErrors<T> {
    /// Writes out what an earlier rewrite left.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParserErrors<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParserErrors<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        match with_json_refusal(buf) {
            Some(rewritten) => {
                // Taken in whole; what the socket does not take now goes
                // out with the next write, flush or shutdown.
                this.pending = rewritten;
                this.sent = 0;
                if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(buf.len()))
            }
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parsers_empty_refusals_get_a_json_body_and_nothing_else_changes() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\ncontent-type: application/json\r\ndate: Fri, 04 Dec 2026 09:15:53 GMT\r\n\r\n{\"status\":\"ok\"}";
        let refusal = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 09:15:53 GMT\r\n\r\n";
        assert_eq!(with_json_refusal(ok), None);
        let mut both = ok.to_vec();
        both.extend_from_slice(refusal);
        let out = String::from_utf8(with_json_refusal(&both).unwrap()).unwrap();
        let (before, after) = out.split_at(ok.len());
        assert_eq!(before.as_bytes(), ok, "what came before is untouched");
        let (head, body) = after.split_once("\r\n\r\n").unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "malformed_request");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains(&format!(
            "content-length: {}",
            serde_json::to_string(&body).unwrap().len()
        )));
        assert!(head.contains("date: Fri"));
        // aupd's own 400s carry a body and pass unchanged.
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 44\r\ncontent-type: application/json\r\n\r\n{\"code\":\"invalid_body\",\"message\":\"bad\"}";
        assert_eq!(with_json_refusal(own), None);
    }

    #[test]
    fn whole_request_lines_pass_and_partial_ones_wait() {
        assert_eq!(
            judge(b"GET /v1/cases HTTP/1.1\r\nhost: a\r\n\r\n"),
            Verdict::Pass
        );
        // Once the request line is whole, the rest is the parser's.
        assert_eq!(
            judge(b"GET /v1/cases HTTP/1.1\r\nhost: a\r\n"),
            Verdict::Pass
        );
        assert_eq!(judge(b"GET /v1/ca"), Verdict::NeedMore);
    }

    #[test]
    fn a_uri_over_the_limit_is_refused_before_its_line_ends() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES));
        assert_eq!(judge(long.as_bytes()), Verdict::UriTooLong);
        let unfinished = format!("GET /{}", "a".repeat(MAX_URI_BYTES));
        assert_eq!(judge(unfinished.as_bytes()), Verdict::UriTooLong);
        let at_limit = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES - 1));
        assert_eq!(judge(at_limit.as_bytes()), Verdict::Pass);
    }

    #[test]
    fn a_line_without_an_end_within_the_buffer_is_refused() {
        let mut head = b"GET".to_vec();
        head.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(judge(&head), Verdict::HeadTooLarge);
    }
}
