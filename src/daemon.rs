//! The service machinery behind `essbot run`: the schedule loop, signals, the shutdown
//! deadline and the systemd notification protocol.
//!
//! The loop is generic over the work: [`run_loop`] calls a closure once per fire and never runs
//! two cycles at once. Wiring `essbot run` looks like:
//!
//! ```text
//! let cancel = CancellationToken::new();
//! daemon::cancel_on_signals(cancel.clone())?;          // SIGTERM, SIGINT
//! let _lock = lock::InstanceLock::for_database(&settings.database.url)?;
//! /* migrations, configuration checks against DS */
//! let notifier = Notifier::from_env();
//! notifier.ready();                                    // READY=1: start-up succeeded
//! let exit = daemon::run_loop(&LoopSettings::from_settings(&settings), &clock, &notifier,
//!     &metrics, last_cycle_from_store, cancel, |ctx| cycle::run(&app, ctx)).await;
//! ```
//!
//! # The cancellation contract
//!
//! On SIGTERM or SIGINT the token given to [`run_loop`] is cancelled. Between cycles, the loop
//! stops at once. During a cycle, the loop waits for it up to
//! [`LoopSettings::shutdown_deadline`] (`[daemon] shutdown_deadline_secs`, 10 s by default, well
//! under the unit's `TimeoutStopSec=30`). The cycle receives the same token in its
//! [`CycleContext`] and must check it *only between dossiers* (a safe point: no mutation sent
//! and unrecorded, no open transaction) and then return [`CycleOutcome::Interrupted`]. If it
//! overruns the deadline its future is dropped, wherever it is waiting; open transactions roll
//! back, and the write-back's idempotency keys make the next cycle redo what was cut.
//!
//! # systemd
//!
//! [`Notifier`] speaks the `sd_notify` protocol (messages formatted by the `sd-notify` crate)
//! to the socket systemd names in `NOTIFY_SOCKET`; without it (a terminal, a test, a
//! `Type=simple` unit) every call is a no-op. The socket path is a constructor argument and the
//! environment is read only in [`Notifier::from_env`], so tests talk to their own socket
//! without touching the process environment.

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::pin::pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::schedule;

/// Errors of the service machinery.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A signal handler could not be installed (outside a Tokio runtime, or the OS refused).
    #[error("cannot watch {signal}: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: io::Error,
    },
}

/// How a cycle ended, as the loop, the metrics and the health check see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CycleOutcome {
    /// Everything the cycle set out to do was done.
    Succeeded,
    /// The cycle failed (it logs why); the loop carries on with the next fire.
    Failed,
    /// The cycle stopped early at a safe point because the token was cancelled.
    Interrupted,
}

impl CycleOutcome {
    /// The label used in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What a cycle is told when it starts.
#[derive(Debug, Clone)]
pub struct CycleContext {
    /// 1 for the first cycle since the daemon started.
    pub number: u64,
    /// The fire this cycle runs for; `None` for the catch-up cycle at start.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// Cancelled on SIGTERM/SIGINT: check it between dossiers, never mid-mutation.
    pub cancel: CancellationToken,
}

/// What the loop needs from the configuration.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub schedule: cron::Schedule,
    pub timezone: Tz,
    /// How long a stop waits for the cycle in flight.
    pub shutdown_deadline: Duration,
}

impl LoopSettings {
    /// Takes `[schedule]` and `[daemon]` from validated settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            schedule: settings.schedule.cron.clone(),
            timezone: settings.schedule.timezone,
            shutdown_deadline: settings.daemon.shutdown_deadline,
        }
    }
}

/// How [`run_loop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum LoopExit {
    /// Cancelled between cycles, or the cycle in flight finished within the deadline.
    Stopped { cycles: u64 },
    /// The cycle in flight did not finish within the deadline and was dropped.
    DeadlineExceeded { cycles: u64 },
}

/// The longest single sleep: the loop re-reads the clock at least this often, so a wall-clock
/// change (NTP step, suspend) delays a fire by at most this much.
const MAX_NAP: Duration = Duration::from_secs(60);

