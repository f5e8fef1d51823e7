//! Keeps injected credentials out of what comes back to the plugin. An origin may reflect what
//! it receives (an echo endpoint, an error page quoting the request), so every value the host
//! injected, in the forms a server is likely to print it in, is replaced by `[REDACTED]` in the
//! response's headers, body and trailers. The body is scanned as it streams: a value split
//! across two chunks is still caught, because the last `longest - 1` bytes of each chunk wait
//! for the next one.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::HeaderValue;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use wasmtime_wasi_http::{Error, WasiBody};

/// What replaces a secret.
pub(crate) const REDACTED: &[u8] = b"[REDACTED]";
/// Values (and forms) shorter than this are not searched for: they would garble every response.
const MIN_NEEDLE: usize = 4;

/// The values injected into one request, in every form searched for.
pub(crate) struct Redactor {
    finder: AhoCorasick,
    longest: usize,
}

impl Redactor {
    /// A redactor for `values` (header values and the secrets in them), or `None` when there is
    /// nothing to hide.
    pub(crate) fn new(values: &[String]) -> Option<Self> {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for value in values {
            forms(value, &mut needles);
            // `Basic base64(user:password)`: the decoded pair and the password alone too.
            // The scheme's name is case-insensitive (RFC 9110).
            let basic = value
                .get(..6)
                .filter(|scheme| scheme.eq_ignore_ascii_case("basic "));
            if let Some(encoded) = basic.map(|scheme| &value[scheme.len()..])
                && let Ok(decoded) = STANDARD.decode(encoded.trim())
                && let Ok(pair) = String::from_utf8(decoded)
            {
                forms(&pair, &mut needles);
                if let Some((_, password)) = pair.split_once(':') {
                    forms(password, &mut needles);
                }
            }
        }
        needles.retain(|n| n.len() >= MIN_NEEDLE);
        needles.sort();
        needles.dedup();
        if needles.is_empty() {
            return None;
        }
        let longest = needles.iter().map(Vec::len).max().unwrap_or(0);
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
            .unwrap_or_else(|e| panic!("secret patterns always build: {e}"));
        Some(Self { finder, longest })
    }

    /// `text` with every secret replaced.
    pub(crate) fn redact(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        self.finder
            .replace_all_with_bytes(text, &mut out, |_, _, dst| {
                dst.extend_from_slice(REDACTED);
                true
            });
        out
    }

    /// Whether `text` holds a secret.
    pub(crate) fn finds(&self, text: &[u8]) -> bool {
        self.finder.is_match(text)
    }

    /// Redacts `buf` (held-back bytes followed by a new chunk) and returns what is safe to pass
    /// on; the tail that may start a secret still to be completed stays in `buf`.
    fn stream(&self, buf: &mut BytesMut, last: bool) -> Bytes {
        let safe = if last {
            buf.len()
        } else {
            buf.len().saturating_sub(self.longest - 1)
        };
        let mut out = BytesMut::with_capacity(buf.len());
        let mut pos = 0;
        for m in self.finder.find_iter(&buf[..]) {
            // A match starting at or after `safe` may still grow; it is found again later.
            if m.start() >= safe {
                break;
            }
            out.extend_from_slice(&buf[pos..m.start()]);
            out.extend_from_slice(REDACTED);
            pos = m.end();
        }
        let cut = pos.max(safe);
        out.extend_from_slice(&buf[pos..cut]);
        let _ = buf.split_to(cut);
        out.freeze()
    }

    /// Headers with every secret in their values replaced; a header whose name holds one is
    /// dropped (a name cannot carry the marker).
    pub(crate) fn headers(&self, headers: &mut HeaderMap) {
        let names: Vec<_> = headers.keys().cloned().collect();
        for name in names {
            if self.finds(name.as_str().as_bytes()) {
                headers.remove(&name);
                continue;
            }
            let values: Vec<HeaderValue> = headers
                .get_all(&name)
                .iter()
                .map(|v| {
                    if self.finds(v.as_bytes()) {
                        HeaderValue::from_bytes(&self.redact(v.as_bytes()))
                            .unwrap_or(HeaderValue::from_static("[REDACTED]"))
                    } else {
                        v.clone()
                    }
                })
                .collect();
            headers.remove(&name);
            for v in values {
                headers.append(name.clone(), v);
            }
        }
    }
}

