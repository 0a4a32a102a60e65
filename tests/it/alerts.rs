//! Alert delivery against real servers started here: an SMTP server speaking the protocol
//! (mailin-embedded, on a thread) and an HTTP receiver (axum), both on 127.0.0.1 port 0.
//! Faults are injected in the servers' replies, never by mocking essbot's client.

use std::collections::VecDeque;
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use essbot::alerts::{
    Alert, AlertLedger, Channel, EmailChannel, Recipient, Role, WebhookChannel, daily_digests,
};
use essbot::config::{EmailSettings, WebhookSettings};
use essbot::store::Store;

use crate::helpers::{TempStore, TestDb, temp_store_on};
use mail_parser::{MessageParser, MimeHeaders};
use mailin_embedded::{Handler, Response, Server};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The SMTP server.

/// What the SMTP server does with the next transactions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SmtpFault {
    /// Refuse the next RCPT TO with this code.
    Rcpt(u16),
    /// Refuse the next DATA command with this code.
    Data(u16),
    /// Refuse the end of the next DATA with this code. mailin then stays in its DATA state
    /// and stops answering: to the client, a server hanging after the message was sent.
    DataEnd(u16),
}

/// One message the server accepted (answered 250 after DATA).
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub raw: Vec<u8>,
}

#[derive(Default)]
struct SmtpShared {
    faults: VecDeque<SmtpFault>,
    accepted: Vec<Received>,
    /// Transactions that reached RCPT TO, accepted or not.
    transactions: usize,
}

/// mailin clones the handler for each connection: the message being received lives in the
/// clone, what tests look at in `shared`.
#[derive(Clone)]
struct SmtpHandler {
    shared: Arc<Mutex<SmtpShared>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for SmtpHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut shared = self.shared.lock().unwrap();
        if self.to.is_empty() {
            shared.transactions += 1;
        }
        if let Some(SmtpFault::Rcpt(code)) = shared.faults.front().copied() {
            shared.faults.pop_front();
            return Response::custom(code, "Mailbox temporarily unavailable".into());
        }
        self.to.push(to.to_owned());
        mailin_embedded::response::OK
    }

    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        let mut shared = self.shared.lock().unwrap();
        if let Some(SmtpFault::Data(code)) = shared.faults.front().copied() {
            shared.faults.pop_front();
            return Response::custom(code, "Transaction failed".into());
        }
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut shared = self.shared.lock().unwrap();
        if let Some(SmtpFault::DataEnd(code)) = shared.faults.front().copied() {
            shared.faults.pop_front();
            self.data.clear();
            return Response::custom(code, "Transaction failed".into());
        }
        shared.accepted.push(Received {
            envelope_from: self.from.clone(),
            envelope_to: self.to.clone(),
            raw: std::mem::take(&mut self.data),
        });
        mailin_embedded::response::OK
    }
}

/// An SMTP server on its own thread, for the life of the test process.
pub(crate) struct SmtpServer {
    pub port: u16,
    shared: Arc<Mutex<SmtpShared>>,
}

impl SmtpServer {
    pub(crate) fn start(faults: &[SmtpFault]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(SmtpShared {
            faults: faults.iter().copied().collect(),
            ..SmtpShared::default()
        }));
        let handler = SmtpHandler {
            shared: shared.clone(),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        std::thread::spawn(move || {
            let mut server = Server::new(handler);
            server
                .with_name("smtp.test")
                .with_num_threads(4)
                .with_tcp_listener(listener);
            server.serve().unwrap();
        });
        Self { port, shared }
    }

    pub(crate) fn settings(&self) -> EmailSettings {
        email_settings(self.port)
    }

    pub(crate) fn accepted(&self) -> Vec<Received> {
        self.shared.lock().unwrap().accepted.clone()
    }

    pub(crate) fn transactions(&self) -> usize {
        self.shared.lock().unwrap().transactions
    }

