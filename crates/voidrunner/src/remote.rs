//! The CLI's client of a VoidRunner server (`job submit`, `workflow submit|list|show|cancel|
//! rerun`, `repo …`): where the server is, the credential, and one JSON call that names what failed.

use anyhow::Context;
use clap::Args;
use serde_json::Value;

/// Where the server is and who asks.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Server base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "VOIDRUNNER_SERVER", value_name = "URL")]
    pub server: String,
    /// API key (or access token); prefer the environment variable.
    #[arg(
        long,
        alias = "token",
        env = "VOIDRUNNER_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: String,
}

/// A client bound to one server and credential.
pub(crate) struct Remote {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Remote {
    /// A client for `args`.
    pub(crate) fn new(args: &ServerArgs) -> Remote {
        Remote {
            http: reqwest::Client::new(),
            base: args.server.trim_end_matches('/').to_owned(),
            key: args.api_key.clone(),
        }
    }

    /// Sends a request to `path` (with a JSON body when given); the answer's JSON (`null` for
    /// an empty success such as `204`), or an error naming what was asked and the server's
    /// answer.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(body);
        }
        let res = req.send().await.with_context(|| what.to_owned())?;
        let code = res.status();
        let bytes = res
            .bytes()
            .await
            .with_context(|| format!("{what}: reading"))?;
        // `204 No Content` (a delete) answers nothing: `null`.
        if code.is_success() && bytes.is_empty() {
            return Ok(Value::Null);
        }
        let answer: Value =
            serde_json::from_slice(&bytes).with_context(|| format!("{what}: reading ({code})"))?;
        if !code.is_success() {
            let message = answer["error"]["message"].as_str().unwrap_or("");
            anyhow::bail!("{what} failed ({code}): {message} {answer}");
        }
        Ok(answer)
    }
}
