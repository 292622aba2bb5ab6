//! Accounts and sessions: sign-up, sign-in, cookies and their attributes, CSRF, sign-out,
//! password changes, closed sign-up, validation and login throttling.

use std::collections::HashMap;

use prism_testkit::for_each_backend;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{Soul, client};

/// One `Set-Cookie` header, parsed: its name, value and attributes (names lower-cased).
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: HashMap<String, Option<String>>,
}

impl SetCookie {
    pub fn has(&self, attribute: &str) -> bool {
        self.attributes.contains_key(&attribute.to_lowercase())
    }

    pub fn attribute(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .get(&attribute.to_lowercase())
            .and_then(|v| v.as_deref())
    }
}

/// Every `Set-Cookie` of an answer, by cookie name.
pub fn set_cookies(headers: &HeaderMap) -> HashMap<String, SetCookie> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attributes = parts
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_lowercase(), Some(v.to_owned())),
                    None => (p.to_lowercase(), None),
                })
                .collect();
            let cookie = SetCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                attributes,
            };
            (cookie.name.clone(), cookie)
        })
        .collect()
}

/// What a browser sends for CSRF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Csrf {
    /// The session's token in `X-CSRF-Token`, as the web UI does.
    Right,
    /// No header.
    Missing,
    /// A made-up token.
    Wrong,
}

/// An answer with its headers.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "{}", self.body);
        self
    }

    pub fn cookies(&self) -> HashMap<String, SetCookie> {
        set_cookies(&self.headers)
    }
}

/// A browser: keeps the two cookies PRISM sets (reqwest here has no cookie store) and sends the
/// session cookie, and the CSRF header when asked.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub session: Option<String>,
    pub csrf: Option<String>,
    /// Extra headers on every request (e.g. `X-Forwarded-Proto`).
    pub extra: Vec<(&'static str, String)>,
}

impl Browser {
    pub fn new(soul: &Soul) -> Self {
        Self {
            base: format!("http://{}", soul.addr),
            client: client(),
            session: None,
            csrf: None,
            extra: Vec::new(),
        }
    }

    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        csrf: Csrf,
    ) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(session) = &self.session {
            request = request.header("cookie", format!("prism_session={session}"));
        }
        match csrf {
            Csrf::Right => {
                if let Some(csrf) = &self.csrf {
                    request = request.header("x-csrf-token", csrf);
                }
            }
            Csrf::Missing => {}
            Csrf::Wrong => request = request.header("x-csrf-token", "0".repeat(64)),
        }
        for (name, value) in &self.extra {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        // Like a browser: a cookie with Max-Age=0 is dropped, others replace what was kept.
        for (name, cookie) in set_cookies(&headers) {
            let kept = (cookie.attribute("max-age") != Some("0")).then_some(cookie.value);
            match name.as_str() {
                "prism_session" => self.session = kept,
                "prism_csrf" => self.csrf = kept,
                _ => {}
            }
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body, Csrf::Right).await
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn signup(&mut self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/auth/signup",
            Some(json!({"email": email, "password": password, "name": "Someone"})),
        )
        .await
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/auth/login",
            Some(json!({"email": email, "password": password})),
        )
        .await
    }
}

pub const PASSWORD: &str = "correct horse battery";

mod suite {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use prism_soul::SoulSettings;
    use prism_soul::limit::LimitConfig;
    use prism_store::Store;

    fn settings(max_failures: usize) -> SoulSettings {
        SoulSettings {
            login_limit: LimitConfig {
                max_failures,
                ..LimitConfig::default()
            },
            ..SoulSettings::default()
        }
    }