/// The forms a server may print `value` in: as is, JSON-escaped, percent-encoded (either case,
/// `+` for spaces), and base64 (standard and URL-safe) at each of the three alignments it can
/// have inside a longer encoded text.
fn forms(value: &str, out: &mut Vec<Vec<u8>>) {
    if value.len() < MIN_NEEDLE {
        return;
    }
    out.push(value.as_bytes().to_vec());
    let json = serde_json::to_string(value).unwrap_or_default();
    out.push(json.as_bytes()[1..json.len() - 1].to_vec());
    // Percent-encoded, keeping RFC 3986's unreserved characters or only letters and digits
    // (servers differ), with either case of hex digits.
    for keep in [&b"-._~"[..], &b""[..]] {
        for upper in [true, false] {
            let encoded: String = value
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || keep.contains(&b) {
                        (b as char).to_string()
                    } else if upper {
                        format!("%{b:02X}")
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect();
            out.push(encoded.replace("%20", "+").into_bytes());
            out.push(encoded.into_bytes());
        }
    }
    // Hex, as debug dumps print bytes.
    let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
    out.push(hex.to_ascii_uppercase().into_bytes());
    out.push(hex.into_bytes());
    for engine in [&STANDARD, &URL_SAFE] {
        for shift in 0..3usize {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = engine.encode(&bytes);
            // Only the characters made of the value's bits alone.
            let start = (shift * 8).div_ceil(6);
            let end = (bytes.len() * 8) / 6;
            if end > start {
                out.push(encoded.as_bytes()[start..end].to_vec());
            }
        }
    }
}

/// A response body with the secrets of [`Redactor`] replaced as it streams.
pub(crate) struct ScrubBody {
    inner: WasiBody,
    redactor: Arc<Redactor>,
    held: BytesMut,
    trailers: Option<HeaderMap>,
    done: bool,
}

impl ScrubBody {
    pub(crate) fn new(inner: WasiBody, redactor: Arc<Redactor>) -> Self {
        Self {
            inner,
            redactor,
            held: BytesMut::new(),
            trailers: None,
            done: false,
        }
    }
}

impl Body for ScrubBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        loop {
            if this.done {
                // Flush the held tail, then the trailers, then the end.
                if !this.held.is_empty() {
                    let out = this.redactor.stream(&mut this.held, true);
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                return Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => this.done = true,
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.held.extend_from_slice(&data);
                        let out = this.redactor.stream(&mut this.held, false);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(frame) => {
                        if let Ok(mut trailers) = frame.into_trailers() {
                            this.redactor.headers(&mut trailers);
                            this.trailers = Some(trailers);
                        }
                        this.done = true;
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.held.is_empty() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Redaction changes the length.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    const SECRET: &str = "s3cr3t/value+with=odd chars";

    fn redactor() -> Arc<Redactor> {
        Arc::new(Redactor::new(&[format!("Bearer {SECRET}"), SECRET.into()]).unwrap())
    }

    fn assert_clean(text: &[u8]) {
        let r = Redactor::new(&[SECRET.into()]).unwrap();
        assert!(!r.finds(text), "{}", String::from_utf8_lossy(text));
    }

    #[test]
    fn every_form_of_a_secret_is_redacted() {
        let r = redactor();
        let pct = "s3cr3t%2Fvalue%2Bwith%3Dodd%20chars";
        let b64 = STANDARD.encode(format!("Authorization: Bearer {SECRET}\r\n"));
        let b64url = URL_SAFE.encode(format!("xx{SECRET}"));
        let json = serde_json::to_string(&json_obj()).unwrap();
        for text in [
            format!("got {SECRET}!"),
            pct.to_owned(),
            "s3cr3t%2fvalue%2bwith%3dodd%20chars".to_owned(),
            "s3cr3t%2Fvalue%2Bwith%3Dodd%20chars".to_owned(),
            "s3cr3t%2Fvalue%2Bwith%3Dodd+chars".to_owned(),
            b64.clone(),
            b64url,
            json,
        ] {
            let out = r.redact(text.as_bytes());
            assert!(
                out.windows(REDACTED.len()).any(|w| w == REDACTED),
                "{text} -> {}",
                String::from_utf8_lossy(&out)
            );
            // What is left cannot be decoded back to the secret either.
            let out = String::from_utf8_lossy(&out).into_owned();
            assert!(!out.contains(SECRET) && !out.contains(pct));
        }
    }

    fn json_obj() -> serde_json::Value {
        serde_json::json!({ "headers": { "authorization": format!("Bearer {SECRET}") } })
    }

    #[test]
    fn basic_auth_is_redacted_decoded_too() {
        let header = format!("Basic {}", STANDARD.encode("deploy-bot:hunter2-password"));
        let r = Redactor::new(&[header]).unwrap();
        for text in ["deploy-bot:hunter2-password", "pw=hunter2-password"] {
            assert!(r.finds(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn hex_dumps_and_a_lower_case_basic_scheme_are_caught() {
        let r =
            Redactor::new(&[format!("basic {}", STANDARD.encode("bot:hunter2-password"))]).unwrap();
        assert!(r.finds(b"password: hunter2-password"));
        let hex: String = b"hunter2-password"
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert!(r.finds(hex.as_bytes()), "{hex}");
    }

    #[test]
    fn short_values_are_not_searched_for() {
        assert!(Redactor::new(&["abc".into()]).is_none());
    }

    #[tokio::test]
    async fn a_secret_split_across_chunks_is_caught() {
        let text = format!("echo: Bearer {SECRET} and again {SECRET} end");
        for size in [1, 2, 3, 5, 7, 13, 64] {
            let chunks: Vec<Result<Frame<Bytes>, Error>> = text
                .as_bytes()
                .chunks(size)
                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let inner: WasiBody = StreamBody::new(futures_stream(chunks)).boxed_unsync();
            let body = ScrubBody::new(inner, redactor()).collect().await.unwrap();
            let out = body.to_bytes();
            assert_clean(&out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                "echo: [REDACTED] and again [REDACTED] end",
                "chunks of {size}"
            );
        }
    }

    #[tokio::test]
    async fn trailers_are_redacted() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-echo", HeaderValue::from_str(SECRET).unwrap());
        let frames = vec![
            Ok(Frame::data(Bytes::from_static(b"body"))),
            Ok(Frame::trailers(trailers)),
        ];
        let inner: WasiBody = StreamBody::new(futures_stream(frames)).boxed_unsync();
        let collected = ScrubBody::new(inner, redactor()).collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap();
        assert_eq!(trailers["x-echo"], "[REDACTED]");
    }

    fn futures_stream<T: Send + 'static>(
        items: Vec<T>,
    ) -> impl futures_core::Stream<Item = T> + Send + 'static {
        struct Iter<T>(std::vec::IntoIter<T>);
        impl<T> futures_core::Stream for Iter<T> {
            type Item = T;
            fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
                Poll::Ready(self.get_mut().0.next())
            }
        }
        impl<T> Unpin for Iter<T> {}
        Iter(items.into_iter())
    }
}
