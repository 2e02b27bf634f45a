//! The pump's clock: when a timeout stops the child, when its SIGTERM turns
//! into SIGKILL, and when the drain window after its exit closes. Pure: it
//! reads the state and the time and says what is due; the pump acts.

use std::time::{Duration, Instant};

use crate::Limits;

/// The drain window once the group was killed, when the limits have none
/// (wait for end of file): whatever still holds the pipes escaped the group.
const DRAIN_AFTER_KILL: Duration = Duration::from_millis(500);

/// How far stopping the child has gone. A timeout or a cancellation moves
/// it from `Running` to `Terminating` (SIGTERM to the group), the grace
/// period from there to `Killed` (SIGKILL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Nobody asked it to stop.
    Running,
    /// SIGTERM went to the group at this instant.
    Terminating(Instant),
    /// SIGKILL went to the group.
    Killed,
}

/// What the clock asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tick {
    /// Nothing is due: poll until this instant (`None`: no deadline).
    Wait(Option<Instant>),
    /// The timeout passed: stop the child.
    TimedOut,
    /// The grace period after SIGTERM passed: SIGKILL.
    GraceOver,
    /// The drain window after the child's exit closed.
    DrainOver,
}

/// The deadlines of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// When the timeout fires; `None`: never (also for a timeout too large
    /// to be a point in time).
    timeout: Option<Instant>,
    grace: Duration,
    drain: Option<Duration>,
}

impl Deadlines {
    /// The deadlines of a run started at `start`.
    pub(crate) fn new(start: Instant, limits: &Limits) -> Deadlines {
        Deadlines {
            timeout: limits.timeout.and_then(|t| start.checked_add(t)),
            grace: limits.grace,
            drain: limits.drain,
        }
    }

    /// What is due at `now`, given how far the stop has gone and when the
    /// child was reaped. The first thing due wins; the pump acts on it and
    /// asks again.
    pub(crate) fn tick(&self, now: Instant, stop: Stop, exited_at: Option<Instant>) -> Tick {
        let mut next: Option<Instant> = None;
        let mut due = |at: Instant| {
            next = Some(next.map_or(at, |n| n.min(at)));
            now >= at
        };
        let timeout = (stop == Stop::Running).then_some(self.timeout).flatten();
        if timeout.is_some_and(&mut due) {
            return Tick::TimedOut;
        }
        let grace_over = match stop {
            Stop::Terminating(since) => since.checked_add(self.grace),
            _ => None,
        };
        if grace_over.is_some_and(&mut due) {
            return Tick::GraceOver;
        }
        // After the exit, output is read for the drain window only. Once the
        // group was killed, use a window even in wait-for-end-of-file mode.
        let drain = self.drain.or((stop == Stop::Killed).then_some(DRAIN_AFTER_KILL));
        let drain_over =
            exited_at.zip(drain).and_then(|(exited, window)| exited.checked_add(window));
        if drain_over.is_some_and(&mut due) {
            return Tick::DrainOver;
        }
        Tick::Wait(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deadlines of a run started at `t0`, in whole seconds, and a clock
    /// reading `secs` after `t0`.
    fn setup(
        timeout: Option<u64>,
        grace: u64,
        drain: Option<u64>,
    ) -> (Deadlines, impl Fn(u64) -> Instant) {
        let t0 = Instant::now();
        let limits = Limits {
            timeout: timeout.map(Duration::from_secs),
            grace: Duration::from_secs(grace),
            drain: drain.map(Duration::from_secs),
            ..Limits::default()
        };
        (Deadlines::new(t0, &limits), move |secs| t0 + Duration::from_secs(secs))
    }

    #[test]
    fn the_timeout_fires_once_then_the_grace_runs() {
        let (d, at) = setup(Some(10), 5, None);
        assert_eq!(d.tick(at(3), Stop::Running, None), Tick::Wait(Some(at(10))));
        assert_eq!(d.tick(at(10), Stop::Running, None), Tick::TimedOut);
        let stop = Stop::Terminating(at(10));
        assert_eq!(d.tick(at(11), stop, None), Tick::Wait(Some(at(15))), "no second timeout");
        assert_eq!(d.tick(at(15), stop, None), Tick::GraceOver);
        assert_eq!(d.tick(at(99), Stop::Killed, None), Tick::Wait(None));
    }

    #[test]
    fn a_zero_grace_kills_at_once() {
        let (d, at) = setup(Some(1), 0, None);
        assert_eq!(d.tick(at(1), Stop::Terminating(at(1)), None), Tick::GraceOver);
    }

    #[test]
    fn the_drain_window_starts_at_the_exit() {
        let (d, at) = setup(None, 5, Some(2));
        assert_eq!(d.tick(at(1), Stop::Running, None), Tick::Wait(None));
        assert_eq!(d.tick(at(4), Stop::Running, Some(at(3))), Tick::Wait(Some(at(5))));
        assert_eq!(d.tick(at(5), Stop::Running, Some(at(3))), Tick::DrainOver);
    }

    #[test]
    fn without_a_drain_window_only_a_kill_bounds_the_drain() {
        let (d, at) = setup(None, 5, None);
        assert_eq!(d.tick(at(100), Stop::Running, Some(at(3))), Tick::Wait(None));
        let exit = Some(at(3));
        assert_eq!(d.tick(at(3), Stop::Killed, exit), Tick::Wait(Some(at(3) + DRAIN_AFTER_KILL)));
        assert_eq!(d.tick(at(4), Stop::Killed, exit), Tick::DrainOver);
    }

    #[test]
    fn the_soonest_deadline_is_the_one_to_wait_for() {
        let (d, at) = setup(Some(10), 5, Some(2));
        assert_eq!(d.tick(at(1), Stop::Running, Some(at(1))), Tick::Wait(Some(at(3))));
        assert_eq!(d.tick(at(9), Stop::Running, Some(at(8))), Tick::Wait(Some(at(10))));
    }

    #[test]
    fn durations_beyond_any_instant_mean_never_and_do_not_panic() {
        let t0 = Instant::now();
        let limits = Limits {
            timeout: Some(Duration::MAX),
            grace: Duration::MAX,
            drain: Some(Duration::MAX),
            ..Limits::default()
        };
        let d = Deadlines::new(t0, &limits);
        assert_eq!(d.tick(t0, Stop::Running, None), Tick::Wait(None));
        assert_eq!(d.tick(t0, Stop::Terminating(t0), Some(t0)), Tick::Wait(None));
    }
}