    pub(crate) fn push_fault(&self, fault: SmtpFault) {
        self.shared.lock().unwrap().faults.push_back(fault);
    }
}

fn email_settings(port: u16) -> EmailSettings {
    EmailSettings {
        smtp_url: format!("smtp://127.0.0.1:{port}"),
        from: "essbot@ars.example".into(),
        to: vec![
            "cpam-ess@cpam.example".into(),
            "Équipe ESS <ess@ars.example>".into(),
        ],
    }
}

fn email(server: &SmtpServer) -> Channel {
    Channel::Email(EmailChannel::new(&server.settings()).unwrap())
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver.

#[derive(Default)]
struct HookShared {
    /// Statuses to answer, in order; 200 once exhausted.
    statuses: VecDeque<u16>,
    /// Every call, whatever it was answered.
    calls: Vec<(HeaderMap, Value, u16)>,
}

pub(crate) struct HookServer {
    pub url: reqwest::Url,
    shared: Arc<Mutex<HookShared>>,
}

impl HookServer {
    pub(crate) async fn start(statuses: &[u16]) -> Self {
        let shared = Arc::new(Mutex::new(HookShared {
            statuses: statuses.iter().copied().collect(),
            ..HookShared::default()
        }));
        let app = axum::Router::new()
            .route("/hooks/essbot", axum::routing::post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}/hooks/essbot").parse().unwrap(),
            shared,
        }
    }

    pub(crate) fn channel(&self) -> Channel {
        Channel::Webhook(
            WebhookChannel::new(&WebhookSettings {
                url: self.url.clone(),
            })
            .unwrap(),
        )
    }

    pub(crate) fn calls(&self) -> Vec<(HeaderMap, Value, u16)> {
        self.shared.lock().unwrap().calls.clone()
    }

    /// Bodies of the calls answered 2xx.
    pub(crate) fn delivered(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|(_, _, status)| (200..300).contains(status))
            .map(|(_, body, _)| body)
            .collect()
    }
}

