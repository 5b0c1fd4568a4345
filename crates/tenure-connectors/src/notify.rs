//! Delivering notices to people: a webhook (an HTTP POST of the notice, signed as the Standard
//! Webhooks specification says, so its libraries verify it) and email over SMTP (lettre, with
//! rustls and ring). Both take their channel's settings with `${VAR}`s already expanded.
//!
//! Webhook headers: `webhook-id` (the notice's key: the same on every retry, so a receiver
//! drops duplicates), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`, the secret
//! being the bytes of its base64 after `whsec_`.
//!
//! Errors are [`ConnectorError`]s naming the channel: `Config` for what retrying cannot fix
//! (a secret that is not one, an address that does not parse), `Unreachable` and `Refused` for
//! what a later attempt may get through.

use crate::ConnectorError;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use std::collections::BTreeMap;

fn config(channel: &str, message: impl Into<String>) -> ConnectorError {
    ConnectorError::Config { system: channel.to_owned(), message: message.into() }
}

/// The Standard Webhooks signature of one delivery: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// The key of a Standard Webhooks secret: `whsec_` (optional) and base64 of at least 16 bytes.
pub fn secret_key(channel: &str, secret: &str) -> Result<Vec<u8>, ConnectorError> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| config(channel, "field `secret`: not a Standard Webhooks secret (`whsec_` and base64)"))?;
    if key.len() < 16 {
        return Err(config(
            channel,
            format!("field `secret`: {} bytes; a secret is at least 16 random bytes", key.len()),
        ));
    }
    Ok(key)
}

/// A webhook channel.
pub struct Webhook {
    channel: String,
    url: String,
    key: Vec<u8>,
    agent: ureq::Agent,
}

impl Webhook {
    /// From the channel's expanded settings (`url`, `secret`, TLS settings).
    pub fn new(channel: &str, settings: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let url = settings.get("url").ok_or_else(|| config(channel, "field `url` missing"))?.clone();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(config(channel, format!("field `url`: `{url}` is not an http(s) URL")));
        }
        let key = secret_key(channel, settings.get("secret").map_or("", String::as_str))?;
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(std::time::Duration::from_secs(15)));
        if url.starts_with("https://") {
            let tls = crate::tls::Tls::from_map(channel, settings)?;
            tls.warn_if_unverified();
            builder = builder.tls_config(crate::scim::ureq_tls(&tls));
        }
        Ok(Self { channel: channel.to_owned(), url, key, agent: builder.build().into() })
    }

    /// POST `body` (the notice, JSON) signed for delivery `id` at `timestamp`; done on a 2xx.
    pub async fn send(&self, id: &str, timestamp: i64, body: Vec<u8>) -> Result<(), ConnectorError> {
        let signature =
            sign(&self.key, id, timestamp, &body).map_err(|e| config(&self.channel, format!("secret: {e}")))?;
        let (agent, url, id) = (self.agent.clone(), self.url.clone(), id.to_owned());
        let result = tokio::task::spawn_blocking(move || -> Result<u16, ureq::Error> {
            let resp = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", &signature)
                .send(&body[..])?;
            Ok(resp.status().as_u16())
        })
        .await
        .map_err(|e| ConnectorError::Unreachable { system: self.channel.clone(), message: e.to_string() })?;
        let status = result.map_err(|e| ConnectorError::Unreachable {
            system: self.channel.clone(),
            message: crate::tls::explain(&e.to_string()),
        })?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(ConnectorError::Refused {
                system: self.channel.clone(),
                operation: "deliver".into(),
                message: format!("the receiver answered HTTP {status}"),
            })
        }
    }
}

