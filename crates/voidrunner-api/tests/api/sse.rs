//! A small Server-Sent Events client for the stream tests: reads a streaming reqwest body
//! and yields complete events (`id`, `event`, `data`), skipping comments (keep-alives).

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

/// One received event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

impl SseEvent {
    /// The seq (event id).
    pub fn seq(&self) -> u64 {
        self.id.expect("every event has an id")
    }

    /// The status of a `status` event.
    pub fn status(&self) -> Option<&str> {
        (self.event == "status").then(|| self.data["status"].as_str().expect("status field"))
    }
}

/// An open stream.
pub struct SseClient {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl SseClient {
    /// Connects; panics unless the answer is `200 text/event-stream`.
    pub async fn connect(url: &str, token: &str, last_event_id: Option<u64>) -> SseClient {
        let mut rb = reqwest::Client::new().get(url).bearer_auth(token);
        if let Some(id) = last_event_id {
            rb = rb.header("Last-Event-ID", id.to_string());
        }
        let res = rb.send().await.expect("connect");
        assert_eq!(res.status(), 200, "stream status");
        let ct = res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        SseClient {
            body: res.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = find_blank_line(&self.buf) {
                let block: Vec<u8> = self.buf.drain(..end.1).collect();
                if let Some(e) = parse_block(&block[..end.0]) {
                    return Some(e);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.body.next())
                .await
                .expect("an event or the end within 30 s");
            match chunk {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => panic!("stream body: {e}"),
                None => return None,
            }
        }
    }

    /// Every remaining event until the server closes the stream.
    pub async fn rest(mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// `(end of block, end of separator)` of the first `\n\n`.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

/// Parses one event block; `None` for comment-only blocks.
fn parse_block(block: &[u8]) -> Option<SseEvent> {
    let text = std::str::from_utf8(block).expect("utf-8 events");
    let (mut id, mut event, mut data) = (None, "message".to_owned(), Vec::new());
    for line in text.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.parse().expect("numeric id")),
            "event" => event = value.to_owned(),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    let data = serde_json::from_str(&data.join("\n")).expect("JSON data");
    Some(SseEvent { id, event, data })
}