async fn receive(
    State(shared): State<Arc<Mutex<HookShared>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let mut shared = shared.lock().unwrap();
    let status = shared.statuses.pop_front().unwrap_or(200);
    shared.calls.push((headers, body, status));
    StatusCode::from_u16(status).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The database and the alerts.

async fn open_pool(url: &str) -> Store {
    Store::open(url).await.unwrap()
}

/// A ledger on a fresh store of `db`; keep the [`TempStore`] alive as long as the ledger.
async fn temp_ledger(db: TestDb) -> (TempStore, AlertLedger) {
    let t = temp_store_on(db).await;
    let ledger = AlertLedger::new(t.store.clone());
    (t, ledger)
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

const T0: &str = "2026-11-05T07:00:00Z";

fn versement() -> Alert {
    Alert {
        key: "ess-69-cardio/dotation-annee-1/upcoming-30".into(),
        recipient: Recipient::Staff(Role::Cpam),
        subject: "Versement de la dotation dans 30 jours — ESS Cardiologie Rhône".into(),
        body: "Le versement de la première année de dotation (75 000 €) à l'ESS Cardiologie \
               Rhône est dû le 5 décembre 2026, soit 12 mois après la validation du projet \
               de santé.\nPièces attendues : RIB de l'association, attestation de déploiement."
            .into(),
        dossier_url: Some("https://demarche.numerique.gouv.fr/procedures/101/dossiers/4242".into()),
        payload: json!({ "dossier": 4242, "due": "2026-12-05", "amount_eur": 75000 }),
    }
}

fn echeance_ars() -> Alert {
    Alert {
        key: "ess-13-pedia/validation-tacite/due".into(),
        recipient: Recipient::Staff(Role::Ars),
        subject: "Validation tacite du projet de santé aujourd'hui — ESS Pédiatrie Provence".into(),
        body: "Sans décision de l'ARS, le projet de santé de l'ESS Pédiatrie Provence est \
               réputé validé ce jour."
            .into(),
        dossier_url: Some("https://demarche.numerique.gouv.fr/procedures/102/dossiers/77".into()),
        payload: json!({ "dossier": 77, "due": "2026-11-05" }),
    }
}

pub(crate) fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(raw)
        .expect("a parsable e-mail")
}

// ---------------------------------------------------------------------------------------------
// Tests.

both_backends! {
    #[tokio::test]
    async fn an_alert_is_emailed_once_in_french_to_every_address(db) {
        let smtp = SmtpServer::start(&[]);
        let (_t, ledger) = temp_ledger(db).await;
        let channels = [email(&smtp)];
        let t0 = at(T0);

        assert_eq!(ledger.enqueue(&[versement()], t0).await.unwrap(), 1);
        assert_eq!(ledger.pending_count().await.unwrap(), 1);
        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));

        let accepted = smtp.accepted();
        assert_eq!(accepted.len(), 1);
        let received = &accepted[0];
        assert_eq!(received.envelope_from, "essbot@ars.example");
        assert_eq!(
            received.envelope_to,
            ["cpam-ess@cpam.example", "ess@ars.example"]
        );
        let message = parse(&received.raw);
        assert_eq!(
            message.from().unwrap().first().unwrap().address(),
            Some("essbot@ars.example")
        );
        let to: Vec<_> = message
            .to()
            .unwrap()
            .iter()
            .map(|a| (a.name().map(str::to_owned), a.address().unwrap().to_owned()))
            .collect();
        assert_eq!(
            to,
            [
                (None, "cpam-ess@cpam.example".to_owned()),
                (Some("Équipe ESS".to_owned()), "ess@ars.example".to_owned()),
            ]
        );
        assert_eq!(
            message.subject(),
            Some("Versement de la dotation dans 30 jours — ESS Cardiologie Rhône")
        );
        assert!(
            message.content_type().is_some_and(|ct| ct.ctype() == "text"
                && ct.subtype() == Some("plain")
                && ct
                    .attribute("charset")
                    .is_some_and(|c| c.eq_ignore_ascii_case("utf-8"))),
            "{:?}",
            message.content_type()
        );
        let text = message.body_text(0).unwrap();
        assert!(
            text.starts_with(
                "Le versement de la première année de dotation (75 000 €) à l'ESS Cardiologie Rhône \
                 est dû le 5 décembre 2026"
            ),
            "{text}"
        );
        assert!(
            text.contains("Pièces attendues : RIB de l'association"),
            "{text}"
        );
        assert!(
            text.contains("Dossier : https://demarche.numerique.gouv.fr/procedures/101/dossiers/4242"),
            "{text}"
        );
        let message_id = message.message_id().unwrap().to_owned();
        assert!(message_id.ends_with(".essbot@ars.example"), "{message_id}");

        let status = ledger.status(&versement().key).await.unwrap().unwrap();
        assert_eq!(status.completed_at, Some(t0));
        assert_eq!(status.deliveries.len(), 1);
        assert!(status.deliveries[0].sent);
        assert_eq!(status.deliveries[0].attempts, 1);
        assert_eq!(status.deliveries[0].sent_at, Some(t0));

        // Later cycles find the same milestone due again: nothing more is sent.
        for hours in [1, 24, 24 * 30] {
            let later = t0 + Duration::hours(hours);
            assert_eq!(ledger.enqueue(&[versement()], later).await.unwrap(), 0);
            let report = ledger.deliver_due(&channels, later).await.unwrap();
            assert_eq!((report.sent, report.failed, report.pending), (0, 0, 0));
        }
        assert_eq!(smtp.accepted().len(), 1);
        assert_eq!(smtp.transactions(), 1);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_refusing_smtp_server_is_retried_and_the_alert_is_sent_exactly_once(db) {
        let smtp = SmtpServer::start(&[SmtpFault::Rcpt(450), SmtpFault::Data(554)]);
        let (_t, ledger) = temp_ledger(db).await;
        let channels = [email(&smtp)];
        let key = versement().key;
        let t0 = at(T0);
        ledger.enqueue(&[versement()], t0).await.unwrap();

        // 1st attempt: RCPT TO refused with 450.
        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
        let status = ledger.status(&key).await.unwrap().unwrap();
        let delivery = &status.deliveries[0];
        assert!(!delivery.sent);
        assert_eq!(status.completed_at, None);
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.sent_at, None);
        assert!(
            delivery.last_error.as_deref().unwrap().contains("450"),
            "{:?}",
            delivery.last_error
        );
        assert_eq!(delivery.next_attempt_at, t0 + Duration::minutes(5));

        // Before the backoff has passed, nothing is attempted.
        let report = ledger
            .deliver_due(&channels, t0 + Duration::minutes(4))
            .await
            .unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 0, 1));
        assert_eq!(smtp.transactions(), 1);

        // 2nd attempt: DATA is refused with 554; still not sent, backoff doubled.
        let t1 = t0 + Duration::minutes(5);
        let report = ledger.deliver_due(&channels, t1).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
        let status = ledger.status(&key).await.unwrap().unwrap();
        let delivery = &status.deliveries[0];
        assert!(!delivery.sent);
        assert_eq!(delivery.attempts, 2);
        assert!(
            delivery.last_error.as_deref().unwrap().contains("554"),
            "{:?}",
            delivery.last_error
        );
        assert_eq!(delivery.next_attempt_at, t1 + Duration::minutes(10));
        assert!(smtp.accepted().is_empty());

        // 3rd attempt: accepted.
        let t2 = t1 + Duration::minutes(10);
        let report = ledger.deliver_due(&channels, t2).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));
        let status = ledger.status(&key).await.unwrap().unwrap();
        assert!(status.deliveries[0].sent);
        assert_eq!(status.deliveries[0].attempts, 3);
        assert_eq!(status.deliveries[0].sent_at, Some(t2));
        assert_eq!(status.completed_at, Some(t2));

        for later in [t2, t2 + Duration::hours(1), t2 + Duration::days(2)] {
            let report = ledger.deliver_due(&channels, later).await.unwrap();
            assert_eq!((report.sent, report.failed), (0, 0));
        }
        assert_eq!(smtp.accepted().len(), 1);
        assert_eq!(smtp.transactions(), 3);
    }
}