/// An email channel.
pub struct Mailer {
    channel: String,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    /// From the channel's expanded settings: `url` (`smtp://host[:port]` in the clear, usually
    /// to a relay on the same host; `smtp+starttls://` upgrading, port 587 by default;
    /// `smtps://` TLS from the start, 465), `from`, `username`/`password`, TLS settings.
    pub fn new(channel: &str, settings: &BTreeMap<String, String>) -> Result<Self, ConnectorError> {
        let url = settings.get("url").ok_or_else(|| config(channel, "field `url` missing"))?;
        let (mode, rest, default_port) = if let Some(r) = url.strip_prefix("smtps://") {
            ("tls", r, 465)
        } else if let Some(r) = url.strip_prefix("smtp+starttls://") {
            ("starttls", r, 587)
        } else if let Some(r) = url.strip_prefix("smtp://") {
            ("plain", r, 25)
        } else {
            return Err(config(channel, format!("field `url`: `{url}` is not smtp://, smtp+starttls:// or smtps://")));
        };
        let hostport = rest.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse::<u16>().map_err(|_| config(channel, format!("field `url`: port `{p}`")))?;
                (h.trim_start_matches('[').trim_end_matches(']'), port)
            }
            None => (hostport, default_port),
        };
        if host.is_empty() || host.contains(['/', '@', '?']) {
            return Err(config(
                channel,
                format!("field `url`: `{url}` is smtp://HOST[:PORT] (credentials go in `username` and `password`)"),
            ));
        }
        let from: Mailbox = settings
            .get("from")
            .ok_or_else(|| config(channel, "field `from` missing"))?
            .parse()
            .map_err(|e| config(channel, format!("field `from`: {e}")))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(std::time::Duration::from_secs(30)));
        if mode != "plain" {
            let mut params = TlsParameters::builder(host.to_owned());
            if settings.contains_key("tls_ca_file") {
                let tls = crate::tls::Tls::from_map(channel, settings)?;
                for der in tls.roots() {
                    let cert = Certificate::from_der(der.to_vec())
                        .map_err(|e| config(channel, format!("field `tls_ca_file`: {e}")))?;
                    params = params.add_root_certificate(cert);
                }
            }
            if settings.get("tls_verify").is_some_and(|v| v == "false") {
                tracing::warn!(channel, "TLS certificate verification is off (`tls_verify = \"false\"`)");
                params = params.dangerous_accept_invalid_certs(true);
            }
            let params = params.build_rustls().map_err(|e| config(channel, format!("TLS: {e}")))?;
            builder = builder.tls(if mode == "tls" { Tls::Wrapper(params) } else { Tls::Required(params) });
        }
        match (settings.get("username"), settings.get("password")) {
            (Some(u), Some(p)) => builder = builder.credentials(Credentials::new(u.clone(), p.clone())),
            (None, None) => {}
            _ => return Err(config(channel, "`username` and `password` go together")),
        }
        Ok(Self { channel: channel.to_owned(), from, transport: builder.build() })
    }

    /// Send `text` under `subject` to `to` (an address), with a Message-ID made of `id`, the
    /// notice's key, so a mailbox can tell a retried notice from a new one.
    pub async fn send(&self, id: &str, to: &str, subject: &str, text: &str) -> Result<(), ConnectorError> {
        let to: Mailbox = to.parse().map_err(|e| config(&self.channel, format!("recipient `{to}`: {e}")))?;
        let local: String =
            id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{local}@tenure>")))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .map_err(|e| config(&self.channel, format!("message: {e}")))?;
        self.transport.send(message).await.map_err(|e| {
            let message = e.to_string();
            if e.is_permanent() {
                ConnectorError::Refused { system: self.channel.clone(), operation: "send".into(), message }
            } else {
                ConnectorError::Unreachable { system: self.channel.clone(), message }
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_standard_webhooks() {
        // The specification's own example (standard-webhooks/spec, "Signature scheme").
        let key = secret_key("hook", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_secret_must_be_one() {
        assert!(matches!(secret_key("hook", "hunter2"), Err(ConnectorError::Config { .. })));
        assert!(secret_key("hook", "whsec_c2hvcnQ=").is_err(), "5 bytes is too short");
    }

    #[test]
    fn smtp_urls_parse_and_problems_name_the_field() {
        let s = |url: &str| -> BTreeMap<String, String> {
            [("url", url), ("from", "tenure <tenure@example.com>")]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        };
        assert!(Mailer::new("mail", &s("smtp://127.0.0.1:2525")).is_ok());
        assert!(Mailer::new("mail", &s("smtp://mail.example.com")).is_ok());
        let e = Mailer::new("mail", &s("smtp://u:p@mail.example.com")).err().unwrap().to_string();
        assert!(e.contains("field `url`"), "{e}");
        let mut bad = s("smtp://127.0.0.1:2525");
        bad.insert("from".into(), "not an address".into());
        let e = Mailer::new("mail", &bad).err().unwrap().to_string();
        assert!(e.contains("field `from`"), "{e}");
    }
}
