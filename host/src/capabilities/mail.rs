//! `kirana:platform/mail`: email, SMS and Web Push through the host's outbox.
//!
//! `send` validates the message and writes it to the `mail_outbox` table at once (so it
//! is on record even if the plugin's handler fails later; plugins send after their own
//! writes). Email is then delivered over SMTP by [`run_sender`] when `[mail] smtp_url`
//! is set, and push to each browser the user subscribed (one row per subscription,
//! see [`crate::capabilities::push`]) — claimed with a lease, retried with exponential
//! backoff, `failed` after `max_attempts`. SMS has no transport: it stays `recorded`,
//! which is what the admin outbox shows. `outbox` lists only the calling plugin's own
//! messages.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sqlx::Row;
use tokio::sync::{watch, Notify};

use crate::cluster::{Channel, Feed};

use crate::bindings::kirana::platform::mail::{
    Host, Message, OutboxPage, OutboxQuery, PushSubscriptionResult, SentMessage,
};
use crate::bindings::wit;
use crate::capabilities::denied;
use crate::capabilities::push::{self, Outcome, Push};
use crate::config::{MailConfig, PushConfig, SmtpTls};
use crate::core::View;
use crate::storage::{now_ms, rfc3339_ms, Db};

/// Largest message body accepted.
const MAX_BODY: usize = 256 * 1024;
/// Longest subject (RFC 5322's line limit).
const MAX_SUBJECT: usize = 998;
/// Most messages one `outbox` call returns.
const MAX_PAGE: u32 = 100;
/// How long a claimed message is leased to one sender.
const LEASE_MS: i64 = 60_000;
/// Longest user id a push message is addressed to.
const MAX_USER_ID: usize = 200;

/// The outbox and its sender's wake-up bell.
pub struct Mail {
    db: Db,
    config: MailConfig,
    wake: Notify,
    /// Tells the other replicas' senders that mail is waiting.
    feed: Arc<dyn Feed>,
    /// Subscriptions, VAPID keys and delivery of the `push` channel.
    push: Push,
}

/// The wake-up body for the mail sender.
pub const WAKE_MAIL: &str = "mail";

/// Why a message was refused.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{0}")]
    Invalid(String),
    /// A push message to a user with no subscription (nothing is recorded).
    #[error("{0}")]
    NoSubscription(String),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

impl Mail {
    /// The outbox; loads (or on first start generates) the VAPID key pair. `subject`
    /// is the VAPID `sub` claim ([`crate::config::Config::push_subject`]).
    pub async fn new(
        db: Db,
        config: MailConfig,
        push: PushConfig,
        subject: String,
        feed: Arc<dyn Feed>,
    ) -> Result<Self> {
        Ok(Self {
            push: Push::new(db.clone(), push, subject).await?,
            db,
            config,
            wake: Notify::new(),
            feed,
        })
    }

    /// Subscriptions and keys of the `push` channel.
    pub fn push(&self) -> &Push {
        &self.push
    }

    /// Wakes the sender (another replica queued mail).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether email is delivered over SMTP (else only recorded).
    pub fn smtp_enabled(&self) -> bool {
        !self.config.smtp_url.is_empty()
    }

    /// Validates and records `message` from `plugin`; returns its id.
    pub async fn send(&self, plugin: &str, message: &Message) -> Result<String, MailError> {
        validate(message).map_err(MailError::Invalid)?;
        if message.channel == "push" {
            return self.send_push(plugin, message).await;
        }
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let smtp = message.channel == "email" && self.smtp_enabled();
        let status = if smtp { "pending" } else { "recorded" };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO mail_outbox (id, plugin, channel, recipient, subject, body, status, \
             attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
        )
        .bind(&id)
        .bind(plugin)
        .bind(&message.channel)
        .bind(message.to.trim())
        .bind(&message.subject)
        .bind(&message.body)
        .bind(status)
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        if smtp {
            self.wake.notify_one();
            self.feed.publish(Channel::Wake, WAKE_MAIL.into());
        }
        Ok(id)
    }

