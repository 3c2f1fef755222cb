//! Senders that leave the machine: email over SMTP ([`EmailSender`]) and HTTP webhooks
//! ([`WebhookSender`]).
//!
//! They are [`Notifier`]s that try once and report the error; retries, backoff and surviving a
//! restart are the outbox's job ([`crate::outbox`]), so a slow or down mail server never holds up
//! a job.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use weir_core::html::escape;
use weir_core::SecretValue;

use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use weir_core::config::{SmtpSecurity, SubscriptionConfig, WebhookFormat};
use weir_ports::{Notification, Notifier, PortError, Secrets};

/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a sender could not be built from its subscription.
#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("address {0:?}: {1}")]
    Address(String, lettre::address::AddressError),
    #[error("ca_file {}: {}", .0.display(), .1)]
    CaFile(PathBuf, String),
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("{0}")]
    Http(#[from] reqwest::Error),
}

fn mailbox(s: &str) -> Result<Mailbox, SenderError> {
    s.parse().map_err(|e| SenderError::Address(s.to_owned(), e))
}

/// Sends each message as one email with a text and an HTML body. The SMTP password is read
/// through [`Secrets`] for each delivery (from its cache), so a rotated one is used without a
/// restart.
pub struct EmailSender {
    host: String,
    port: Option<u16>,
    security: SmtpSecurity,
    /// For `starttls` and `tls`: the public roots and the `ca_file`'s certificates.
    tls: Option<TlsParameters>,
    username: Option<String>,
    password: Option<SecretValue>,
    secrets: Arc<Secrets>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailSender {
    pub fn from_config(sub: &SubscriptionConfig, secrets: Arc<Secrets>) -> Result<Self, SenderError> {
        let host = sub.host.clone().ok_or(SenderError::Missing("host"))?;
        let from = mailbox(sub.from.as_deref().ok_or(SenderError::Missing("from"))?)?;
        let to = sub.to.iter().map(|t| mailbox(t)).collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(SenderError::Missing("to"));
        }
        // What `starttls_relay` and `relay` set up, plus the subscription's own CA if it has one;
        // read once here, so a bad `ca_file` refuses the subscription at start.
        let tls = match sub.security {
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                Some(tls_parameters(&host, sub.ca_file.as_deref())?)
            }
        };
        Ok(EmailSender {
            host,
            port: sub.port,
            security: sub.security,
            tls,
            username: sub.username.clone().or_else(|| std::env::var("WEIR_SMTP_USERNAME").ok()),
            password: sub
                .password
                .clone()
                .or_else(|| std::env::var("WEIR_SMTP_PASSWORD").ok().map(SecretValue::Inline)),
            secrets,
            from,
            to,
        })
    }

    /// The transport for one delivery, with the password as it is now.
    async fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, PortError> {
        let host = self.host.as_str();
        let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host);
        let mut builder = match (self.security, self.tls.clone()) {
            (SmtpSecurity::Starttls, Some(tls)) => {
                plain.port(self.port.unwrap_or(587)).tls(Tls::Required(tls))
            }
            (SmtpSecurity::Tls, Some(tls)) => plain.port(self.port.unwrap_or(465)).tls(Tls::Wrapper(tls)),
            _ => plain.port(self.port.unwrap_or(25)),
        };
        if let (Some(username), Some(password)) = (&self.username, &self.password) {
            let password = self
                .secrets
                .get(password)
                .await
                .map_err(|e| PortError::unavailable("reading the SMTP password", e))?;
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(builder.timeout(Some(ATTEMPT_TIMEOUT)).build())
    }

    /// The email for a notification (also used by tests).
    pub fn message(&self, n: &Notification) -> Result<Message, PortError> {
        let mut builder =
            Message::builder().from(self.from.clone()).subject(Notification::clamp_subject(&n.subject));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(n.text.clone()))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html(n))),
            )
            .map_err(|e| PortError::unavailable("building the email", e))
    }
}

#[async_trait]
impl Notifier for EmailSender {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let message = self.message(n)?;
        self.transport()
            .await?
            .send(message)
            .await
            .map_err(|e| PortError::unavailable("sending email", e))?;
        Ok(())
    }
}

/// The HTML body: the notification's own document if it has one, otherwise the subject as a
/// heading, the text, and the attributes as a table.
pub fn html(n: &Notification) -> String {
    if let Some(document) = &n.html {
        return document.clone();
    }
    let mut rows = String::new();
    for (k, v) in &n.attributes {
        rows.push_str(&format!("<tr><th align=\"left\">{}</th><td>{}</td></tr>", escape(k), escape(v)));
    }
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><pre style=\"font-family:inherit;white-space:pre-wrap\">{}</pre><table>{}</table></body></html>",
        escape(&Notification::clamp_subject(&n.subject)),
        escape(&n.text),
        rows
    )
}

/// TLS for `host`: the public roots (Mozilla's, compiled in) and the certificates of `ca_file`.
fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, SenderError> {
    install_crypto();
    let mut params = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let bad = |why: String| SenderError::CaFile(path.to_owned(), why);
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
        params = params.add_root_certificate(cert);
    }
    Ok(params.build_rustls()?)
}

