//! Access-token attacks: every forged, altered or expired token is a 401.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, SECRET, TestApp, assert_error, backend_tests};

backend_tests!(crafted_tokens_are_checked);

fn claims(app: &TestApp, sub: uuid::Uuid, exp_offset_secs: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": sub.to_string(),
        "role": "user",
        "iss": app.settings.jwt_issuer,
        "aud": app.settings.jwt_audience,
        "iat": now,
        "exp": now + exp_offset_secs,
    })
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// A token with an arbitrary header, HMAC-signed with the real secret over that header.
fn with_header(header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .expect("hmac");
    format!("{message}.{sig}")
}

async fn crafted_tokens_are_checked(b: Backend) {
    let app = b.spawn().await;
    let user = app.user().await;
    let me = |token: String| {
        let app = &app;
        async move {
            app.call(Method::GET, "/api/v1/auth/me", Some(&token), None)
                .await
        }
    };

    // Sanity: a correctly crafted token works, so the rejections below are meaningful.
    let good = claims(&app, user.id(), 300);
    let (status, _, _) = me(sign(&good, SECRET)).await;
    assert_eq!(status, 200);

    // Tampered payload (role escalated), original signature kept.
    let token = sign(&good, SECRET);
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = good.clone();
    evil["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);

    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("evil-issuer");
    let mut no_exp = good.clone();
    no_exp.as_object_mut().expect("object").remove("exp");

    let attacks: Vec<(&str, String)> = vec![
        ("tampered payload", tampered),
        ("expired", sign(&claims(&app, user.id(), -60), SECRET)),
        (
            "wrong secret",
            sign(&good, b"another-secret-another-secret-!!"),
        ),
        ("wrong audience", sign(&wrong_aud, SECRET)),
        ("wrong issuer", sign(&wrong_iss, SECRET)),
        ("no exp", sign(&no_exp, SECRET)),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&good)
            ),
        ),
        (
            "alg none signed",
            with_header(&json!({"alg": "none", "typ": "JWT"}), &good),
        ),
        (
            "RS256 header (HS/RS swap)",
            with_header(&json!({"alg": "RS256", "typ": "JWT"}), &good),
        ),
        (
            "HS512 header",
            with_header(&json!({"alg": "HS512", "typ": "JWT"}), &good),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in attacks {
        let got = me(token).await;
        assert_error(&got, 401, "unauthorized", None);
        assert_eq!(got.0, 401, "{what}");
    }

    // Wrong scheme and empty bearer.
    for value in ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer"] {
        let res = app
            .http
            .get(app.url("/api/v1/auth/me"))
            .header("authorization", value)
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 401, "{value}");
    }
}