/// Runs `cycle` on the schedule until `cancel` is cancelled.
///
/// At start, a cycle runs at once if the schedule fired since `last_cycle` (or there was none:
/// [`schedule::should_run_at_start`]); otherwise the loop waits for the next fire. After each
/// cycle the next fire is computed from the time it ended, so fires a slow cycle overran are
/// skipped, not queued. Cycles never overlap. Each finished cycle is recorded in `metrics`, and
/// systemd is kept informed through `notifier` (`STATUS=` lines, the watchdog while the loop
/// runs, `STOPPING=1` on cancel). `READY=1` is the caller's, once start-up checks pass.
///
/// On cancel: see the module docs for the contract with the cycle and the deadline.
pub async fn run_loop<F, Fut>(
    settings: &LoopSettings,
    clock: &dyn Clock,
    notifier: &Notifier,
    metrics: &Metrics,
    last_cycle: Option<DateTime<Utc>>,
    cancel: CancellationToken,
    mut cycle: F,
) -> LoopExit
where
    F: FnMut(CycleContext) -> Fut,
    Fut: Future<Output = CycleOutcome>,
{
    let watchdog_stop = CancellationToken::new();
    let _watchdog_guard = watchdog_stop.clone().drop_guard();
    let _watchdog = notifier.spawn_watchdog(watchdog_stop);

    let (sched, tz) = (&settings.schedule, settings.timezone);
    let mut cycles = 0u64;
    let mut last_line = String::new();
    let mut scheduled_for = None;
    let mut run_now = schedule::should_run_at_start(last_cycle, clock.now(), sched, tz);
    if run_now {
        tracing::info!("the schedule fired since the last cycle: running one now");
    }
    loop {
        if !run_now {
            let now = clock.now();
            let Some(next) = schedule::next_fire(sched, tz, now) else {
                tracing::error!("the schedule never fires again: waiting for a stop request");
                notifier.status(&format!("{last_line}aucun cycle prévu par le calendrier"));
                cancel.cancelled().await;
                break;
            };
            notifier.status(&format!(
                "{last_line}prochain cycle {}",
                when(next, now, tz)
            ));
            tracing::debug!(next = %next, "waiting for the next fire");
            if !sleep_until(clock, next, &cancel).await {
                break;
            }
            scheduled_for = Some(next);
        }
        run_now = false;

        cycles += 1;
        notifier.status(&format!("cycle {cycles} en cours"));
        tracing::info!(cycle = cycles, "cycle started");
        let started = tokio::time::Instant::now();
        let mut running = pin!(cycle(CycleContext {
            number: cycles,
            scheduled_for: scheduled_for.take(),
            cancel: cancel.clone(),
        }));
        let outcome = tokio::select! {
            biased;
            outcome = &mut running => outcome,
            () = cancel.cancelled() => {
                notifier.stopping();
                notifier.status(&format!("arrêt : attente de la fin du cycle {cycles}"));
                tracing::info!(
                    cycle = cycles,
                    deadline_secs = settings.shutdown_deadline.as_secs_f64(),
                    "stop requested: waiting for the cycle in flight"
                );
                match tokio::time::timeout(settings.shutdown_deadline, running).await {
                    Ok(outcome) => {
                        metrics.cycle_finished(outcome, clock.now(), started.elapsed());
                        tracing::info!(cycle = cycles, outcome = outcome.as_str(), "cycle ended; stopping");
                        return LoopExit::Stopped { cycles };
                    }
                    Err(_) => {
                        metrics.cycle_finished(
                            CycleOutcome::Interrupted,
                            clock.now(),
                            started.elapsed(),
                        );
                        tracing::warn!(
                            cycle = cycles,
                            "the cycle did not stop within the shutdown deadline: abandoning it"
                        );
                        return LoopExit::DeadlineExceeded { cycles };
                    }
                }
            }
        };
        metrics.cycle_finished(outcome, clock.now(), started.elapsed());
        tracing::info!(cycle = cycles, outcome = outcome.as_str(), "cycle ended");
        if cancel.is_cancelled() {
            break;
        }
        last_line = match outcome {
            CycleOutcome::Succeeded => format!("cycle {cycles} réussi ; "),
            CycleOutcome::Failed => format!("cycle {cycles} en échec ; "),
            CycleOutcome::Interrupted => format!("cycle {cycles} interrompu ; "),
        };
    }
    notifier.stopping();
    tracing::info!(cycles, "stopped");
    LoopExit::Stopped { cycles }
}