both_backends! {
    #[tokio::test]
    async fn an_smtp_server_not_listening_is_retried_once_it_is_up(db) {
        // A port nobody listens on: bound, then released.
        let closed_port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let down = [Channel::Email(
            EmailChannel::new(&email_settings(closed_port)).unwrap(),
        )];
        let (_t, ledger) = temp_ledger(db).await;
        let t0 = at(T0);
        ledger.enqueue(&[versement()], t0).await.unwrap();

        let report = ledger.deliver_due(&down, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
        let status = ledger.status(&versement().key).await.unwrap().unwrap();
        assert!(!status.deliveries[0].sent);
        assert!(status.deliveries[0].last_error.is_some());

        // The relay is back (same configuration key, new address).
        let smtp = SmtpServer::start(&[]);
        let up = [email(&smtp)];
        let t1 = t0 + Duration::minutes(5);
        let report = ledger.deliver_due(&up, t1).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));
        let report = ledger
            .deliver_due(&up, t1 + Duration::hours(6))
            .await
            .unwrap();
        assert_eq!(report.sent, 0);
        assert_eq!(smtp.accepted().len(), 1);
    }
}

both_backends! {
    #[tokio::test]
    async fn an_smtp_server_that_stops_answering_after_the_message_is_retried(db) {
        let smtp = SmtpServer::start(&[SmtpFault::DataEnd(554)]);
        let channels = [Channel::Email(
            EmailChannel::with_timeout(&smtp.settings(), std::time::Duration::from_secs(2)).unwrap(),
        )];
        let (_t, ledger) = temp_ledger(db).await;
        let key = versement().key;
        let t0 = at(T0);
        ledger.enqueue(&[versement()], t0).await.unwrap();

        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
        let status = ledger.status(&key).await.unwrap().unwrap();
        assert!(!status.deliveries[0].sent);
        assert!(
            status.deliveries[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("no answer within"),
            "{:?}",
            status.deliveries[0].last_error
        );
        assert!(smtp.accepted().is_empty());

        let t1 = t0 + Duration::minutes(5);
        let report = ledger.deliver_due(&channels, t1).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));
        assert_eq!(smtp.accepted().len(), 1);
        assert_eq!(smtp.transactions(), 2);
    }
}