    pub async fn signup_sets_cookies_and_signs_in(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let mut ada = Browser::new(&soul);
        let created = ada.signup("Ada@Example.test", PASSWORD).await.expect(201);
        let user = &created.body["user"];
        assert_eq!(user["email"], "ada@example.test");
        assert_eq!(user["name"], "Someone");
        assert_eq!(
            user["is_admin"], true,
            "the first account is instance admin"
        );
        assert!(user["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(user.get("password_hash").is_none());
        assert_eq!(created.headers["cache-control"], "no-store");

        let cookies = created.cookies();
        let session = &cookies["prism_session"];
        assert_eq!(session.value.len(), 64);
        assert!(session.value.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(session.has("HttpOnly"));
        assert_eq!(session.attribute("SameSite"), Some("Lax"));
        assert_eq!(session.attribute("Path"), Some("/"));
        assert_eq!(session.attribute("Max-Age"), Some("1209600"));
        assert!(
            !session.has("Secure"),
            "plain HTTP without a proxy saying https"
        );
        let csrf = &cookies["prism_csrf"];
        assert!(!csrf.has("HttpOnly"), "the web UI's script reads it");
        assert_eq!(csrf.attribute("SameSite"), Some("Strict"));
        assert_eq!(csrf.attribute("Path"), Some("/"));
        assert_eq!(csrf.attribute("Max-Age"), Some("1209600"));
        assert_eq!(created.body["csrf_token"], csrf.value.as_str());
        assert_ne!(csrf.value, session.value);

        let me = ada.get("/api/me").await.expect(200);
        assert_eq!(me.body["email"], "ada@example.test");
        assert_eq!(me.body["via"], "session");
        assert_eq!(me.body["is_admin"], true);

        let mut grace = Browser::new(&soul);
        let second = grace
            .signup("grace@example.test", PASSWORD)
            .await
            .expect(201);
        assert_eq!(second.body["user"]["is_admin"], false);
        assert_eq!(
            grace.get("/api/me").await.body["email"],
            "grace@example.test"
        );

        let stranger = Browser::new(&soul).get("/api/me").await.expect(401);
        assert_eq!(stranger.code(), "unauthenticated");
        let mut forged = Browser::new(&soul);
        forged.session = Some("f".repeat(64));
        forged.get("/api/me").await.expect(401);
    }

    pub async fn cookie_mutations_need_the_csrf_token(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let mut ada = Browser::new(&soul);
        ada.signup("ada@example.test", PASSWORD).await.expect(201);
        let rename = || Some(json!({"name": "Ada Lovelace"}));

        for csrf in [Csrf::Missing, Csrf::Wrong] {
            let refused = ada
                .send(Method::PATCH, "/api/me", rename(), csrf)
                .await
                .expect(403);
            assert_eq!(refused.code(), "csrf_failed", "{csrf:?}");
        }
        // Another session's CSRF token does not fit this session.
        let mut grace = Browser::new(&soul);
        grace
            .signup("grace@example.test", PASSWORD)
            .await
            .expect(201);
        let mut mixed = ada.clone();
        mixed.csrf = grace.csrf.clone();
        let refused = mixed
            .send(
                Method::POST,
                "/api/workspaces",
                Some(json!({"name": "X"})),
                Csrf::Right,
            )
            .await
            .expect(403);
        assert_eq!(refused.code(), "csrf_failed");
        assert_eq!(
            ada.get("/api/me").await.expect(200).body["name"],
            "Someone",
            "refused changes change nothing"
        );
        assert!(
            ada.get("/api/workspaces")
                .await
                .expect(200)
                .body
                .as_array()
                .unwrap()
                .is_empty()
        );

        let renamed = ada
            .send(Method::PATCH, "/api/me", rename(), Csrf::Right)
            .await
            .expect(200);
        assert_eq!(renamed.body["name"], "Ada Lovelace");
        ada.call(
            Method::POST,
            "/api/workspaces",
            Some(json!({"name": "Team"})),
        )
        .await
        .expect(201);

        // An API token is not a cookie: no CSRF token needed.
        let bob = soul.user("bob@example.test").await;
        let me = bob
            .patch("/api/me", json!({"name": "Bob Builder"}))
            .await
            .expect(200);
        assert_eq!(me.body["name"], "Bob Builder");
        assert_eq!(me.body["via"], "api_token");
        let blank = bob.patch("/api/me", json!({"name": " "})).await.expect(422);
        assert_eq!(blank.body["field"], "name");
    }

    pub async fn logout_ends_the_session(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let mut ada = Browser::new(&soul);
        ada.signup("ada@example.test", PASSWORD).await.expect(201);
        let kept = ada.clone();

        // Signing someone out is a change too: without the CSRF token it is refused.
        let refused = ada
            .send(Method::POST, "/api/auth/logout", None, Csrf::Missing)
            .await
            .expect(403);
        assert_eq!(refused.code(), "csrf_failed");
        ada.get("/api/me").await.expect(200);

        let out = ada
            .call(Method::POST, "/api/auth/logout", None)
            .await
            .expect(204);
        let cookies = out.cookies();
        for name in ["prism_session", "prism_csrf"] {
            assert_eq!(cookies[name].value, "", "{name}");
            assert_eq!(cookies[name].attribute("Max-Age"), Some("0"), "{name}");
        }
        assert_eq!(ada.session, None);
        let mut old = kept.clone();
        let gone = old.get("/api/me").await.expect(401);
        assert_eq!(gone.code(), "unauthenticated");
        // The old cookie no longer counts as a session, so signing out again just clears cookies.
        old.call(Method::POST, "/api/auth/logout", None)
            .await
            .expect(204);
        Browser::new(&soul)
            .call(Method::POST, "/api/auth/logout", None)
            .await
            .expect(204);

        // Signing in again gives a new session; the old one stays dead.
        let again = ada.login("ada@example.test", PASSWORD).await.expect(200);
        assert_ne!(
            Some(&again.cookies()["prism_session"].value),
            kept.session.as_ref()
        );
        ada.get("/api/me").await.expect(200);
        old.get("/api/me").await.expect(401);
    }

    pub async fn closed_signup_admits_only_the_first_account(store: Arc<dyn Store>) {
        let soul = Soul::start_with(
            store,
            SoulSettings {
                signup_open: false,
                ..SoulSettings::default()
            },
        )
        .await;
        let mut first = Browser::new(&soul);
        let created = first
            .signup("root@example.test", PASSWORD)
            .await
            .expect(201);
        assert_eq!(created.body["user"]["is_admin"], true);
        let mut second = Browser::new(&soul);
        let refused = second
            .signup("late@example.test", PASSWORD)
            .await
            .expect(403);
        assert_eq!(refused.code(), "signup_closed");
        assert!(refused.cookies().is_empty());
        assert_eq!(soul.store.count_users().await.unwrap(), 1);
        second
            .login("root@example.test", PASSWORD)
            .await
            .expect(200);
    }

    pub async fn bad_signups_name_the_field_and_create_nothing(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let mut ada = Browser::new(&soul);
        ada.signup("ada@example.test", PASSWORD).await.expect(201);
        let mut other = Browser::new(&soul);

        let taken = other
            .signup("  ADA@example.TEST ", PASSWORD)
            .await
            .expect(409);
        assert_eq!(taken.code(), "email_taken");
        for email in ["", "ada", "@example.test", "a b@example.test"] {
            let bad = other.signup(email, PASSWORD).await.expect(422);
            assert_eq!(
                (bad.code(), bad.body["field"].as_str()),
                ("invalid_email", Some("email")),
                "{email:?}"
            );
        }
        for password in ["short", "1234567", &"x".repeat(1025)] {
            let weak = other
                .signup("grace@example.test", password)
                .await
                .expect(422);
            assert_eq!(
                (weak.code(), weak.body["field"].as_str()),
                ("weak_password", Some("password"))
            );
            assert!(
                weak.body["message"].as_str().unwrap().contains("8 to 1024"),
                "the rule is stated: {}",
                weak.body
            );
        }
        let long_name = other
            .call(
                Method::POST,
                "/api/auth/signup",
                Some(json!({"email": "grace@example.test", "password": PASSWORD, "name": "n".repeat(201)})),
            )
            .await
            .expect(422);
        assert_eq!(long_name.body["field"], "name");
        let missing = other
            .call(
                Method::POST,
                "/api/auth/signup",
                Some(json!({"email": "grace@example.test"})),
            )
            .await
            .expect(422);
        assert_eq!(missing.code(), "invalid_field");
        let unknown = other
            .call(
                Method::POST,
                "/api/auth/signup",
                Some(json!({"email": "grace@example.test", "password": PASSWORD, "admin": true})),
            )
            .await
            .expect(422);
        assert_eq!(unknown.code(), "invalid_field");
        assert_eq!(other.session, None);
        assert_eq!(soul.store.count_users().await.unwrap(), 1);

        // Without a name, the part of the email before `@` is used.
        let plain = other
            .call(
                Method::POST,
                "/api/auth/signup",
                Some(json!({"email": "grace@example.test", "password": "12345678"})),
            )
            .await
            .expect(201);
        assert_eq!(plain.body["user"]["name"], "grace");
    }

    pub async fn wrong_password_and_unknown_email_look_the_same(store: Arc<dyn Store>) {
        let soul = Soul::start_with(store, settings(100)).await;
        Browser::new(&soul)
            .signup("ada@example.test", PASSWORD)
            .await
            .expect(201);
        let mut b = Browser::new(&soul);
        let wrong = b
            .login("ada@example.test", "wrong password")
            .await
            .expect(401);
        let unknown = b.login("nobody@example.test", PASSWORD).await.expect(401);
        let malformed = b.login("not an email", PASSWORD).await.expect(401);
        for answer in [&wrong, &unknown, &malformed] {
            assert_eq!(answer.code(), "invalid_credentials");
            assert_eq!(answer.body["message"], wrong.body["message"]);
            assert!(answer.cookies().is_empty());
        }
        assert_eq!(b.session, None);

        // Both failures do an argon2 verification: an unknown account is not answered faster. The
        // median of alternating attempts keeps this robust against a busy machine.
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (i, email) in ["ada@example.test", "nobody@example.test"]
                .iter()
                .enumerate()
            {
                let started = Instant::now();
                b.login(email, "wrong password").await.expect(401);
                times[i].push(started.elapsed());
            }
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (known, unknown) = (median(&mut times[0]), median(&mut times[1]));
        assert!(
            unknown * 3 >= known,
            "unknown email answered in {unknown:?}, wrong password in {known:?}"
        );

        let signed_in = b.login(" ADA@example.test ", PASSWORD).await.expect(200);
        assert_eq!(signed_in.body["user"]["email"], "ada@example.test");
        assert_eq!(
            signed_in.body["csrf_token"],
            b.csrf.clone().unwrap().as_str()
        );
        assert_eq!(b.get("/api/me").await.expect(200).body["via"], "session");
    }

    pub async fn failed_logins_are_throttled(store: Arc<dyn Store>) {
        let soul = Soul::start_with(store, settings(3)).await;
        let mut signed_up = Browser::new(&soul);
        signed_up
            .signup("ada@example.test", PASSWORD)
            .await
            .expect(201);
        let mut b = Browser::new(&soul);
        for _ in 0..3 {
            let failed = b
                .login("ada@example.test", "wrong password")
                .await
                .expect(401);
            assert_eq!(failed.code(), "invalid_credentials");
        }
        let limited = b
            .login("ada@example.test", "wrong password")
            .await
            .expect(429);
        assert_eq!(limited.code(), "too_many_attempts");
        let wait: u64 = limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=15 * 60).contains(&wait), "Retry-After {wait}");
        // Refused before the password is looked at: even the right one.
        let right = b.login("ada@example.test", PASSWORD).await.expect(429);
        assert_eq!(right.code(), "too_many_attempts");
        assert!(right.cookies().is_empty());
        // The client address is over the limit too, whatever account it tries.
        b.login("grace@example.test", PASSWORD).await.expect(429);
        // A session made before keeps working: throttling is about signing in.
        signed_up.get("/api/me").await.expect(200);
    }

    pub async fn signups_are_throttled_per_address(store: Arc<dyn Store>) {
        let soul = Soul::start_with(store, settings(3)).await;
        for i in 0..3 {
            Browser::new(&soul)
                .signup(&format!("user{i}@example.test"), PASSWORD)
                .await
                .expect(201);
        }
        let limited = Browser::new(&soul)
            .signup("one-more@example.test", PASSWORD)
            .await
            .expect(429);
        assert_eq!(limited.code(), "too_many_attempts");
        assert!(limited.headers.contains_key("retry-after"));
        assert_eq!(
            soul.store.count_users().await.unwrap(),
            3,
            "nothing created"
        );
        // Signing in is a separate budget.
        Browser::new(&soul)
            .login("user0@example.test", PASSWORD)
            .await
            .expect(200);
    }

    pub async fn password_change_signs_out_other_sessions(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let mut laptop = Browser::new(&soul);
        laptop
            .signup("ada@example.test", PASSWORD)
            .await
            .expect(201);
        let mut phone = Browser::new(&soul);
        phone.login("ada@example.test", PASSWORD).await.expect(200);
        let before = laptop.clone();
        let change = |current: &str, new: &str| {
            Some(json!({"current_password": current, "new_password": new}))
        };

        let wrong = laptop
            .call(
                Method::POST,
                "/api/me/password",
                change("not it at all", "brand new secret"),
            )
            .await
            .expect(403);
        assert_eq!(
            (wrong.code(), wrong.body["field"].as_str()),
            ("wrong_password", Some("current_password"))
        );
        let weak = laptop
            .call(Method::POST, "/api/me/password", change(PASSWORD, "short"))
            .await
            .expect(422);
        assert_eq!(
            (weak.code(), weak.body["field"].as_str()),
            ("weak_password", Some("new_password"))
        );
        let no_csrf = laptop
            .send(
                Method::POST,
                "/api/me/password",
                change(PASSWORD, "brand new secret"),
                Csrf::Missing,
            )
            .await
            .expect(403);
        assert_eq!(no_csrf.code(), "csrf_failed");
        phone.get("/api/me").await.expect(200);

        let changed = laptop
            .call(
                Method::POST,
                "/api/me/password",
                change(PASSWORD, "brand new secret"),
            )
            .await
            .expect(204);
        let cookies = changed.cookies();
        assert_ne!(
            Some(&cookies["prism_session"].value),
            before.session.as_ref()
        );
        assert!(cookies["prism_session"].has("HttpOnly"));
        assert_ne!(Some(&cookies["prism_csrf"].value), before.csrf.as_ref());
        // This browser stays signed in with its new session (and new CSRF token)…
        assert_eq!(
            laptop.get("/api/me").await.expect(200).body["via"],
            "session"
        );
        laptop
            .call(Method::PATCH, "/api/me", Some(json!({"name": "Ada"})))
            .await
            .expect(200);
        // …its old cookie and every other session are signed out.
        before.clone().get("/api/me").await.expect(401);
        phone.get("/api/me").await.expect(401);
        let mut fresh = Browser::new(&soul);
        fresh.login("ada@example.test", PASSWORD).await.expect(401);
        fresh
            .login("ada@example.test", "brand new secret")
            .await
            .expect(200);

        // With an API token: the password changes, all sessions end, no cookies are set, and the
        // token keeps working.
        let created = laptop
            .call(Method::POST, "/api/tokens", Some(json!({"name": "script"})))
            .await
            .expect(201);
        let token = created.body["token"].as_str().unwrap().to_owned();
        let by_token = client()
            .post(soul.url("/api/me/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": "brand new secret", "new_password": "third secret!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(by_token.status(), 204);
        assert!(set_cookies(by_token.headers()).is_empty());
        laptop.get("/api/me").await.expect(401);
        fresh.get("/api/me").await.expect(401);
        let me = client()
            .get(soul.url("/api/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200);
        Browser::new(&soul)
            .login("ada@example.test", "third secret!")
            .await
            .expect(200);
    }

    pub async fn cookies_are_secure_behind_tls(store: Arc<dyn Store>) {
        let soul = Soul::start(store.clone()).await;
        let mut proxied = Browser::new(&soul);
        proxied.extra.push(("x-forwarded-proto", "https".into()));
        let created = proxied
            .signup("ada@example.test", PASSWORD)
            .await
            .expect(201);
        for (name, cookie) in created.cookies() {
            assert!(cookie.has("Secure"), "{name}");
        }
        let out = proxied
            .call(Method::POST, "/api/auth/logout", None)
            .await
            .expect(204);
        for (name, cookie) in out.cookies() {
            assert!(cookie.has("Secure"), "{name}");
        }
        let mut plain = Browser::new(&soul);
        let signed_in = plain.login("ada@example.test", PASSWORD).await.expect(200);
        assert!(signed_in.cookies().values().all(|c| !c.has("Secure")));

        // Configuration overrides what the proxy says, both ways.
        for (setting, proto, secure) in [
            (Some(true), None, true),
            (Some(false), Some("https"), false),
        ] {
            let soul = Soul::start_with(
                store.clone(),
                SoulSettings {
                    secure_cookies: setting,
                    ..SoulSettings::default()
                },
            )
            .await;
            let mut b = Browser::new(&soul);
            if let Some(proto) = proto {
                b.extra.push(("x-forwarded-proto", proto.into()));
            }
            let answer = b.login("ada@example.test", PASSWORD).await.expect(200);
            let cookies = answer.cookies();
            assert_eq!(cookies.len(), 2);
            assert!(
                cookies.values().all(|c| c.has("Secure") == secure),
                "{setting:?}: {cookies:?}"
            );
        }
    }

    pub async fn secrets_never_reach_the_logs(store: Arc<dyn Store>) {
        let logs = crate::accounts::capture_logs();
        let soul = Soul::start(store).await;
        let password = format!("pw-{}", prism_domain::UserId::new());
        let mut ada = Browser::new(&soul);
        ada.signup("ada@example.test", &password).await.expect(201);
        ada.login("ada@example.test", &password).await.expect(200);
        ada.login("ada@example.test", &format!("{password}-wrong"))
            .await
            .expect(401);
        let new_password = format!("new-{password}");
        ada.call(
            Method::POST,
            "/api/me/password",
            Some(json!({"current_password": password, "new_password": new_password})),
        )
        .await
        .expect(204);
        let token = ada
            .call(Method::POST, "/api/tokens", Some(json!({"name": "t"})))
            .await
            .expect(201)
            .body["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let session = ada.session.clone().unwrap();
        let csrf = ada.csrf.clone().unwrap();
        ada.call(Method::POST, "/api/auth/logout", None)
            .await
            .expect(204);
        let text = logs.text();
        assert!(
            text.contains("account created"),
            "the capture works: {} bytes",
            text.len()
        );
        for secret in [&password, &new_password, &session, &csrf, &token] {
            assert!(!text.contains(secret.as_str()), "a secret was logged");
        }
    }

    pub async fn openapi_documents_accounts_and_tokens(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let doc: Value = client()
            .get(soul.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (path, method, tag) in [
            ("/api/auth/signup", "post", "accounts"),
            ("/api/auth/login", "post", "accounts"),
            ("/api/auth/logout", "post", "accounts"),
            ("/api/me", "get", "accounts"),
            ("/api/me", "patch", "accounts"),
            ("/api/me/password", "post", "accounts"),
            ("/api/tokens", "get", "tokens"),
            ("/api/tokens", "post", "tokens"),
            ("/api/tokens/{id}", "delete", "tokens"),
            ("/api/workspaces/{id}/ingest-keys", "get", "tokens"),
            ("/api/workspaces/{id}/ingest-keys", "post", "tokens"),
            (
                "/api/workspaces/{id}/ingest-keys/{key_id}",
                "delete",
                "tokens",
            ),
        ] {
            let op = &doc["paths"][path][method];
            assert_eq!(op["tags"][0], tag, "{method} {path} is documented");
        }
        let signup = doc["paths"]["/api/auth/signup"]["post"].to_string();
        assert!(signup.contains("weak_password") && signup.contains("8 to 1024"));
        let login = &doc["paths"]["/api/auth/login"]["post"]["responses"];
        assert!(
            login["429"]["headers"]["retry-after"].is_object(),
            "{login}"
        );
    }
}

/// Everything logged by this test process from now on (a global subscriber, installed once).
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub fn capture_logs() -> Logs {
    use std::sync::{Arc, Mutex, OnceLock};
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    let buffer = BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || Sink(buffer.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global log subscriber in the API tests");
        buffer
    });
    Logs(buffer.clone())
}

struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

for_each_backend!(super::suite =>
    signup_sets_cookies_and_signs_in,
    signups_are_throttled_per_address,
    cookie_mutations_need_the_csrf_token,
    logout_ends_the_session,
    closed_signup_admits_only_the_first_account,
    bad_signups_name_the_field_and_create_nothing,
    wrong_password_and_unknown_email_look_the_same,
    failed_logins_are_throttled,
    password_change_signs_out_other_sessions,
    cookies_are_secure_behind_tls,
    secrets_never_reach_the_logs,
    openapi_documents_accounts_and_tokens,
);