/// Sleeps until the wall clock reaches `target`; false if cancelled first.
///
/// # Cancel safety
/// Cancel safe: it holds nothing but a timer.
async fn sleep_until(clock: &dyn Clock, target: DateTime<Utc>, cancel: &CancellationToken) -> bool {
    loop {
        let now = clock.now();
        if now >= target {
            return true;
        }
        let wait = (target - now).to_std().unwrap_or_default().min(MAX_NAP);
        tokio::select! {
            biased;
            () = cancel.cancelled() => return false,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// "à 14:15" today, "le 15/06/2026 à 07:00" another day, in the schedule's time zone.
fn when(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let (at, now) = (at.with_timezone(&tz), now.with_timezone(&tz));
    if at.date_naive() == now.date_naive() {
        at.format("à %H:%M").to_string()
    } else {
        at.format("le %d/%m/%Y à %H:%M").to_string()
    }
}

/// Cancels `cancel` on the first SIGTERM (systemd's stop) or SIGINT (Ctrl-C).
///
/// The handlers are installed before this returns, so a signal that arrives afterwards is never
/// lost; the returned task ends after the first one. Later signals are ignored: the shutdown
/// deadline bounds the stop, and systemd's `TimeoutStopSec=` backs it up with SIGKILL.
///
/// # Errors
/// [`DaemonError::Signal`] outside a Tokio runtime or when the OS refuses the handler.
pub fn cancel_on_signals(cancel: CancellationToken) -> Result<JoinHandle<()>, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|source| DaemonError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| DaemonError::Signal {
        signal: "SIGINT",
        source,
    })?;
    Ok(tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            () = cancel.cancelled() => return,
        };
        tracing::info!(signal = name, "stop requested");
        cancel.cancel();
    }))
}

/// Sends state changes to systemd; every method is a no-op without a notification socket.
///
/// Failures to notify are logged, never returned: a daemon does not stop working because its
/// supervisor stopped listening.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asked for: `NOTIFY_SOCKET`, and the watchdog interval from
    /// `WATCHDOG_USEC` when `WATCHDOG_PID` is unset or ours (`sd_notify::watchdog_enabled`).
    pub fn from_env() -> Self {
        Self::new(
            std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()),
            sd_notify::watchdog_enabled(),
        )
    }

    /// A notifier for an explicit socket (a path, or `@name` for the abstract namespace) and
    /// watchdog interval.
    pub fn new(socket: Option<impl Into<OsString>>, watchdog: Option<Duration>) -> Self {
        Self {
            socket: socket.map(Into::into),
            watchdog: watchdog.filter(|d| !d.is_zero()),
        }
    }

    /// A notifier that sends nothing (`essbot run` outside systemd, `--once`).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// The watchdog interval systemd expects pings within, if any.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref().and(self.watchdog)
    }

    /// `READY=1`: start-up is over (migrations applied, configuration checked). With
    /// `Type=notify`, `systemctl start` returns only now, and fails if essbot exits before.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready]);
    }

    /// `STATUS=...`: the one line `systemctl status` shows.
    pub fn status(&self, line: &str) {
        // A newline would end the field and start a new, bogus, one.
        let line = line.replace(['\n', '\r'], " ");
        self.send(&[NotifyState::Status(&line)]);
    }

    /// `STOPPING=1`: the stop has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    /// `WATCHDOG=1`: still alive.
    pub fn watchdog_ping(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// Pings the watchdog at half its interval until `stop` is cancelled; `None` when systemd
    /// set no watchdog. The pings come from a task on the runtime, so a wedged runtime misses
    /// them and systemd restarts essbot (`Restart=on-failure`).
    pub fn spawn_watchdog(&self, stop: CancellationToken) -> Option<JoinHandle<()>> {
        let every = self.watchdog_interval()? / 2;
        let notifier = self.clone();
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => notifier.watchdog_ping(),
                }
            }
        }))
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        let Some(socket) = &self.socket else {
            return;
        };
        let mut message = String::new();
        for state in states {
            message.push_str(&state.to_string());
            message.push('\n');
        }
        if let Err(error) = send_datagram(socket, message.as_bytes()) {
            tracing::warn!(%error, "cannot notify systemd");
        }
    }
}