both_backends! {
    #[tokio::test]
    async fn the_webhook_receives_the_json_once(db) {
        let hook = HookServer::start(&[]).await;
        let (_t, ledger) = temp_ledger(db).await;
        let channels = [hook.channel()];
        let t0 = at(T0);
        ledger.enqueue(&[echeance_ars()], t0).await.unwrap();

        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));
        let calls = hook.calls();
        assert_eq!(calls.len(), 1);
        let (headers, body, _) = &calls[0];
        assert_eq!(
            body,
            &json!({
                "key": "ess-13-pedia/validation-tacite/due",
                "recipient": "ars",
                "subject": "Validation tacite du projet de santé aujourd'hui — ESS Pédiatrie Provence",
                "body": "Sans décision de l'ARS, le projet de santé de l'ESS Pédiatrie Provence est \
                         réputé validé ce jour.",
                "dossier_url": "https://demarche.numerique.gouv.fr/procedures/102/dossiers/77",
                "payload": { "dossier": 77, "due": "2026-11-05" },
            })
        );
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        assert!(!headers["idempotency-key"].is_empty());

        ledger.enqueue(&[echeance_ars()], t0).await.unwrap();
        let report = ledger
            .deliver_due(&channels, t0 + Duration::days(1))
            .await
            .unwrap();
        assert_eq!((report.sent, report.failed), (0, 0));
        assert_eq!(hook.calls().len(), 1);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_webhook_answering_500_then_200_gets_the_alert_once(db) {
        let hook = HookServer::start(&[500]).await;
        let (_t, ledger) = temp_ledger(db).await;
        let channels = [hook.channel()];
        let key = echeance_ars().key;
        let t0 = at(T0);
        ledger.enqueue(&[echeance_ars()], t0).await.unwrap();

        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
        let status = ledger.status(&key).await.unwrap().unwrap();
        assert!(!status.deliveries[0].sent);
        assert!(
            status.deliveries[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("500"),
            "{:?}",
            status.deliveries[0].last_error
        );

        let t1 = t0 + Duration::minutes(5);
        let report = ledger.deliver_due(&channels, t1).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));
        let report = ledger
            .deliver_due(&channels, t1 + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(report.sent, 0);

        let calls = hook.calls();
        assert_eq!(
            calls.iter().map(|(_, _, s)| *s).collect::<Vec<_>>(),
            [500, 200]
        );
        // Both calls carry the same idempotency key, so a receiver could tell them apart.
        assert_eq!(calls[0].0["idempotency-key"], calls[1].0["idempotency-key"]);
        assert_eq!(hook.delivered().len(), 1);
        assert_eq!(hook.delivered()[0]["key"], key.as_str());
    }
}

