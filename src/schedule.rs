//! When cycles fire: pure functions of the cron schedule, its time zone and "now".
//!
//! Nothing here reads the clock or sleeps; the daemon loop ([`crate::daemon`]) asks
//! [`next_fire`] after every cycle and sleeps until then, so a slow cycle simply skips the fires
//! it overran instead of queueing them (atuin's lesson).
//!
//! # Daylight saving time
//!
//! The schedule is written in wall-clock time (`[schedule] timezone`, Europe/Paris by default)
//! and is matched against the *local* calendar, including the weekday. The `cron` crate on its
//! own silently skips a wall-clock time that does not exist and fires twice for one that exists
//! twice; essbot does neither:
//!
//! - **Spring forward** (Europe/Paris, last Sunday of March, 02:00 → 03:00): a fire whose local
//!   time falls in the skipped hour (e.g. 02:30) fires at the moment the clock jumps, 03:00 local
//!   (01:00 UTC), like cronie does. Several fires in the skipped hour collapse into that one
//!   fire, since they would otherwise all run at the same instant.
//! - **Fall back** (last Sunday of October, 03:00 → 02:00): each local time of the repeated hour
//!   fires once, on its first occurrence (summer time). During the second pass nothing that
//!   already fired fires again, so an hourly schedule fires at 02:00 CEST then at 03:00 CET,
//!   two real hours apart, and a `*/15` schedule pauses for the repeated hour. A daemon that was
//!   not running during the first pass catches up at start (see [`should_run_at_start`]).
//!
//! # "Period" of an irregular schedule
//!
//! The default schedule, `0 */15 7-20 * * Mon-Fri`, fires every 15 minutes by day but not at
//! night nor at weekends, so a fixed duration cannot say whether a cycle is overdue: 30 minutes
//! would flag every weekend, 3 days would hide a whole day's outage. essbot counts *fires*
//! instead: a cycle is due at start when at least one fire went by since the last cycle
//! ([`should_run_at_start`], "older than the period"), and the daemon is stale when at least two
//! fires went by since the last successful cycle ([`is_stale`], "older than twice the period";
//! one fire gone by may be the cycle now running).

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The first instant strictly after `now` at which `schedule` fires in `tz`, or `None` when the
/// schedule never fires again (a past year in its 7th field).
///
/// Wall-clock times in a DST gap fire when the gap ends; wall-clock times that occur twice fire
/// on their first occurrence only (module docs).
pub fn next_fire(schedule: &cron::Schedule, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Evaluate the schedule on the naive local calendar (UTC has neither gaps nor repeats, so
    // the crate applies no DST rule of its own), then place each wall-clock candidate in `tz`.
    let local = now.with_timezone(&tz).naive_local();
    for wall in schedule.after(&local.and_utc()) {
        let wall = wall.naive_utc();
        match tz.from_local_datetime(&wall) {
            chrono::LocalResult::Single(t) => {
                let t = t.with_timezone(&Utc);
                if t > now {
                    return Some(t);
                }
            }
            chrono::LocalResult::Ambiguous(first, _second) => {
                let first = first.with_timezone(&Utc);
                if first > now {
                    return Some(first);
                }
                // Second pass of a repeated hour: this local time already fired (or was missed
                // while essbot was down, which the start-up catch-up handles). Don't repeat it.
            }
            chrono::LocalResult::None => {
                let end = gap_end(tz, wall);
                if end > now {
                    return Some(end);
                }
            }
        }
    }
    None
}

/// The first instant whose local time is at or after `wall`, a local time inside a DST gap:
/// the moment the clock jumps.
fn gap_end(tz: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    let local_at = |t: DateTime<Utc>| t.with_timezone(&tz).naive_local();
    // Offsets are less than a day, so the answer lies within a day of `wall` read as UTC, and
    // local time is increasing there (a gap is never within a day of a repeat).
    // Whole seconds: transitions happen on one.
    let at = |secs: i64| DateTime::from_timestamp(secs, 0).expect("within chrono's range");
    let mut lo = wall.and_utc().timestamp() - 86_400; // local_at(lo) < wall
    let mut hi = wall.and_utc().timestamp() + 86_400; // local_at(hi) >= wall
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_at(at(mid)) >= wall {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

/// The period of the schedule as it stands at `now`: the gap between the next fire and the one
/// after it (15 minutes on a weekday for the default schedule, but 10 h 45 min from the last
/// fire of a day). For messages; overdue checks count fires instead (module docs).
pub fn period(schedule: &cron::Schedule, tz: Tz, now: DateTime<Utc>) -> Option<Duration> {
    let first = next_fire(schedule, tz, now)?;
    let second = next_fire(schedule, tz, first)?;
    Some(second - first)
}

/// How many times the schedule fired in `(since, now]`, counting no further than `limit` (so
/// that a last cycle from months ago costs nothing).
pub fn fires_between(
    schedule: &cron::Schedule,
    tz: Tz,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: usize,
) -> usize {
    let mut count = 0;
    let mut cursor = since;
    while count < limit {
        match next_fire(schedule, tz, cursor) {
            Some(fire) if fire <= now => {
                count += 1;
                cursor = fire;
            }
            _ => break,
        }
    }
    count
}

/// Whether the daemon runs a cycle as soon as it starts, rather than waiting for the next fire:
/// yes when there was never a cycle, or when the schedule fired since the last one (the last
/// cycle is "older than the period"). A restart therefore neither repeats a cycle that already
/// ran for the current fire nor skips one that was missed while essbot was down.
pub fn should_run_at_start(
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    schedule: &cron::Schedule,
    tz: Tz,
) -> bool {
    match last {
        None => true,
        Some(last) => fires_between(schedule, tz, last, now, 1) >= 1,
    }
}

/// Whether the last successful cycle is "older than twice the period": the schedule fired at
/// least twice since it, so at least one scheduled cycle failed or never ran (the other may be
/// running now). `essbot status` and `/healthz` report unhealthy then; never succeeding is stale.
pub fn is_stale(
    last_success: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    schedule: &cron::Schedule,
    tz: Tz,
) -> bool {
    match last_success {
        None => true,
        Some(last) => fires_between(schedule, tz, last, now, 2) >= 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Paris;
    use std::str::FromStr;

    fn sched(expr: &str) -> cron::Schedule {
        cron::Schedule::from_str(expr).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The fires after `from`, as RFC 3339 strings in Paris time.
    fn fires(expr: &str, from: &str, n: usize) -> Vec<String> {
        let s = sched(expr);
        let mut now = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            now = next_fire(&s, Paris, now).unwrap();
            out.push(now.with_timezone(&Paris).to_rfc3339());
        }
        out
    }

    const DEFAULT: &str = "0 */15 7-20 * * Mon-Fri";

    #[test]
    fn the_default_schedule_fires_every_quarter_hour_on_weekday_daytime() {
        // Wednesday 2026-06-10, 14:07 Paris (CEST, UTC+2).
        assert_eq!(
            fires(DEFAULT, "2026-06-10T14:07:00+02:00", 3),
            [
                "2026-06-10T14:15:00+02:00",
                "2026-06-10T14:30:00+02:00",
                "2026-06-10T14:45:00+02:00"
            ]
        );
        // The last fire of the day is 20:45; the next is 07:00 the following morning.
        assert_eq!(
            fires(DEFAULT, "2026-06-10T20:40:00+02:00", 2),
            ["2026-06-10T20:45:00+02:00", "2026-06-11T07:00:00+02:00"]
        );
    }

    #[test]
    fn weekday_names_are_local_weekdays_and_skip_the_weekend() {
        // Friday 2026-06-12 20:45 is the last fire of the week; Monday 07:00 the next.
        assert_eq!(
            fires(DEFAULT, "2026-06-12T20:45:00+02:00", 1),
            ["2026-06-15T07:00:00+02:00"]
        );
        // 07:00 Paris on Monday is 05:00 UTC, still Monday; but Sunday 23:30 UTC is Monday
        // 01:30 in Paris: the weekday is the local one.
        let s = sched("0 30 1 * * Mon");
        let next = next_fire(&s, Paris, utc("2026-06-14T12:00:00Z")).unwrap();
        assert_eq!(next, utc("2026-06-14T23:30:00Z"));
    }

    #[test]
    fn the_crates_numeric_weekday_1_is_sunday() {
        // Documented trap: `1` means Sunday, hence names in the configuration.
        let s = sched("0 0 9 * * 1");
        let next = next_fire(&s, Paris, utc("2026-06-10T00:00:00Z")).unwrap();
        assert_eq!(
            next.with_timezone(&Paris).to_rfc3339(),
            "2026-06-14T09:00:00+02:00"
        );
        assert_eq!(
            next.with_timezone(&Paris).format("%A").to_string(),
            "Sunday"
        );
        let by_name = sched("0 0 9 * * Sun");
        assert_eq!(
            next_fire(&by_name, Paris, utc("2026-06-10T00:00:00Z")),
            Some(next)
        );
    }

    #[test]
    fn a_fire_in_the_spring_forward_gap_runs_when_the_clock_jumps() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
        assert_eq!(
            fires("0 30 2 * * *", "2026-03-28T12:00:00+01:00", 3),
            [
                "2026-03-29T03:00:00+02:00", // the jump itself (01:00 UTC), not skipped
                "2026-03-30T02:30:00+02:00",
                "2026-03-31T02:30:00+02:00"
            ]
        );
        assert_eq!(
            next_fire(&sched("0 30 2 * * *"), Paris, utc("2026-03-28T12:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn fires_in_the_skipped_hour_collapse_into_one() {
        // Every 15 minutes: 01:45 CET, then 02:00..02:45 do not exist and become one fire at
        // 03:00 CEST (which is itself a fire time), then 03:15.
        assert_eq!(
            fires("0 */15 * * * *", "2026-03-29T01:40:00+01:00", 3),
            [
                "2026-03-29T01:45:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:15:00+02:00"
            ]
        );
    }

    #[test]
    fn an_hourly_schedule_fires_once_per_local_hour_across_fall_back() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:xx happens twice.
        assert_eq!(
            fires("0 0 * * * *", "2026-10-25T00:30:00+02:00", 4),
            [
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00", // first 02:00 only
                "2026-10-25T03:00:00+01:00", // two real hours later
                "2026-10-25T04:00:00+01:00"
            ]
        );
    }

    #[test]
    fn nothing_repeats_when_a_cycle_ends_in_the_second_pass() {
        // A cycle fired at 02:45 CEST ran past the change and ended at 02:10 CET: 02:15..02:45
        // already fired in the first pass, so the next fire is 03:00 CET.
        let s = sched("0 */15 * * * *");
        let next = next_fire(&s, Paris, utc("2026-10-25T02:10:00+01:00")).unwrap();
        assert_eq!(next, utc("2026-10-25T03:00:00+01:00"));
        // A schedule that names only the repeated hour fires in the first pass, not the second.
        let s = sched("0 30 2 * * *");
        assert_eq!(
            next_fire(&s, Paris, utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T02:30:00+02:00"))
        );
        assert_eq!(
            next_fire(&s, Paris, utc("2026-10-25T02:30:00+02:00")),
            Some(utc("2026-10-26T02:30:00+01:00"))
        );
    }

    #[test]
    fn next_fire_is_strictly_after_now_and_skips_missed_fires() {
        let s = sched(DEFAULT);
        let at = utc("2026-06-10T14:15:00+02:00");
        assert_eq!(
            next_fire(&s, Paris, at),
            Some(utc("2026-06-10T14:30:00+02:00"))
        );
        // A cycle that started at 14:15 and ended at 14:52 missed 14:30 and 14:45: next is 15:00.
        assert_eq!(
            next_fire(&s, Paris, utc("2026-06-10T14:52:13+02:00")),
            Some(utc("2026-06-10T15:00:00+02:00"))
        );
    }

    #[test]
    fn a_schedule_that_never_fires_again_has_no_next_fire() {
        let s = sched("0 0 12 1 1 * 2020");
        assert_eq!(next_fire(&s, Paris, utc("2026-06-10T00:00:00Z")), None);
        assert_eq!(period(&s, Paris, utc("2026-06-10T00:00:00Z")), None);
    }

    #[test]
    fn the_period_is_the_gap_between_the_next_two_fires() {
        let s = sched(DEFAULT);
        assert_eq!(
            period(&s, Paris, utc("2026-06-10T14:07:00+02:00")),
            Some(Duration::minutes(15))
        );
        assert_eq!(
            period(&s, Paris, utc("2026-06-10T20:35:00+02:00")),
            Some(Duration::hours(10) + Duration::minutes(15))
        );
    }

    #[test]
    fn at_start_a_cycle_runs_only_if_a_fire_went_by_since_the_last_one() {
        let s = sched(DEFAULT);
        let now = utc("2026-06-10T14:20:00+02:00");
        assert!(should_run_at_start(None, now, &s, Paris));
        // The 14:15 cycle ran: wait for 14:30.
        assert!(!should_run_at_start(
            Some(utc("2026-06-10T14:15:02+02:00")),
            now,
            &s,
            Paris
        ));
        // The last cycle is from 14:00: the 14:15 fire was missed, run now.
        assert!(should_run_at_start(
            Some(utc("2026-06-10T14:00:01+02:00")),
            now,
            &s,
            Paris
        ));
        // Restarted on Saturday after Friday's last cycle: nothing was missed.
        assert!(!should_run_at_start(
            Some(utc("2026-06-12T20:45:03+02:00")),
            utc("2026-06-13T11:00:00+02:00"),
            &s,
            Paris
        ));
        // Restarted Monday 07:05 after Friday's last cycle: 07:00 was missed.
        assert!(should_run_at_start(
            Some(utc("2026-06-12T20:45:03+02:00")),
            utc("2026-06-15T07:05:00+02:00"),
            &s,
            Paris
        ));
    }

    #[test]
    fn stale_means_two_fires_without_a_successful_cycle() {
        let s = sched(DEFAULT);
        let friday_last = Some(utc("2026-06-12T20:45:30+02:00"));
        assert!(is_stale(None, utc("2026-06-12T20:50:00+02:00"), &s, Paris));
        // All weekend long, Friday's last cycle is fresh.
        assert!(!is_stale(
            friday_last,
            utc("2026-06-14T22:00:00+02:00"),
            &s,
            Paris
        ));
        // Monday 07:00 fired (its cycle may be running): still fine.
        assert!(!is_stale(
            friday_last,
            utc("2026-06-15T07:10:00+02:00"),
            &s,
            Paris
        ));
        // 07:15 fired too without success: stale.
        assert!(is_stale(
            friday_last,
            utc("2026-06-15T07:15:00+02:00"),
            &s,
            Paris
        ));
    }

    #[test]
    fn fires_between_counts_up_to_its_limit() {
        let s = sched(DEFAULT);
        let since = utc("2026-06-10T14:00:00+02:00");
        let now = utc("2026-06-10T15:00:00+02:00");
        assert_eq!(fires_between(&s, Paris, since, now, 10), 4); // 14:15 14:30 14:45 15:00
        assert_eq!(fires_between(&s, Paris, since, now, 2), 2);
        assert_eq!(fires_between(&s, Paris, now, since, 10), 0);
    }
}