fn send_datagram(socket: &OsStr, message: &[u8]) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let sent = match socket.as_bytes().strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(message, &addr)?
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract sockets exist only on Linux",
            ));
        }
        None => sock.send_to(message, Path::new(socket))?,
    };
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification cut short",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;
    use std::str::FromStr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    /// Wall time that moves with Tokio's (paused) clock, so sleeps and "now" agree.
    #[derive(Debug)]
    struct TokioClock {
        start: DateTime<Utc>,
        origin: tokio::time::Instant,
    }

    impl TokioClock {
        fn at(start: &str) -> Self {
            Self {
                start: utc(start),
                origin: tokio::time::Instant::now(),
            }
        }
    }

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            self.start + chrono::Duration::from_std(self.origin.elapsed()).unwrap()
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn settings(expr: &str) -> LoopSettings {
        LoopSettings {
            schedule: cron::Schedule::from_str(expr).unwrap(),
            timezone: Paris,
            shutdown_deadline: Duration::from_secs(10),
        }
    }

    /// A bound notification socket and the notifier talking to it.
    fn socket() -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_nonblocking(true).unwrap();
        let notifier = Notifier::new(Some(path), None);
        (dir, sock, notifier)
    }

    fn received(sock: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            out.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn notifications_follow_the_sd_notify_protocol() {
        let (_dir, sock, notifier) = socket();
        assert!(notifier.is_enabled());
        notifier.ready();
        notifier.status("cycle 12 en cours\nmultiligne");
        notifier.watchdog_ping();
        notifier.stopping();
        assert_eq!(
            received(&sock),
            [
                "READY=1\n",
                "STATUS=cycle 12 en cours multiligne\n",
                "WATCHDOG=1\n",
                "STOPPING=1\n"
            ]
        );
    }

    #[test]
    fn abstract_sockets_are_reached_too() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("essbot-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_nonblocking(true).unwrap();
        Notifier::new(Some(format!("@{name}")), None).ready();
        assert_eq!(received(&sock), ["READY=1\n"]);
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::new(None::<OsString>, Some(Duration::from_secs(120)));
        assert!(!n.is_enabled());
        assert_eq!(n.watchdog_interval(), None);
        n.ready();
        n.status("x");
        n.stopping();
        // A socket nobody listens on is logged, not fatal.
        let gone = Notifier::new(Some("/nonexistent/essbot/notify.sock"), None);
        gone.ready();
    }

    #[tokio::test]
    async fn the_watchdog_pings_at_half_its_interval_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = tokio::net::UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier::new(Some(&path), Some(Duration::from_millis(100)));
        let stop = CancellationToken::new();
        let task = notifier.spawn_watchdog(stop.clone()).expect("watchdog on");
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
                .await
                .expect("a ping within 10 s")
                .unwrap();
            assert_eq!(&buf[..n], b"WATCHDOG=1\n");
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the watchdog task ends when stopped")
            .unwrap();
        assert!(
            Notifier::new(Some(&path), None)
                .spawn_watchdog(stop)
                .is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_cycle_runs_at_once_when_none_ran_then_on_the_schedule() {
        let clock = TokioClock::at("2026-06-10T14:07:00+02:00");
        let (_dir, sock, notifier) = socket();
        let metrics = Metrics::new();
        let cancel = CancellationToken::new();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let exit = run_loop(
            &settings("0 */15 7-20 * * Mon-Fri"),
            &clock,
            &notifier,
            &metrics,
            None,
            cancel.clone(),
            |ctx| {
                let (starts, clock_now, cancel) = (starts.clone(), clock.now(), cancel.clone());
                async move {
                    starts
                        .lock()
                        .unwrap()
                        .push((ctx.number, ctx.scheduled_for, clock_now));
                    if ctx.number == 3 {
                        cancel.cancel();
                    }
                    CycleOutcome::Succeeded
                }
            },
        )
        .await;
        assert_eq!(exit, LoopExit::Stopped { cycles: 3 });
        assert_eq!(
            *starts.lock().unwrap(),
            [
                (1, None, utc("2026-06-10T14:07:00+02:00")),
                (
                    2,
                    Some(utc("2026-06-10T14:15:00+02:00")),
                    utc("2026-06-10T14:15:00+02:00")
                ),
                (
                    3,
                    Some(utc("2026-06-10T14:30:00+02:00")),
                    utc("2026-06-10T14:30:00+02:00")
                ),
            ]
        );
        let messages = received(&sock);
        assert_eq!(
            messages,
            [
                "STATUS=cycle 1 en cours\n",
                "STATUS=cycle 1 réussi ; prochain cycle à 14:15\n",
                "STATUS=cycle 2 en cours\n",
                "STATUS=cycle 2 réussi ; prochain cycle à 14:30\n",
                "STATUS=cycle 3 en cours\n",
                "STOPPING=1\n",
            ]
        );
        let text = metrics.render();
        assert!(
            text.contains("essbot_cycles_total{outcome=\"succeeded\"} 3"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_cycle_at_start_when_the_last_one_is_recent() {
        let clock = TokioClock::at("2026-06-10T14:20:00+02:00");
        let cancel = CancellationToken::new();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let exit = run_loop(
            &settings("0 */15 7-20 * * Mon-Fri"),
            &clock,
            &Notifier::disabled(),
            &Metrics::new(),
            Some(utc("2026-06-10T14:15:04+02:00")),
            cancel.clone(),
            |_ctx| {
                starts.lock().unwrap().push(clock.now());
                cancel.cancel();
                async { CycleOutcome::Succeeded }
            },
        )
        .await;
        assert_eq!(exit, LoopExit::Stopped { cycles: 1 });
        assert_eq!(*starts.lock().unwrap(), [utc("2026-06-10T14:30:00+02:00")]);
    }

    #[tokio::test(start_paused = true)]
    async fn cycles_never_overlap_and_a_slow_cycle_skips_the_fires_it_overran() {
        let clock = TokioClock::at("2026-06-10T14:15:00+02:00");
        let cancel = CancellationToken::new();
        let busy = AtomicBool::new(false);
        let starts = Mutex::new(Vec::new());
        let metrics = Metrics::new();
        let exit = run_loop(
            &settings("0 */15 7-20 * * Mon-Fri"),
            &clock,
            &Notifier::disabled(),
            &metrics,
            Some(utc("2026-06-10T14:00:03+02:00")),
            cancel.clone(),
            |ctx| {
                assert!(!busy.swap(true, Ordering::SeqCst), "two cycles at once");
                starts.lock().unwrap().push(clock.now());
                let (busy, cancel) = (&busy, cancel.clone());
                async move {
                    // 20 minutes: longer than the 15-minute period.
                    tokio::time::sleep(Duration::from_secs(20 * 60)).await;
                    busy.store(false, Ordering::SeqCst);
                    if ctx.number == 3 {
                        cancel.cancel();
                    }
                    CycleOutcome::Failed
                }
            },
        )
        .await;
        assert_eq!(exit, LoopExit::Stopped { cycles: 3 });
        assert_eq!(
            *starts.lock().unwrap(),
            [
                utc("2026-06-10T14:15:00+02:00"), // 14:15 fired since 14:00: at once
                utc("2026-06-10T14:45:00+02:00"), // 14:30 was overrun: skipped
                utc("2026-06-10T15:15:00+02:00"),
            ]
        );
        assert_eq!(metrics.health().last_outcome, Some(CycleOutcome::Failed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_between_cycles_returns_at_once() {
        let clock = TokioClock::at("2026-06-10T14:20:00+02:00");
        let (_dir, sock, notifier) = socket();
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            stopper.cancel();
        });
        let exit = run_loop(
            &settings("0 */15 7-20 * * Mon-Fri"),
            &clock,
            &notifier,
            &Metrics::new(),
            Some(utc("2026-06-10T14:15:04+02:00")),
            cancel,
            |_ctx| async { panic!("no cycle is due before 14:30") },
        )
        .await;
        assert_eq!(exit, LoopExit::Stopped { cycles: 0 });
        assert!(clock.now() < utc("2026-06-10T14:22:00+02:00"));
        assert_eq!(
            received(&sock),
            ["STATUS=prochain cycle à 14:30\n", "STOPPING=1\n"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cycle_that_stops_at_a_safe_point_ends_the_loop_cleanly() {
        let clock = TokioClock::at("2026-06-10T14:20:00+02:00");
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        let metrics = Metrics::new();
        let exit = run_loop(
            &settings("0 */15 7-20 * * Mon-Fri"),
            &clock,
            &Notifier::disabled(),
            &metrics,
            None,
            cancel,
            |ctx| {
                let stopper = stopper.clone();
                async move {
                    // Ten "dossiers" of one second each, checking the token between them.
                    for i in 0..10 {
                        if ctx.cancel.is_cancelled() {
                            return CycleOutcome::Interrupted;
                        }
                        if i == 2 {
                            stopper.cancel();
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    CycleOutcome::Succeeded
                }
            },
        )
        .await;
        assert_eq!(exit, LoopExit::Stopped { cycles: 1 });
        assert_eq!(
            metrics.health().last_outcome,
            Some(CycleOutcome::Interrupted)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cycle_that_overruns_the_shutdown_deadline_is_abandoned() {
        let clock = TokioClock::at("2026-06-10T14:20:00+02:00");
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stopper.cancel();
        });
        let t0 = tokio::time::Instant::now();
        let exit = run_loop(
            &settings("0 */15 7-20 * * Mon-Fri"),
            &clock,
            &Notifier::disabled(),
            &Metrics::new(),
            None,
            cancel,
            |_ctx| async {
                // Ignores the token: an hour-long step.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                CycleOutcome::Succeeded
            },
        )
        .await;
        assert_eq!(exit, LoopExit::DeadlineExceeded { cycles: 1 });
        // Stopped 5 s in, gave the cycle the 10 s deadline, not the hour.
        assert_eq!(t0.elapsed().as_secs(), 15);
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_that_never_fires_waits_for_the_stop() {
        let clock = TokioClock::at("2026-06-10T14:20:00+02:00");
        let cancel = CancellationToken::new();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            stopper.cancel();
        });
        let exit = run_loop(
            &settings("0 0 12 1 1 * 2020"),
            &clock,
            &Notifier::disabled(),
            &Metrics::new(),
            Some(utc("2020-01-01T12:00:00Z")),
            cancel,
            |_ctx| async { panic!("never") },
        )
        .await;
        assert_eq!(exit, LoopExit::Stopped { cycles: 0 });
    }

    #[test]
    fn next_cycle_wording() {
        let now = utc("2026-06-10T14:07:00+02:00");
        assert_eq!(
            when(utc("2026-06-10T14:15:00+02:00"), now, Paris),
            "à 14:15"
        );
        assert_eq!(
            when(utc("2026-06-15T07:00:00+02:00"), now, Paris),
            "le 15/06/2026 à 07:00"
        );
    }
}