both_backends! {
    #[tokio::test]
    async fn a_failing_channel_does_not_hold_back_the_other_nor_resend_it(db) {
        let smtp = SmtpServer::start(&[]);
        let hook = HookServer::start(&[503]).await;
        let (_t, ledger) = temp_ledger(db).await;
        let channels = [email(&smtp), hook.channel()];
        let t0 = at(T0);
        ledger.enqueue(&[versement()], t0).await.unwrap();

        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 1, 1));
        let status = ledger.status(&versement().key).await.unwrap().unwrap();
        let by_channel: Vec<_> = status
            .deliveries
            .iter()
            .map(|d| (d.channel.as_str(), d.sent))
            .collect();
        assert_eq!(by_channel, [("email", true), ("webhook", false)]);
        assert_eq!(status.completed_at, None);

        let t1 = t0 + Duration::minutes(5);
        let report = ledger.deliver_due(&channels, t1).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));
        assert_eq!(smtp.accepted().len(), 1);
        assert_eq!(hook.delivered().len(), 1);
        assert_eq!(hook.calls().len(), 2);
    }
}

both_backends! {
    #[tokio::test]
    async fn pending_alerts_survive_a_restart_and_sent_ones_are_not_resent(db) {
        let smtp = SmtpServer::start(&[]);
        let t = temp_store_on(db).await;
        t.store.close().await;
        let t0 = at(T0);

        // First process: the CPAM alert goes out, the ARS one is refused by the relay.
        {
            let pool = open_pool(&t.url).await;
            let ledger = AlertLedger::new(pool.clone());
            let channels = [email(&smtp)];
            ledger.enqueue(&[versement()], t0).await.unwrap();
            let report = ledger.deliver_due(&channels, t0).await.unwrap();
            assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));

            smtp.push_fault(SmtpFault::Data(451));
            ledger.enqueue(&[echeance_ars()], t0).await.unwrap();
            let report = ledger.deliver_due(&channels, t0).await.unwrap();
            assert_eq!((report.sent, report.failed, report.pending), (0, 1, 1));
            pool.close().await;
        }
        assert_eq!(smtp.accepted().len(), 1);

        // Second process: same file, new pool, new ledger, new channel.
        let pool = open_pool(&t.url).await;
        let ledger = AlertLedger::new(pool);
        let channels = [email(&smtp)];
        assert_eq!(ledger.pending_count().await.unwrap(), 1);
        let status = ledger.status(&echeance_ars().key).await.unwrap().unwrap();
        assert_eq!(status.deliveries[0].attempts, 1);
        assert!(!status.deliveries[0].sent);

        // The milestones module finds both alerts due again: neither is enqueued twice.
        let t1 = t0 + Duration::minutes(15);
        assert_eq!(
            ledger
                .enqueue(&[versement(), echeance_ars()], t1)
                .await
                .unwrap(),
            0
        );
        let report = ledger.deliver_due(&channels, t1).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 0, 0));

        let subjects: Vec<String> = smtp
            .accepted()
            .iter()
            .map(|r| parse(&r.raw).subject().unwrap().to_owned())
            .collect();
        assert_eq!(subjects, [versement().subject, echeance_ars().subject]);
    }
}