/// Installs rustls's ring provider as the process default, once, for the webhooks' HTTPS
/// client (reqwest built without a provider of its own) and the SMTP TLS connections.
fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// POSTs each message as JSON; any status but 2xx is a failed attempt. The URL is read through
/// [`Secrets`] for each delivery, as the email password is.
pub struct WebhookSender {
    client: reqwest::Client,
    url: SecretValue,
    secrets: Arc<Secrets>,
    format: WebhookFormat,
}

impl WebhookSender {
    pub fn from_config(sub: &SubscriptionConfig, secrets: Arc<Secrets>) -> Result<Self, SenderError> {
        let url = sub.url.clone().ok_or(SenderError::Missing("url"))?;
        install_crypto();
        let client = reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build()?;
        Ok(WebhookSender { client, url, secrets, format: sub.format })
    }

    /// The JSON body for a notification.
    pub fn body(format: WebhookFormat, n: &Notification) -> serde_json::Value {
        match format {
            WebhookFormat::Json => to_json(n),
            WebhookFormat::Slack => {
                serde_json::json!({ "text": format!("*{}*\n{}", slack_escape(&n.subject), slack_escape(&n.text)) })
            }
        }
    }
}

#[async_trait]
impl Notifier for WebhookSender {
    async fn publish(&self, n: &Notification) -> Result<(), PortError> {
        let url = self
            .secrets
            .get(&self.url)
            .await
            .map_err(|e| PortError::unavailable("reading the webhook's url", e))?;
        let response =
            self.client.post(&url).json(&Self::body(self.format, n)).send().await.map_err(|e| {
                PortError::unavailable(format!("POST {}", redact_urls(&url)), e.without_url())
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(PortError::unavailable(
                format!("POST {}", redact_urls(&url)),
                std::io::Error::other(format!("the webhook answered {status}")),
            ));
        }
        Ok(())
    }
}

/// Text for a Slack message: `&`, `<` and `>` escaped as Slack requires, so that an object key
/// such as `<!channel>` or `<mailto:a@b|click>` is shown as written, never a mention or a link.
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `text` with every URL cut to its scheme and host, for logs and errors: a webhook's path is
/// often its secret (Slack's `hooks.slack.com/services/T…/B…/<secret>`), and so may be a query
/// or the user part of the host.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '{' | '}'))
            .unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let authority = url.split(['/', '?', '#']).next().unwrap_or_default();
        out.push_str(authority.rsplit('@').next().unwrap_or_default());
        if url.len() > authority.len() {
            out.push_str("/…");
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// A notification as JSON (the webhook body and the outbox's stored form).
pub fn to_json(n: &Notification) -> serde_json::Value {
    serde_json::json!({
        "topic": n.topic,
        "subject": n.subject,
        "text": n.text,
        "attributes": n.attributes,
        "payload": n.payload,
    })
}

/// The outbox's stored form: [`to_json`] with the HTML document, if any (a webhook's body
/// never carries it).
pub fn to_stored_json(n: &Notification) -> serde_json::Value {
    let mut v = to_json(n);
    if let Some(html) = &n.html {
        v["html"] = serde_json::Value::from(html.as_str());
    }
    v
}

/// The inverse of [`to_stored_json`].
pub fn from_json(v: &serde_json::Value) -> Notification {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    Notification {
        html: v.get("html").and_then(|h| h.as_str()).map(str::to_owned),
        topic: s("topic"),
        subject: s("subject"),
        text: s("text"),
        attributes: serde_json::from_value(v.get("attributes").cloned().unwrap_or_default())
            .unwrap_or_default(),
        payload: v.get("payload").cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_messages_show_keys_as_written() {
        let n = Notification {
            html: None,
            topic: "success".into(),
            subject: "weir: <!here> done".into(),
            text: "File: raw/<!channel> <mailto:a@example.com|click> & x.csv".into(),
            attributes: Default::default(),
            payload: serde_json::Value::Null,
        };
        let body = WebhookSender::body(WebhookFormat::Slack, &n);
        assert_eq!(
            body["text"],
            "*weir: &lt;!here&gt; done*\nFile: raw/&lt;!channel&gt; &lt;mailto:a@example.com|click&gt; &amp; x.csv"
        );
        // The JSON format carries the message as it is.
        assert_eq!(WebhookSender::body(WebhookFormat::Json, &n)["text"], n.text.as_str());
    }

    #[test]
    fn urls_in_logs_keep_only_scheme_and_host() {
        assert_eq!(
            redact_urls(
                "success:webhook:slack:https://hooks.slack.com/services/T0/B0/secret{\"status\":[\"ok\"]}"
            ),
            "success:webhook:slack:https://hooks.slack.com/…{\"status\":[\"ok\"]}"
        );
        assert_eq!(
            redact_urls("POST http://user:pw@127.0.0.1:8080/x?token=1 failed"),
            "POST http://127.0.0.1:8080/… failed"
        );
        assert_eq!(redact_urls("http://host"), "http://host");
        assert_eq!(redact_urls("no url here"), "no url here");
    }
}