    /// Records a push message once per subscription of the user `message.to`, all or
    /// none; returns the first row's id.
    async fn send_push(&self, plugin: &str, message: &Message) -> Result<String, MailError> {
        let user_id = message.to.trim();
        let subscriptions = self.push.subscription_ids(user_id).await?;
        if subscriptions.is_empty() {
            return Err(MailError::NoSubscription(format!(
                "user {user_id} has no push subscription"
            )));
        }
        let now = now_ms();
        let mut ids = Vec::with_capacity(subscriptions.len());
        let mut tx = self.db.pool.begin_with(self.db.begin_statement()).await?;
        for subscription in &subscriptions {
            let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
            sqlx::query(
                "INSERT INTO mail_outbox (id, plugin, channel, recipient, subject, body, status, \
                 attempts, next_attempt_at, created_at, subscription_id) \
                 VALUES ($1, $2, 'push', $3, $4, $5, 'pending', 0, $6, $6, $7)",
            )
            .bind(&id)
            .bind(plugin)
            .bind(user_id)
            .bind(&message.subject)
            .bind(&message.body)
            .bind(now)
            .bind(subscription)
            .execute(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        self.wake.notify_one();
        self.feed.publish(Channel::Wake, WAKE_MAIL.into());
        Ok(ids.swap_remove(0))
    }

    /// `plugin`'s messages matching `query`, newest first.
    pub async fn list(&self, plugin: &str, query: &OutboxQuery) -> Result<OutboxPage, MailError> {
        let limit = i64::from(query.limit.min(MAX_PAGE));
        let offset = i64::from(query.offset);
        // Fixed SQL with optional filters expressed as "$n = '' OR col = $n" keeps
        // every parameter typed as text on PostgreSQL.
        let channel = query.channel.clone().unwrap_or_default();
        let to = query.to.clone().unwrap_or_default();
        let filter = "plugin = $1 AND ($2 = '' OR channel = $2) AND ($3 = '' OR recipient = $3)";
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) FROM mail_outbox WHERE {filter}"))
            .bind(plugin)
            .bind(&channel)
            .bind(&to)
            .fetch_one(&self.db.pool)
            .await?
            .try_get(0)?;
        let rows = sqlx::query(&format!(
            "SELECT id, channel, recipient, subject, body, created_at, status FROM mail_outbox \
             WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        ))
        .bind(plugin)
        .bind(&channel)
        .bind(&to)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.db.pool)
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(SentMessage {
                    id: r.try_get(0)?,
                    channel: r.try_get(1)?,
                    to: r.try_get(2)?,
                    subject: r.try_get(3)?,
                    body: r.try_get(4)?,
                    created_at: rfc3339_ms(r.try_get(5)?),
                    status: r.try_get(6)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(OutboxPage {
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    /// Claims up to `n` due messages for this sender (a lease, so two replicas never
    /// send the same one at once): push always, email when SMTP is configured.
    async fn claim_due(&self, n: i64) -> Result<Vec<Due>> {
        let now = now_ms();
        let email = if self.smtp_enabled() { "email" } else { "" };
        let rows = sqlx::query(
            "SELECT id, recipient, subject, body, attempts, channel, subscription_id \
             FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             AND (channel = 'push' OR channel = $3) ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(n)
        .bind(email)
        .fetch_all(&self.db.pool)
        .await?;
        let mut claimed = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            let won = sqlx::query(
                "UPDATE mail_outbox SET next_attempt_at = $1 \
                 WHERE id = $2 AND status = 'pending' AND next_attempt_at <= $3",
            )
            .bind(now + LEASE_MS)
            .bind(&id)
            .bind(now)
            .execute(&self.db.pool)
            .await?
            .rows_affected();
            if won == 1 {
                claimed.push(Due {
                    id,
                    to: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    body: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                    channel: r.try_get(5)?,
                    subscription_id: r.try_get(6)?,
                });
            }
        }
        Ok(claimed)
    }

    /// Records one delivery attempt's outcome: a failure that may pass is retried with
    /// backoff until `max_attempts`; one that cannot is `failed` at once.
    async fn settle(&self, message: &Due, outcome: Outcome) -> Result<()> {
        let now = now_ms();
        let attempts = message.attempts + 1;
        let (give_up, error) = match outcome {
            Outcome::Sent => {
                sqlx::query(
                    "UPDATE mail_outbox SET status = 'sent', attempts = $1, sent_at = $2, \
                     last_error = NULL WHERE id = $3",
                )
                .bind(attempts)
                .bind(now)
                .bind(&message.id)
                .execute(&self.db.pool)
                .await?;
                return Ok(());
            }
            Outcome::Retry(e) => (attempts >= i64::from(self.config.max_attempts), e),
            Outcome::Failed(e) | Outcome::Gone(e) => (true, e),
        };
        let status = if give_up { "failed" } else { "pending" };
        let backoff = backoff_ms(self.config.backoff_ms, attempts);
        tracing::warn!(message_id = %message.id, channel = %message.channel, attempts, %error, give_up, "sending a message failed");
        sqlx::query(
            "UPDATE mail_outbox SET status = $1, attempts = $2, next_attempt_at = $3, \
             last_error = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(attempts)
        .bind(now.saturating_add(backoff))
        .bind(error)
        .bind(&message.id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

/// A claimed message.
struct Due {
    id: String,
    to: String,
    subject: String,
    body: String,
    attempts: i64,
    channel: String,
    /// For `push`: the subscription it goes to.
    subscription_id: Option<String>,
}

/// Delay before retry number `attempts` (1-based): `base`, doubling, capped at 1 hour.
fn backoff_ms(base: u64, attempts: i64) -> i64 {
    let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let ms = base.saturating_mul(1u64 << shift).min(3_600_000);
    i64::try_from(ms).unwrap_or(3_600_000)
}

/// Checks a message before it is recorded.
fn validate(m: &Message) -> Result<(), String> {
    let to = m.to.trim();
    match m.channel.as_str() {
        "email" => {
            to.parse::<Mailbox>()
                .map_err(|e| format!("`to` is not an email address: {e}"))?;
        }
        "sms" => {
            if !is_e164(to) {
                return Err("`to` must be an E.164 phone number like +919876543210".into());
            }
        }
        "push" => {
            if to.is_empty() || to.len() > MAX_USER_ID || to.chars().any(char::is_control) {
                return Err(format!(
                    "`to` must be the user id a push message goes to (at most {MAX_USER_ID} bytes)"
                ));
            }
            if m.body.len() > push::MAX_PAYLOAD {
                return Err(format!(
                    "a push body is at most {} bytes (one encrypted record)",
                    push::MAX_PAYLOAD
                ));
            }
        }
        other => return Err(format!("unknown channel {other:?}; use email, sms or push")),
    }
    if m.subject.len() > MAX_SUBJECT || m.subject.contains(['\r', '\n']) {
        return Err(format!(
            "the subject must be one line of at most {MAX_SUBJECT} bytes"
        ));
    }
    if m.body.len() > MAX_BODY {
        return Err(format!("the body is larger than {MAX_BODY} bytes"));
    }
    Ok(())
}

/// `+` then 7 to 15 digits, the first not 0.
fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Most messages in flight at once (per replica).
const IN_FLIGHT: usize = 16;
/// One attempt's hard limit, whatever the SMTP and push timeouts say: it ends well
/// before its lease, so no other sender takes the message while it is still going.
const ATTEMPT_LIMIT: Duration = Duration::from_millis((LEASE_MS / 2) as u64);
/// On stop, sends in flight get this long to finish; the rest go again after their lease.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Delivers pending messages until `stop`: push always, email over SMTP when
/// `smtp_url` is set. Up to [`IN_FLIGHT`] messages go out at once, each on its own: a
/// free slot takes the next due message at once, so a slow push service holds up only
/// the slots it occupies, never a whole batch of email.
pub async fn run_sender(mail: Arc<Mail>, mut stop: watch::Receiver<bool>) {
    let transport = if mail.smtp_enabled() {
        match transport(&mail.config) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "the SMTP transport cannot be built; email stays pending");
                None
            }
        }
    } else {
        None
    };
    let poll = Duration::from_millis(mail.config.poll_ms.max(10));
    let mut sending = tokio::task::JoinSet::new();
    loop {
        while sending.try_join_next().is_some() {}
        let free = IN_FLIGHT.saturating_sub(sending.len());
        if free > 0 {
            match mail.claim_due(free as i64).await {
                Ok(batch) => {
                    for message in batch {
                        let (mail, transport) = (mail.clone(), transport.clone());
                        sending.spawn(async move {
                            let outcome = tokio::time::timeout(
                                ATTEMPT_LIMIT,
                                mail.deliver(transport.as_ref(), &message),
                            )
                            .await
                            .unwrap_or_else(|_| {
                                Outcome::Retry(format!(
                                    "no answer within {} s",
                                    ATTEMPT_LIMIT.as_secs()
                                ))
                            });
                            if let Err(e) = mail.settle(&message, outcome).await {
                                tracing::error!(error = %e, "recording a message's outcome failed");
                            }
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the mail outbox failed"),
            }
        }
        let stopping = tokio::select! {
            _ = stop.wait_for(|s| *s) => true,
            // A slot came free: the next due message may go.
            Some(_) = sending.join_next(), if !sending.is_empty() => false,
            _ = mail.wake.notified() => false,
            _ = tokio::time::sleep(poll) => false,
        };
        if stopping {
            let _ = tokio::time::timeout(STOP_GRACE, async {
                while sending.join_next().await.is_some() {}
            })
            .await;
            return;
        }
    }
}

impl Mail {
    /// One attempt at one claimed message.
    async fn deliver(
        &self,
        transport: Option<&AsyncSmtpTransport<Tokio1Executor>>,
        message: &Due,
    ) -> Outcome {
        match (message.channel.as_str(), &message.subscription_id) {
            ("push", Some(subscription)) => self.push.deliver(subscription, &message.body).await,
            ("push", None) => Outcome::Failed("a push message without a subscription".into()),
            _ => match transport {
                Some(t) => match deliver_email(t, &self.config.from, message).await {
                    Ok(()) => Outcome::Sent,
                    Err(e) => Outcome::Retry(e),
                },
                None => Outcome::Retry("the SMTP transport cannot be built".into()),
            },
        }
    }
}

/// The SMTP transport of `smtp_url`; with `tls_ca_file`, its TLS (of the URL's kind)
/// trusts those authorities besides the public roots.
fn transport(config: &MailConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
        .context("mail.smtp_url")?;
    if let Some(ca) = config.tls_ca().context("mail.tls_ca_file")? {
        // lettre names the server by the URL's host, as from_url does.
        let host = url::Url::parse(&config.smtp_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .context("mail.smtp_url has no host")?;
        let parameters = TlsParameters::builder(host)
            .add_root_certificate(ca)
            .build()
            .context("mail.tls_ca_file")?;
        builder = builder.tls(match config.smtp_tls() {
            SmtpTls::Wrapper => Tls::Wrapper(parameters),
            SmtpTls::Required => Tls::Required(parameters),
            SmtpTls::Opportunistic => Tls::Opportunistic(parameters),
            SmtpTls::None => anyhow::bail!("mail.tls_ca_file needs a TLS mail.smtp_url"),
        });
    }
    Ok(builder
        .timeout(Some(Duration::from_millis(config.timeout_ms)))
        .build())
}

async fn deliver_email(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &str,
    email: &Due,
) -> Result<(), String> {
    let from: Mailbox = from.parse().map_err(|e| format!("mail.from: {e}"))?;
    let to: Mailbox = email
        .to
        .parse()
        .map_err(|e| format!("recipient {:?}: {e}", email.to))?;
    let message = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(email.body.clone())
        .map_err(|e| format!("building the message: {e}"))?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

impl Host for View<'_, Mail> {
    async fn send(&mut self, message: Message) -> wasmtime::Result<Result<String, wit::Error>> {
        if !self.plugin.grants.mail {
            return Ok(Err(denied("mail", &self.plugin.name)));
        }
        Ok(match self.state.send(&self.plugin.name, &message).await {
            Ok(id) => Ok(id),
            Err(MailError::Invalid(m)) => Err(wit::Error::Invalid(m)),
            Err(MailError::NoSubscription(m)) => Err(wit::Error::NotConfigured(m)),
            Err(MailError::Store(e)) => {
                tracing::error!(plugin = %self.plugin.name, error = %e, "recording a message failed");
                Err(wit::Error::Unavailable(
                    "the mail outbox is unavailable".into(),
                ))
            }
        })
    }

    async fn outbox(
        &mut self,
        query: OutboxQuery,
    ) -> wasmtime::Result<Result<OutboxPage, wit::Error>> {
        if !self.plugin.grants.mail {
            return Ok(Err(denied("mail", &self.plugin.name)));
        }
        Ok(match self.state.list(&self.plugin.name, &query).await {
            Ok(page) => Ok(page),
            Err(MailError::Invalid(m)) => Err(wit::Error::Invalid(m)),
            Err(e) => Err(store_error(&self.plugin.name, "reading the outbox", e)),
        })
    }

    async fn push_public_key(&mut self) -> wasmtime::Result<Result<String, wit::Error>> {
        if !self.plugin.grants.mail {
            return Ok(Err(denied("mail", &self.plugin.name)));
        }
        Ok(Ok(self.state.push.public_key().to_string()))
    }

    async fn push_subscribe(
        &mut self,
        user_id: String,
        endpoint: String,
        p256dh: String,
        auth: String,
    ) -> wasmtime::Result<Result<PushSubscriptionResult, wit::Error>> {
        if !self.plugin.grants.mail {
            return Ok(Err(denied("mail", &self.plugin.name)));
        }
        let stored = self
            .state
            .push
            .subscribe(&user_id, &endpoint, &p256dh, &auth)
            .await;
        Ok(match stored {
            Ok((id, created)) => Ok(PushSubscriptionResult { id, created }),
            Err(MailError::Invalid(m)) => Err(wit::Error::Invalid(m)),
            Err(e) => Err(store_error(
                &self.plugin.name,
                "storing a push subscription",
                e,
            )),
        })
    }

    async fn push_unsubscribe(
        &mut self,
        user_id: String,
        id: String,
    ) -> wasmtime::Result<Result<bool, wit::Error>> {
        if !self.plugin.grants.mail {
            return Ok(Err(denied("mail", &self.plugin.name)));
        }
        Ok(match self.state.push.unsubscribe(&user_id, &id).await {
            Ok(deleted) => Ok(deleted),
            Err(MailError::Invalid(m)) => Err(wit::Error::Invalid(m)),
            Err(e) => Err(store_error(
                &self.plugin.name,
                "deleting a push subscription",
                e,
            )),
        })
    }
}

/// A storage failure as the plugin sees it; the cause only in the host's log.
fn store_error(plugin: &str, what: &str, e: MailError) -> wit::Error {
    tracing::error!(plugin, error = %e, "{what} failed");
    wit::Error::Unavailable("the mail outbox is unavailable".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: &str, to: &str) -> Message {
        Message {
            channel: channel.into(),
            to: to.into(),
            subject: "Hello".into(),
            body: "Body".into(),
        }
    }

    #[test]
    fn validates_channels_and_recipients() {
        assert!(validate(&msg("email", "asha@example.in")).is_ok());
        assert!(validate(&msg("email", "Asha <asha@example.in>")).is_ok());
        assert!(validate(&msg("email", "not-an-address")).is_err());
        assert!(validate(&msg("sms", "+919876543210")).is_ok());
        assert!(validate(&msg("sms", "9876543210")).is_err());
        assert!(validate(&msg("sms", "+0123456789")).is_err());
        assert!(validate(&msg("pigeon", "+919876543210")).is_err());
        assert!(validate(&msg("push", "usr_0190abc")).is_ok());
        assert!(validate(&msg("push", " ")).is_err());
        assert!(validate(&msg("push", &"u".repeat(MAX_USER_ID + 1))).is_err());
        let mut p = msg("push", "usr_1");
        p.body = "x".repeat(push::MAX_PAYLOAD + 1);
        assert!(validate(&p).is_err());
        let mut m = msg("email", "a@b.in");
        m.subject = "two\nlines".into();
        assert!(validate(&m).is_err());
        m.subject = "ok".into();
        m.body = "x".repeat(MAX_BODY + 1);
        assert!(validate(&m).is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1000, 1), 1000);
        assert_eq!(backoff_ms(1000, 2), 2000);
        assert_eq!(backoff_ms(1000, 4), 8000);
        assert_eq!(backoff_ms(1000, 60), 3_600_000);
    }

    #[test]
    fn smtp_urls() {
        assert!(crate::config::check_smtp_url("smtp://127.0.0.1:2525").is_ok());
        assert!(crate::config::check_smtp_url("smtps://user:pw@mail.example.in").is_ok());
        assert!(crate::config::check_smtp_url("http://mail.example.in").is_err());
    }
}