both_backends! {
    #[tokio::test]
    async fn the_daily_digest_goes_out_once_per_role_and_day(db) {
        let smtp = SmtpServer::start(&[]);
        let (_t, ledger) = temp_ledger(db).await;
        let channels = [email(&smtp)];
        let t0 = at(T0);
        let today = NaiveDate::from_ymd_opt(2026, 11, 5).unwrap();

        let mut second_cpam = versement();
        second_cpam.key = "ess-42-psy/justificatifs/due".into();
        second_cpam.subject = "Justificatifs attendus aujourd'hui — ESS Psychiatrie Loire".into();
        let due = [versement(), echeance_ars(), second_cpam.clone()];

        let digests = daily_digests(&due, today);
        assert_eq!(ledger.enqueue(&digests, t0).await.unwrap(), 2);
        let report = ledger.deliver_due(&channels, t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (2, 0, 0));

        let accepted = smtp.accepted();
        let mut subjects: Vec<String> = accepted
            .iter()
            .map(|r| parse(&r.raw).subject().unwrap().to_owned())
            .collect();
        subjects.sort();
        assert_eq!(
            subjects,
            [
                "Récapitulatif du 5 novembre 2026 pour l'ARS : 1 alerte",
                "Récapitulatif du 5 novembre 2026 pour la CPAM : 2 alertes",
            ]
        );
        let cpam = accepted
            .iter()
            .map(|r| parse(&r.raw).body_text(0).unwrap().into_owned())
            .find(|text| text.contains("pour la CPAM"))
            .unwrap();
        assert!(
            cpam.contains("2. Versement de la dotation dans 30 jours — ESS Cardiologie Rhône"),
            "{cpam}"
        );
        assert!(
            cpam.contains("1. Justificatifs attendus aujourd'hui — ESS Psychiatrie Loire"),
            "{cpam}"
        );

        // A later cycle the same day rebuilds the digests: nothing new goes out.
        let t1 = t0 + Duration::hours(2);
        let again = daily_digests(&due[..1], today);
        assert_eq!(ledger.enqueue(&again, t1).await.unwrap(), 0);
        let report = ledger.deliver_due(&channels, t1).await.unwrap();
        assert_eq!(report.sent, 0);
        assert_eq!(smtp.accepted().len(), 2);

        // The next day has its own digest.
        let tomorrow = today.succ_opt().unwrap();
        let next = daily_digests(&due[1..2], tomorrow);
        assert_eq!(next[0].key, "digest/ars/2026-11-06");
        assert_eq!(
            ledger.enqueue(&next, t0 + Duration::days(1)).await.unwrap(),
            1
        );
        let report = ledger
            .deliver_due(&channels, t0 + Duration::days(1))
            .await
            .unwrap();
        assert_eq!(report.sent, 1);
    }
}

both_backends! {
    #[tokio::test]
    async fn a_channel_added_later_gets_only_alerts_not_yet_delivered(db) {
        let smtp = SmtpServer::start(&[]);
        let hook = HookServer::start(&[]).await;
        let (_t, ledger) = temp_ledger(db).await;
        let t0 = at(T0);

        ledger.enqueue(&[versement()], t0).await.unwrap();
        ledger.deliver_due(&[email(&smtp)], t0).await.unwrap();

        // The webhook is configured the next day: the old alert is not replayed to it.
        let t1 = t0 + Duration::days(1);
        ledger.enqueue(&[echeance_ars()], t1).await.unwrap();
        let report = ledger
            .deliver_due(&[email(&smtp), hook.channel()], t1)
            .await
            .unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (2, 0, 0));
        let keys: Vec<_> = hook.delivered().iter().map(|b| b["key"].clone()).collect();
        assert_eq!(keys, [json!(echeance_ars().key)]);
        assert_eq!(smtp.accepted().len(), 2);
    }
}

both_backends! {
    #[tokio::test]
    async fn without_a_channel_alerts_stay_pending(db) {
        let (_t, ledger) = temp_ledger(db).await;
        let t0 = at(T0);
        ledger
            .enqueue(&[versement(), echeance_ars()], t0)
            .await
            .unwrap();
        let report = ledger.deliver_due(&[], t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (0, 0, 2));

        let hook = HookServer::start(&[]).await;
        let report = ledger
            .deliver_due(&[hook.channel()], t0 + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (2, 0, 0));
    }
}

both_backends! {
    #[tokio::test]
    async fn an_unreadable_row_fails_alone_and_is_never_marked_sent(db) {
        let hook = HookServer::start(&[]).await;
        let t = temp_store_on(db).await;
        let pool = t.store.clone();
        let ledger = AlertLedger::new(pool.clone());
        let t0 = at(T0);
        ledger.enqueue(&[versement()], t0).await.unwrap();
        // A row this version cannot read (written by a later version, or edited by hand).
        sqlx::query(
            "INSERT INTO alert_ledger (key, recipient, subject, body, payload, enqueued_at)
             VALUES ('p/m/due', 'mairie', 'Sujet', 'Corps', '{}', '2026-11-05T06:00:00.000000Z')",
        )
        .execute(pool.pool())
        .await
        .unwrap();

        let report = ledger.deliver_due(&[hook.channel()], t0).await.unwrap();
        assert_eq!((report.sent, report.failed, report.pending), (1, 1, 1));
        let (status, last_error): (String, Option<String>) =
            sqlx::query_as("SELECT status, last_error FROM alert_delivery WHERE alert_key = 'p/m/due'")
                .fetch_one(pool.pool())
                .await
                .unwrap();
        assert_eq!(status, "pending");
        assert!(last_error.unwrap().contains("mairie"));
        assert_eq!(hook.calls().len(), 1);
        assert!(
            ledger
                .status(&versement().key)
                .await
                .unwrap()
                .unwrap()
                .completed_at
                .is_some()
        );
    }
}

