//! One HTTP attempt: a POST to the checked, pinned address, no proxy, no redirects, one
//! timeout for the whole exchange.

use std::time::Duration;

use crate::guard::Target;
use crate::signing::{
    EVENT_FINISHED, HEADER_DELIVERY, HEADER_EVENT, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};

/// A signed request ready to send.
pub(crate) struct SignedRequest<'a> {
    /// Where (already checked).
    pub target: &'a Target,
    /// The exact body that was signed.
    pub body: Vec<u8>,
    /// `X-VoidRunner-Delivery`.
    pub delivery_id: String,
    /// `X-VoidRunner-Timestamp`.
    pub timestamp: i64,
    /// `X-VoidRunner-Signature`.
    pub signature: String,
}

/// Sends the request; `Ok(status)` for any HTTP answer, `Err(reason)` when none came.
pub(crate) async fn post(req: SignedRequest<'_>, timeout: Duration) -> Result<u16, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("VoidRunner-Webhooks/", env!("CARGO_PKG_VERSION")));
    if req.target.host.parse::<std::net::IpAddr>().is_err() {
        // Connect to the address the guard checked, whatever DNS says now.
        builder = builder.resolve(&req.target.host, req.target.addr);
    }
    let client = builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let res = client
        .post(req.target.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_EVENT, EVENT_FINISHED)
        .header(HEADER_DELIVERY, req.delivery_id)
        .header(HEADER_TIMESTAMP, req.timestamp.to_string())
        .header(HEADER_SIGNATURE, req.signature)
        .body(req.body)
        .send()
        .await
        .map_err(|e| describe(&e, req.target, timeout))?;
    Ok(res.status().as_u16())
}

/// A short reason without the URL's query (which may carry the receiver's own tokens).
fn describe(e: &reqwest::Error, target: &Target, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("no answer within {} s", timeout.as_secs())
    } else if e.is_connect() {
        format!("could not connect to {}", target.addr)
    } else {
        let mut msg = String::from("request failed");
        let mut source = std::error::Error::source(e);
        if let Some(s) = source.take() {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
        }
        msg
    }
}