both_backends! {
    #[tokio::test]
    async fn a_claim_left_by_an_instance_that_is_gone_is_taken_over_and_noted(db) {
        let hook = HookServer::start(&[]).await;
        let backend = db.backend();
        let (t, ledger) = temp_ledger(db).await;
        let t0 = at(T0);
        ledger.enqueue(&[versement()], t0).await.unwrap();
        // Routed, then claimed by another instance that never recorded the outcome.
        t.store.route_alerts(&["webhook"]).await.unwrap();
        let claim = |by: &'static str| {
            let store = t.store.clone();
            async move {
                sqlx::query(
                    "UPDATE alert_delivery SET claimed_by = $1, claimed_at = $2
                     WHERE alert_key = $3",
                )
                .bind(by)
                .bind("2026-11-05T07:00:00.000000Z")
                .bind(versement().key)
                .execute(store.pool())
                .await
                .unwrap();
            }
        };

        if backend == essbot::store::Backend::Postgres {
            // Still connected (a session named after it): left alone while the lease runs...
            let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(&t.url)
                .await
                .unwrap();
            sqlx::query("SET application_name = 'essbot other:2:2'")
                .execute(&mut other)
                .await
                .unwrap();
            claim("other:2:2").await;
            let report = ledger
                .deliver_due(&[hook.channel()], t0 + Duration::seconds(30))
                .await
                .unwrap();
            assert_eq!((report.sent, report.pending), (0, 1));
            assert!(hook.calls().is_empty());
            // ...and taken over once the lease (60 s) is over.
            let report = ledger
                .deliver_due(&[hook.channel()], t0 + Duration::seconds(61))
                .await
                .unwrap();
            assert_eq!((report.sent, report.pending), (1, 0));
            drop(other);
        } else {
            // SQLite: an earlier process (the file lock lets only one run): taken over at once.
            claim("other:2:2").await;
            let report = ledger
                .deliver_due(&[hook.channel()], t0 + Duration::seconds(1))
                .await
                .unwrap();
            assert_eq!((report.sent, report.pending), (1, 0));
        }
        assert_eq!(hook.delivered().len(), 1);
        let status = ledger.status(&versement().key).await.unwrap().unwrap();
        let delivery = &status.deliveries[0];
        assert!(delivery.sent);
        assert_eq!(delivery.attempts, 2, "the interrupted attempt counts");
        assert!(
            delivery.last_error.as_deref().unwrap_or_default().contains("interrompu"),
            "{delivery:?}"
        );

        // A claim by an instance with no session left is taken over at once on PostgreSQL too.
        ledger.enqueue(&[echeance_ars()], t0).await.unwrap();
        t.store.route_alerts(&["webhook"]).await.unwrap();
        sqlx::query(
            "UPDATE alert_delivery SET claimed_by = 'gone:3:3', claimed_at = $1
             WHERE alert_key = $2",
        )
        .bind("2026-11-05T07:00:00.000000Z")
        .bind(echeance_ars().key)
        .execute(t.store.pool())
        .await
        .unwrap();
        let report = ledger
            .deliver_due(&[hook.channel()], t0 + Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!((report.sent, report.pending), (1, 0));
        assert_eq!(hook.delivered().len(), 2);
    }
}
